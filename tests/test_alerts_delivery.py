"""Where alerts go is decided in one place: ``host:port`` and ``http://`` are plaintext,
``https://`` is TLS — for ``faultlens serve --alerts``, ``[alerts] target`` and
``ActionEngine(alerts_endpoint=...)`` alike."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from actions_support import Clock, engine_with, facts
from faultlens_collector.actions import ActionEngine
from faultlens_collector.alerts.sender import otlp_log_exporter
from otlp_receiver import OtlpReceiver, attributes

from tests.processor_support import FAULTLENS
from tests.tls_support import make_certificates

FAST = {"initial_backoff": 0.05, "max_backoff": 0.2, "idle_wait": 0.2}


def raise_one_alert(engine: ActionEngine, receiver: OtlpReceiver) -> list[str]:
    engine.start()
    try:
        engine.on_group_updated(facts(severity="high"), is_new=True)
        receiver.wait_for(lambda: bool(receiver.log_records()), timeout=10)
    finally:
        engine.stop(timeout=1)
    return [
        attributes(record.attributes)["faultlens.alert.kind"]
        for _, record in receiver.log_records()
    ]


@pytest.mark.parametrize("how", ["alerts_endpoint", "target", "http"])
def test_a_host_and_port_is_plaintext_for_the_engine_as_for_serve(how: str) -> None:
    with OtlpReceiver() as receiver:
        data: dict[str, Any] = {"engine": {"tick_interval": "1h"}}
        options: dict[str, Any] = {"clock": Clock(), "sender_options": FAST}
        if how == "alerts_endpoint":  # the engine's own docstring example
            options["alerts_endpoint"] = receiver.endpoint
        elif how == "target":
            data["alerts"] = {"target": receiver.endpoint}
        else:
            options["alerts_endpoint"] = f"http://{receiver.endpoint}"
        engine = engine_with(data, **options)
        assert engine.alerts_target is not None
        assert raise_one_alert(engine, receiver) == ["new_failure"]


def test_an_https_target_is_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    certificates = make_certificates(tmp_path)
    # The official exporter's way to trust a private CA.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(certificates.ca))
    tls = (certificates.certificate.read_bytes(), certificates.key.read_bytes())
    with OtlpReceiver(tls=tls) as receiver:
        engine = engine_with(
            {"engine": {"tick_interval": "1h"}},
            clock=Clock(),
            sender_options=FAST,
            alerts_endpoint=f"https://{receiver.endpoint}",
        )
        assert raise_one_alert(engine, receiver) == ["new_failure"]
        # The same receiver as host:port is spoken to in plaintext, and never answers.
        plaintext = engine_with(
            {"engine": {"tick_interval": "1h"}},
            clock=Clock(),
            sender_options=FAST,
            alerts_endpoint=receiver.endpoint,
        )
        plaintext.start()
        try:
            plaintext.on_group_updated(facts(fingerprint="00000000000000ff"), is_new=True)
            assert plaintext.sender is not None
            sender = plaintext.sender
            receiver.wait_for(lambda: sender.failures >= 1, timeout=15)
            assert sender.failures >= 1
        finally:
            plaintext.stop(timeout=1)
    assert len(receiver.log_records()) == 1


def test_insecure_overrides_a_target_without_https() -> None:
    assert otlp_log_exporter("collector:4317")._insecure is True  # type: ignore[attr-defined]
    assert otlp_log_exporter("http://collector")._insecure is True  # type: ignore[attr-defined]
    assert otlp_log_exporter("https://collector")._insecure is False  # type: ignore[attr-defined]
    secure = otlp_log_exporter("collector:4317", insecure=False)
    assert secure._insecure is False  # type: ignore[attr-defined]
    tls = otlp_log_exporter("https://collector:4317", insecure=True)
    assert tls._insecure is False  # type: ignore[attr-defined]


def test_a_malformed_alert_target_is_one_line() -> None:
    with pytest.raises(ValueError, match="scheme must be http or https"):
        ActionEngine(alerts_endpoint="ftp://collector:4317")
    result = subprocess.run(
        [str(FAULTLENS), "serve", "--listen", "127.0.0.1:0", "--alerts", "ftp://collector"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "faultlens: --alerts: endpoint 'ftp://collector': scheme must be http or https, not 'ftp'"
    ]
