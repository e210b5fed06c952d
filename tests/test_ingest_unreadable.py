"""Values nested past the protobuf parser's limit, as docs/reliability.md (Limits) says: the
failure is kept wherever the value is; a value faultlens reads (the failure's own attributes,
the resource's ``service.name``, the span's attributes when rules ask for them) is skipped
with a ``partial_success`` warning; one it never reads (other resource attributes, a log
body, span attributes otherwise) is passed on without a word."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from faultlens_collector.control.client import ControlClient
from faultlens_collector.ingest import extract
from faultlens_collector.processor.server import Processor
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.processor_support import LOGS_EXPORT, TRACE_EXPORT, all_groups, raw_call
from tests.processor_support import running_processor as _running_processor
from tests.reliability import wire

ROOT = Path(__file__).resolve().parent.parent
TYPE = wire.key_value(b"exception.type", wire.any_string(b"DeepError"))


def nested(depth: int, kind: str, leaf: bytes = b"") -> bytes:
    """An ``AnyValue`` nesting ``depth`` kvlists or arrays, in its shortest encoding."""
    value = leaf
    for _ in range(depth):
        value = (
            wire.any_kvlist(wire.field_bytes(2, value))
            if kind == "kvlist"
            else (wire.any_array(value))
        )
    return value


def deepest_readable(kind: str, *, body: bool = False) -> int:
    """The deepest value the parser reads, as an attribute (or as a log body)."""
    depth = 1
    while True:
        try:
            if body:
                AnyValue.FromString(nested(depth + 1, kind))
            else:
                KeyValue.FromString(wire.field_bytes(2, nested(depth + 1, kind)))
        except DecodeError:
            return depth
        depth += 1


def test_the_documented_depths_are_the_parsers() -> None:
    limits = (ROOT / "docs" / "reliability.md").read_text()
    row = next(line for line in limits.splitlines() if line.startswith("| protobuf nesting"))
    documented = re.search(r"kvlist up to (\d+) levels deep, an array up to (\d+)", row)
    assert documented is not None
    assert (deepest_readable("kvlist"), deepest_readable("array")) == tuple(
        map(int, documented.groups())
    )
    assert "is kept whatever is nested in it" in row
    assert "warning" in row


# Requests with one failure and one value of the given depth in the given place.
def _span_request(
    event: list[bytes], span: list[bytes], resource: list[bytes], *, service: bool = True
) -> bytes:
    made = (
        wire.field_bytes(1, bytes(range(1, 17)))
        + wire.field_bytes(2, bytes(range(1, 9)))
        + wire.field_bytes(5, b"charge")
        + b"".join(wire.field_bytes(9, item) for item in span)
        + wire.field_bytes(11, wire.exception_event(event))
    )
    named = [wire.key_value(b"service.name", wire.any_string(b"deep"))] if service else []
    attributes = [*named, *resource]
    resource_bytes = b"".join(wire.field_bytes(1, item) for item in attributes)
    scope = wire.field_bytes(2, wire.field_bytes(2, made))
    return wire.field_bytes(1, wire.field_bytes(1, resource_bytes) + scope)


def _log_request(attributes: list[bytes], body: bytes = b"") -> bytes:
    record = wire.field_fixed64(1, 1)
    if body:
        record += wire.field_bytes(5, body)
    record += b"".join(wire.field_bytes(6, item) for item in attributes)
    resource = wire.field_bytes(1, wire.key_value(b"service.name", wire.any_string(b"deep")))
    scope = wire.field_bytes(2, wire.field_bytes(2, record))
    return wire.field_bytes(1, wire.field_bytes(1, resource) + scope)


def _attribute(value: bytes) -> bytes:
    return wire.key_value(b"deep", value)


WARNING = (
    "1 value not read (nested deeper than 100 messages, or not decodable inside); "
    "their failures are kept"
)
#: Where the value is: (OTLP method, the request, whether faultlens reads it: a warning).
PLACES: dict[str, tuple[str, Callable[[bytes], bytes], bool]] = {
    "the failure's own attribute": (
        TRACE_EXPORT,
        lambda value: _span_request([TYPE, _attribute(value)], [], []),
        True,
    ),
    "a log record attribute": (
        LOGS_EXPORT,
        lambda value: _log_request([TYPE, _attribute(value)]),
        True,
    ),
    "the resource's service.name": (
        TRACE_EXPORT,
        lambda value: _span_request(
            [TYPE], [], [wire.key_value(b"service.name", value)], service=False
        ),
        True,
    ),
    "a span attribute": (
        TRACE_EXPORT,
        lambda value: _span_request([TYPE], [_attribute(value)], []),
        False,
    ),
    "another resource attribute": (
        TRACE_EXPORT,
        lambda value: _span_request([TYPE], [], [_attribute(value)]),
        False,
    ),
    "a log body": (LOGS_EXPORT, lambda value: _log_request([TYPE], value), False),
}


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processor]:
    with _running_processor(Path(tmp_path_factory.mktemp("deep"))) as running:
        yield running


def _send(processor: Processor, path: str, body: bytes) -> tuple[int, str, int]:
    """(rejected, error_message, occurrences the store gained)."""
    with ControlClient(processor.address) as client:
        before = sum(group.count for group in all_groups(client).values())
        reply, error = raw_call(processor.address, path, body)
        assert error is None, error
        after = sum(group.count for group in all_groups(client).values())
    response = ExportTraceServiceResponse if path == TRACE_EXPORT else ExportLogsServiceResponse
    partial = response.FromString(reply).partial_success
    rejected = partial.rejected_spans if path == TRACE_EXPORT else partial.rejected_log_records
    return rejected, partial.error_message, after - before


@pytest.mark.parametrize("place", list(PLACES))
@pytest.mark.parametrize("kind", ["kvlist", "array"])
def test_a_failure_is_kept_whatever_is_nested_past_the_limit_and_read_values_warn(
    processor: Processor, place: str, kind: str
) -> None:
    path, request, read = PLACES[place]
    deepest = deepest_readable(kind, body=place == "a log body")
    for depth in (deepest + 1, 200):
        deep = nested(depth, kind, wire.any_string(b"bottom"))
        assert _send(processor, path, request(deep)) == (0, WARNING if read else "", 1)
    # Just under the limit: read (and ignored as the map it is), no warning.
    shallow = nested(deepest, kind)
    assert _send(processor, path, request(shallow)) == (0, "", 1)


def test_a_failure_whose_type_and_message_are_unreadable_has_neither(
    processor: Processor,
) -> None:
    deep_type = wire.key_value(b"exception.type", nested(200, "kvlist"))
    rejected, message, stored = _send(processor, TRACE_EXPORT, _span_request([deep_type], [], []))
    assert (rejected, stored) == (1, 0)
    assert message == (
        "exception event without exception.type or exception.message that can be read "
        "(exception.type not read)"
    )


def test_a_key_that_does_not_decode_still_rejects_the_failure(processor: Processor) -> None:
    bad_key = wire.key_value(b"\xff\xfe", nested(200, "array"))
    rejected, message, stored = _send(
        processor, TRACE_EXPORT, _span_request([TYPE, bad_key], [], [])
    )
    assert (rejected, stored) == (1, 0)
    assert "attributes do not decode" in message


def test_a_log_record_whose_type_cannot_be_read_is_rejected_not_ignored(
    processor: Processor,
) -> None:
    deep_type = wire.key_value(b"exception.type", nested(200, "array"))
    rejected, message, stored = _send(processor, LOGS_EXPORT, _log_request([deep_type]))
    assert (rejected, stored) == (1, 0)
    assert message.endswith("(exception.type not read)")


def test_span_attributes_are_read_and_so_warned_about_when_rules_ask_for_them() -> None:
    deep = _attribute(nested(200, "array"))
    body = _span_request([TYPE, deep, wire.key_value(b"tenant", wire.any_string(b"t1"))], [], [])
    two_failures = _span_request([TYPE], [deep, deep], [])  # the span's values count once
    assert extract.extract_spans(two_failures).skipped == 0
    found = extract.extract_spans(two_failures, attributes=True)
    assert (len(found.occurrences), found.rejected, found.skipped) == (1, 0, 2)
    assert found.message.startswith("2 values not read")
    (item,) = extract.extract_spans(body, attributes=True).occurrences
    assert item.attributes == {"tenant": "t1"}


def test_a_service_name_that_cannot_be_read_is_unknown_service() -> None:
    deep = nested(200, "kvlist")
    body = _span_request([TYPE], [], [wire.key_value(b"service.name", deep)], service=False)
    (item,) = extract.extract_spans(body).occurrences
    assert item.service == "unknown_service"
