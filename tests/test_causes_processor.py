"""Root causes across services in the real processor: OTLP in, links stored and served by
the control API and the command line, alerts once per cascade, options of ``serve``."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from faultlens_collector.causes.listener import RootCauseSettings
from faultlens_collector.causes.window import WindowSettings
from faultlens_collector.cli import main
from faultlens_collector.control.client import ControlClient
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.actions_support import wait_until
from tests.otlp_receiver import OtlpReceiver, attributes
from tests.postgres_support import PostgresCluster, fresh_database
from tests.processor_support import (
    FAULTLENS,
    LOGS_EXPORT,
    TRACE_EXPORT,
    failure_attributes,
    key_values,
    raw_call,
    running_processor,
    trace_request,
)

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
PRICING, CART, CHECKOUT = "aaaa00000000000a", "bbbb00000000000b", "cccc00000000000c"
NOISE = "dddd00000000000d"
FAST = RootCauseSettings(WindowSettings(settle_seconds=0.3, window_seconds=30), tick_seconds=0.05)


def _span(
    trace: int,
    number: int,
    parent: int | None,
    start_ms: float,
    end_ms: float,
    *failures: tuple[str, str, float, bool],
    error: bool = True,
    kind: int = Span.SPAN_KIND_SERVER,
) -> Span:
    """Span ``number`` of trace ``trace``; failures as (fingerprint, type, time ms, handled)."""
    return Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=(trace * 100 + number).to_bytes(8, "big"),
        parent_span_id=(trace * 100 + parent).to_bytes(8, "big") if parent else b"",
        name=f"span{number}",
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=T0 + int(start_ms * MS),
        end_time_unix_nano=T0 + int(end_ms * MS),
        status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET),
        events=[
            Span.Event(
                name="exception",
                time_unix_nano=T0 + int(at_ms * MS),
                attributes=key_values(
                    failure_attributes(
                        fingerprint,
                        exception_type=exception_type,
                        failure_handled=handled,
                        failure_category="timeout" if fingerprint == PRICING else "dependency",
                    )
                ),
            )
            for fingerprint, exception_type, at_ms, handled in failures
        ],
    )


def cascade(trace: int, *, checkout: str = CHECKOUT) -> list[tuple[str, list[Span]]]:
    """pricing times out, cart raises UpstreamError, checkout answers 500: the requests of
    the three services (only the spans with failures, as the faultlens exporter sends)."""
    return [
        ("checkout", [_span(trace, 1, None, 0, 100, (checkout, "CheckoutError", 90, False))]),
        ("cart", [_span(trace, 3, 2, 10, 80, (CART, "cart.UpstreamError", 75, False))]),
        ("pricing", [_span(trace, 5, 4, 20, 70, (PRICING, "TimeoutError", 65, False))]),
    ]


def send(address: str, requests: Sequence[tuple[str, list[Span]]]) -> None:
    for service, spans in requests:
        body = trace_request(spans, service=service).SerializeToString()
        assert raw_call(address, TRACE_EXPORT, body)[1] is None


def group(address: str, fingerprint: str) -> Any:
    with ControlClient(address) as client:
        return client.get_group(fingerprint)


def linked(address: str) -> bool:
    return group(address, CART).root_fingerprint == PRICING


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def alerts(receiver: OtlpReceiver) -> list[dict[str, Any]]:
    return [attributes(record.attributes) for _, record in receiver.log_records()]


def test_a_cascade_across_three_services_arriving_root_last(tmp_path: Path) -> None:
    with running_processor(tmp_path, root_causes=FAST) as processor:
        send(processor.address, cascade(1))  # the root's service exports last
        wait_until(lambda: linked(processor.address))
        root = group(processor.address, PRICING)
        cart = group(processor.address, CART)
        checkout = group(processor.address, CHECKOUT)
        assert root.pattern == "timing"
        assert root.root_fingerprint == ""
        assert [(link.fingerprint, link.traces) for link in root.causes] == [
            (CART, 1),
            (CHECKOUT, 1),
        ]
        assert cart.pattern == checkout.pattern == "cascade"
        assert checkout.root_fingerprint == PRICING
        ((link,),) = (cart.caused_by,)
        assert (link.fingerprint, link.traces, link.occurrences, link.share) == (PRICING, 1, 1, 1.0)
        assert link.last_seen_unix_nano == T0 + 75 * MS


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the processors of a test keep their data: a SQLite file, or a fresh database
    on a real PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "faultlens.db")
    return fresh_database(request.getfixturevalue("postgres_cluster"))


def test_links_survive_a_restart_and_shares_follow_the_counts(tmp_path: Path, store: str) -> None:
    with running_processor(tmp_path, root_causes=FAST, store_path=store) as processor:
        send(processor.address, cascade(1))
        wait_until(lambda: linked(processor.address))
        # cart's failure once more, alone (no trace the link can be seen in)
        lone = [("cart", [_span(9, 3, None, 0, 5, (CART, "cart.UpstreamError", 4, False))])]
        send(processor.address, lone)
    with running_processor(tmp_path, root_causes=FAST, store_path=store) as processor:
        cart = group(processor.address, CART)
        assert cart.root_fingerprint == PRICING  # half of its occurrences: mostly enough
        assert cart.caused_by[0].share == pytest.approx(0.5)
        send(processor.address, [("cart", [_span(8, 3, None, 0, 5, (CART, "E", 4, False))])])
        wait_until(lambda: group(processor.address, CART).caused_by[0].share < 0.4)
        assert group(processor.address, CART).root_fingerprint == ""  # no longer mostly


def test_processors_sharing_a_postgres_database_add_their_links_up(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    url = fresh_database(postgres_cluster)
    with (
        running_processor(tmp_path / "a", root_causes=FAST, store_path=url) as first,
        running_processor(tmp_path / "b", root_causes=FAST, store_path=url) as second,
    ):
        send(first.address, cascade(1))  # each trace to one processor, as by trace id
        send(second.address, cascade(2))
        send(second.address, cascade(3))
        wait_until(lambda: [link.traces for link in group(first.address, CART).caused_by] == [3])
        for processor in (first, second):  # the other's writes show within a second
            wait_until(lambda p=processor: group(p.address, CART).root_fingerprint == PRICING)
            cart = group(processor.address, CART)
            ((link,),) = (cart.caused_by,)
            assert (link.fingerprint, link.traces, link.occurrences, link.share) == (
                PRICING,
                3,
                3,
                1.0,
            )
        with ControlClient(first.address) as client:
            pricing = client.get_group(PRICING)
        assert sorted((link.fingerprint, link.traces) for link in pricing.causes) == [
            (CART, 3),
            (CHECKOUT, 3),
        ]


def test_an_ok_span_in_between_absorbs_the_failure(tmp_path: Path) -> None:
    requests = cascade(1)
    # cart caught the timeout, logged it and answered: its span ended without error.
    requests[1] = (
        "cart",
        [_span(1, 3, 2, 10, 80, (NOISE, "cart.StalePrice", 75, True), error=False)],
    )
    with running_processor(tmp_path, root_causes=FAST) as processor:
        send(processor.address, requests)
        wait_until(lambda: group(processor.address, NOISE).root_fingerprint == PRICING)
        assert group(processor.address, CHECKOUT).caused_by == []


def test_list_folds_symptoms_under_their_root_and_resolve_takes_them_along(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_processor(tmp_path, root_causes=FAST) as processor:
        send(processor.address, cascade(1))
        wait_until(lambda: linked(processor.address))
        target = ["--target", processor.address]
        assert main(["failures", "list", *target]) == 0
        table = capsys.readouterr().out
        rows = [line.split()[:2] for line in table.splitlines()[2:5]]
        assert rows[0][0] == PRICING
        assert sorted(rows[1:]) == [["└", CART], ["└", CHECKOUT]]
        assert "2 folded under their root cause" in table
        assert main(["failures", "list", "--flat", "--json", *target]) == 0
        flat = json.loads(capsys.readouterr().out)
        assert {item["fingerprint"]: item["root_fingerprint"] for item in flat} == {
            PRICING: "",
            CART: PRICING,
            CHECKOUT: PRICING,
        }
        assert {item["pattern"] for item in flat} == {"timing", "cascade"}
        assert main(["failures", "show", CART, *target]) == 0
        shown = capsys.readouterr().out
        assert f"symptom of   {PRICING}" in shown
        assert f"caused by    {PRICING}  100% of the symptom's occurrences, 1 trace" in shown
        assert main(["failures", "show", PRICING, "--json", *target]) == 0
        causes = json.loads(capsys.readouterr().out)["causes"]
        assert [link["fingerprint"] for link in causes] == [CART, CHECKOUT]
        # Resolving the root alone leaves the symptoms; --with-symptoms takes them along.
        assert main(["failures", "resolve", PRICING, "--dry-run", *target]) == 0
        assert "1" in capsys.readouterr().out
        assert main(["failures", "resolve", PRICING, "--with-symptoms", *target]) == 0
        capsys.readouterr()
        statuses = {fp: group(processor.address, fp).status for fp in (PRICING, CART, CHECKOUT)}
        assert set(statuses.values()) == {"resolved"}
        # A resolved symptom's links start again: the old cause no longer explains it.
        assert group(processor.address, CART).caused_by == []
        assert [link.fingerprint for link in group(processor.address, PRICING).causes] == []


def test_export_carries_the_links(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_processor(tmp_path, root_causes=FAST) as processor:
        send(processor.address, cascade(1))
        wait_until(lambda: linked(processor.address))
        assert main(["failures", "export", "--format", "jsonl", "--target", processor.address]) == 0
        exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_fingerprint = {item["fingerprint"]: item for item in exported}
    assert by_fingerprint[CHECKOUT]["caused_by"][0]["fingerprint"] == PRICING
    assert by_fingerprint[CHECKOUT]["caused_by"][0]["share"] == 1.0
    assert {item["fingerprint"] for item in by_fingerprint[PRICING]["causes"]} == {CART, CHECKOUT}


def test_one_cascade_alert_and_no_alert_for_its_symptoms(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    with running_processor(tmp_path, root_causes=FAST, alerts=receiver.endpoint) as processor:
        send(processor.address, cascade(1))
        wait_until(lambda: alerts(receiver))
        time.sleep(0.5)
        (alert,) = alerts(receiver)
        assert alert["faultlens.alert.kind"] == "cascade"
        assert alert["failure.fingerprint"] == PRICING
        assert alert["service.name"] == "pricing"
        assert set(alert["faultlens.cascade.groups"]) == {CART, CHECKOUT}
        assert set(alert["faultlens.cascade.services"]) == {"cart", "checkout"}
        # A new symptom of the same root, within the window: no alert of its own.
        send(processor.address, cascade(2, checkout=NOISE))
        wait_until(lambda: group(processor.address, NOISE).root_fingerprint == PRICING)
        time.sleep(0.5)
        assert len(alerts(receiver)) == 1
        # A new group that is nobody's symptom still alerts (after its trace settled).
        lone = [("other", [_span(7, 1, None, 0, 5, ("eeee00000000000e", "E", 3, False))])]
        send(processor.address, lone)
        wait_until(lambda: len(alerts(receiver)) == 2)
        assert alerts(receiver)[1]["faultlens.alert.kind"] == "new_failure"


def test_linking_off_holds_no_alert_and_links_nothing(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    with running_processor(tmp_path, root_causes=None, alerts=receiver.endpoint) as processor:
        send(processor.address, cascade(1))
        wait_until(lambda: len(alerts(receiver)) == 3)
        assert {alert["faultlens.alert.kind"] for alert in alerts(receiver)} == {"new_failure"}
        assert group(processor.address, CART).caused_by == []
        assert group(processor.address, PRICING).pattern == "timing"


def test_held_alerts_are_sent_when_the_processor_stops(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    slow = RootCauseSettings(WindowSettings(settle_seconds=60, window_seconds=120))
    with running_processor(tmp_path, root_causes=slow, alerts=receiver.endpoint) as processor:
        send(processor.address, [("other", [_span(7, 1, None, 0, 5, (NOISE, "E", 3, False))])])
        time.sleep(0.3)
        assert alerts(receiver) == []  # held: the trace has not settled
        assert processor.root_causes is not None
        assert processor.root_causes.held(NOISE)
    # Stopped: the trace was decided and the alert written to the outbox; the next start
    # sends it.
    with running_processor(tmp_path, root_causes=slow, alerts=receiver.endpoint):
        wait_until(lambda: alerts(receiver))
    assert alerts(receiver)[0]["faultlens.alert.kind"] == "new_failure"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--trace-settle", "0"], "--trace-settle must be a positive number of seconds"),
        (["--trace-settle", "40"], "--trace-settle cannot be longer than --trace-window"),
        (["--max-traces", "0"], "--max-traces must be at least 1"),
        (["--clock-skew-ms", "-1"], "--clock-skew-ms must be between 0 and 1,000,000"),
        (["--cascade-alert-window", "nan"], "--cascade-alert-window must be a positive number"),
    ],
)
def test_serve_refuses_bad_linking_options(
    tmp_path: Path, options: list[str], message: str
) -> None:
    result = subprocess.run(
        [str(FAULTLENS), "serve", "--store", str(tmp_path / "x.db"), *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_beyond_the_budget_a_sample_of_the_traces_is_followed(tmp_path: Path) -> None:
    settings = RootCauseSettings(
        WindowSettings(settle_seconds=0.3, window_seconds=30), tick_seconds=0.05, budget=10
    )
    with running_processor(tmp_path, root_causes=settings) as processor:
        linking = processor.root_causes
        assert linking is not None
        assert linking.followed == 1.0
        for trace in range(1, 61):  # 180 spans with failures in a moment: over budget
            send(processor.address, cascade(trace))
        wait_until(lambda: linking.followed < 1.0)
        wait_until(lambda: linked(processor.address))
    # Every failure is stored whether its trace was followed or not.
    with running_processor(tmp_path, root_causes=None) as processor:
        assert group(processor.address, PRICING).count == 60


def test_a_failure_sent_as_a_log_record_is_linked_through_its_span(tmp_path: Path) -> None:
    """cart records its failure as a log record tied to its span (as the SDKs do with
    OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN=logs); its span arrives over the traces
    signal, without an exception event but with status ERROR."""
    requests = cascade(1)
    requests[1] = ("cart", [_span(1, 3, 2, 10, 80)])  # the span, no event
    record = LogRecord(
        time_unix_nano=T0 + 75 * MS,
        trace_id=(1).to_bytes(16, "big"),
        span_id=(103).to_bytes(8, "big"),
        attributes=key_values(
            failure_attributes(CART, exception_type="cart.UpstreamError", failure_handled=False)
        ),
    )
    logs = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=key_values({"service.name": "cart"})),
                scope_logs=[ScopeLogs(log_records=[record])],
            )
        ]
    )
    with running_processor(tmp_path, root_causes=FAST) as processor:
        assert raw_call(processor.address, LOGS_EXPORT, logs.SerializeToString())[1] is None
        send(processor.address, requests)
        wait_until(lambda: linked(processor.address))
        assert group(processor.address, CHECKOUT).root_fingerprint == PRICING
