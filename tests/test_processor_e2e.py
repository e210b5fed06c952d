"""End to end: the official OTLP exporters against a real ``faultlens serve`` subprocess."""

from __future__ import annotations

import logging
from pathlib import Path

import faultlens
import grpc
import pytest
from faultlens_collector.control.client import ControlClient, ControlError
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from tests.otlp_receiver import OtlpReceiver
from tests.otlp_receiver import attributes as otlp_attributes
from tests.processor_support import ServeProcess, all_groups
from tests.tls_support import make_certificates


class OrderError(Exception):
    pass


def _charge(order: int) -> None:
    raise OrderError(f"card declined for order {order}")


def _record_failures(exporter: OTLPSpanExporter, service: str, orders: int) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop")
    try:
        with faultlens.set_testing(tracer_provider=provider):
            for order in range(orders):
                with tracer.start_as_current_span("checkout"):
                    try:
                        _charge(order)
                    except OrderError as exc:
                        faultlens.record_failure(exc, handled=True)
            provider.force_flush()
    finally:
        provider.shutdown()


def test_sdk_failures_sent_with_the_official_span_exporter_become_one_group(
    tmp_path: Path,
) -> None:
    with ServeProcess(tmp_path / "store.db") as serve:
        _record_failures(OTLPSpanExporter(endpoint=serve.address, insecure=True), "shop", 5)
        with ControlClient(serve.address) as client:
            groups = list(all_groups(client).values())
    assert len(groups) == 1
    group = groups[0]
    assert group.count == 5
    assert group.handled_count == 5
    assert group.exception_type.endswith("OrderError")
    assert group.message == "card declined for order 0"
    assert dict(group.service_counts) == {"shop": 5}
    assert list(group.span_names) == ["checkout"]
    assert len(group.samples) == 5
    assert "_charge" in group.stacktrace


@pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")
def test_plain_opentelemetry_log_records_with_exceptions_become_groups(tmp_path: Path) -> None:
    with ServeProcess(tmp_path / "store.db") as serve:
        provider = LoggerProvider(resource=Resource.create({"service.name": "billing"}))
        provider.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=serve.address, insecure=True))
        )
        logger = logging.getLogger("test.e2e.billing")
        handler = LoggingHandler(logger_provider=provider)
        logger.addHandler(handler)
        logger.propagate = False
        try:
            for attempt in range(3):
                try:
                    {}["invoice"]
                except KeyError:
                    logger.exception("lookup failed on attempt %d", attempt)
            logger.warning("no exception here")
            provider.force_flush()
        finally:
            logger.removeHandler(handler)
            provider.shutdown()
        with ControlClient(serve.address) as client:
            groups = list(all_groups(client).values())
    assert len(groups) == 1
    assert groups[0].count == 3
    assert groups[0].exception_type == "KeyError"
    assert groups[0].category == "lookup"
    assert dict(groups[0].service_counts) == {"billing": 3}


ESCAPED_RULES = """
[[rules]]
name = "escaped-and-high"
handled = false
severity = "high"
alert = true

[alerts]
min_severity = "high"
"""


def test_exceptions_leaving_start_as_current_span_of_plain_opentelemetry_escaped(
    tmp_path: Path,
) -> None:
    """The OpenTelemetry Python SDK writes ``exception.escaped = "False"`` for an exception
    that leaves ``start_as_current_span``; the span's ERROR status says it escaped."""
    config = tmp_path / "rules.toml"
    config.write_text(ESCAPED_RULES)
    with (
        OtlpReceiver() as alerts,
        ServeProcess(
            tmp_path / "store.db", "--config", str(config), "--alerts", alerts.endpoint
        ) as serve,
    ):
        provider = TracerProvider(resource=Resource.create({"service.name": "plain"}))
        exporter = OTLPSpanExporter(endpoint=serve.address, insecure=True)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("plain")
        for order in range(3):
            with pytest.raises(OrderError), tracer.start_as_current_span("charge"):
                _charge(order)  # leaves the span: recorded with exception.escaped "False"
            with tracer.start_as_current_span("lookup") as span:
                try:
                    {}["sku"]
                except KeyError as exc:
                    span.record_exception(exc)  # caught and recorded: handled
        provider.force_flush()
        provider.shutdown()
        assert alerts.wait_for(lambda: "rule_match" in _alert_kinds(alerts))
        with ControlClient(serve.address) as client:
            groups = {group.exception_type: group for group in all_groups(client).values()}
    escaped = groups[f"{__name__}.OrderError"]
    handled = groups["KeyError"]
    assert (escaped.count, escaped.handled_count, escaped.severity) == (3, 0, "high")
    assert (handled.count, handled.handled_count, handled.severity) == (3, 3, "medium")
    matched = [
        alert
        for alert in map(otlp_attributes, (record.attributes for _, record in alerts.log_records()))
        if alert["faultlens.alert.kind"] == "rule_match"
    ]
    assert [alert["failure.fingerprint"] for alert in matched] == [escaped.fingerprint]
    assert matched[0]["faultlens.rule.name"] == "escaped-and-high"


def _alert_kinds(receiver: OtlpReceiver) -> list[str]:
    return [
        otlp_attributes(record.attributes)["faultlens.alert.kind"]
        for _, record in receiver.log_records()
    ]


def test_bearer_token_accepted_and_refused(tmp_path: Path) -> None:
    with ServeProcess(tmp_path / "store.db", env={"FAULTLENS_TOKEN": "t0ken"}) as serve:
        refused = OTLPSpanExporter(endpoint=serve.address, insecure=True, timeout=5)
        _record_failures(refused, "shop", 1)
        accepted = OTLPSpanExporter(
            endpoint=serve.address, insecure=True, headers={"authorization": "Bearer t0ken"}
        )
        _record_failures(accepted, "shop", 2)
        with pytest.raises(ControlError) as caught, ControlClient(serve.address) as client:
            all_groups(client)
        assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
        with ControlClient(serve.address, token="t0ken") as client:
            assert [group.count for group in all_groups(client).values()] == [2]


def test_tls_with_a_self_signed_ca(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    args = ("--tls-cert", str(certs.certificate), "--tls-key", str(certs.key))
    with ServeProcess(tmp_path / "store.db", *args) as serve:
        exporter = OTLPSpanExporter(
            endpoint=serve.address,
            credentials=grpc.ssl_channel_credentials(certs.ca.read_bytes()),
        )
        _record_failures(exporter, "shop", 2)
        plaintext = OTLPSpanExporter(endpoint=serve.address, insecure=True, timeout=3)
        assert plaintext.export([]) == SpanExportResult.FAILURE  # no plaintext on a TLS port
        with ControlClient(serve.address, ca_file=certs.ca) as client:
            assert [group.count for group in all_groups(client).values()] == [2]
        with pytest.raises(ControlError), ControlClient(serve.address, timeout=3) as client:
            all_groups(client)
