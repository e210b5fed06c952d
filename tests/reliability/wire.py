"""Protocol-buffer wire format written by hand, for requests no generated class can build.

Generated message classes refuse invalid UTF-8, nesting past the parser's
limit and lengths that lie; the fuzzer needs exactly those. Field numbers are
OTLP's (``opentelemetry/proto``): a request is built from the outside in.
"""

from __future__ import annotations

VARINT, I64, LEN, I32 = 0, 1, 2, 5


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer (negative ones as 64-bit two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def field_bytes(field: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or embedded message)."""
    return tag(field, LEN) + varint(len(payload)) + payload


def field_varint(field: int, value: int) -> bytes:
    return tag(field, VARINT) + varint(value)


def field_fixed64(field: int, value: int) -> bytes:
    return tag(field, I64) + (value & ((1 << 64) - 1)).to_bytes(8, "little")


# AnyValue: 1 string, 2 bool, 3 int, 4 double, 5 array, 6 kvlist, 7 bytes.
def any_string(text: bytes) -> bytes:
    return field_bytes(1, text)


def any_int(value: int) -> bytes:
    return field_varint(3, value)


def any_array(*values: bytes) -> bytes:
    return field_bytes(5, b"".join(field_bytes(1, value) for value in values))


def any_kvlist(*pairs: bytes) -> bytes:
    return field_bytes(6, b"".join(field_bytes(1, pair) for pair in pairs))


def key_value(key: bytes, value: bytes) -> bytes:
    """A ``KeyValue`` (1 key, 2 value)."""
    return field_bytes(1, key) + field_bytes(2, value)


def nested_value(depth: int, kind: str = "kvlist") -> bytes:
    """An ``AnyValue`` holding itself ``depth`` times (kvlist or array), a string inside."""
    value = any_string(b"bottom")
    for _ in range(depth):
        value = any_kvlist(key_value(b"k", value)) if kind == "kvlist" else any_array(value)
    return value


def exception_event(attributes: list[bytes], time_unix_nano: int = 1) -> bytes:
    """A ``Span.Event`` named ``exception`` (1 time fixed64, 2 name, 3 attributes)."""
    return (
        field_fixed64(1, time_unix_nano)
        + field_bytes(2, b"exception")
        + b"".join(field_bytes(3, item) for item in attributes)
    )


def trace_request(
    events: list[bytes], *, service: bytes = b"fuzz", span_name: bytes = b"w"
) -> bytes:
    """An ``ExportTraceServiceRequest`` with one span holding ``events``."""
    span = (
        field_bytes(1, bytes(range(1, 17)))
        + field_bytes(2, bytes(range(1, 9)))
        + field_bytes(5, span_name)
        + b"".join(field_bytes(11, event) for event in events)
    )
    resource = field_bytes(1, key_value(b"service.name", any_string(service)))
    resource_spans = field_bytes(1, resource) + field_bytes(2, field_bytes(2, span))
    return field_bytes(1, resource_spans)


def logs_request(attributes: list[bytes], *, service: bytes = b"fuzz") -> bytes:
    """An ``ExportLogsServiceRequest`` with one log record (6 attributes)."""
    record = field_fixed64(1, 1) + b"".join(field_bytes(6, item) for item in attributes)
    resource = field_bytes(1, key_value(b"service.name", any_string(service)))
    resource_logs = field_bytes(1, resource) + field_bytes(2, field_bytes(2, record))
    return field_bytes(1, resource_logs)


def metrics_request(name: bytes, attributes: list[bytes]) -> bytes:
    """An ``ExportMetricsServiceRequest``: one gauge (``Metric`` 1 name, 5 gauge) with
    one data point (7 attributes, 4 as_double)."""
    point = field_fixed64(4, 1) + b"".join(field_bytes(7, item) for item in attributes)
    metric = field_bytes(1, name) + field_bytes(5, field_bytes(1, point))
    resource = field_bytes(1, key_value(b"service.name", any_string(b"fuzz")))
    resource_metrics = field_bytes(1, resource) + field_bytes(2, field_bytes(2, metric))
    return field_bytes(1, resource_metrics)
