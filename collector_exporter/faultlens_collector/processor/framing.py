"""Find the spans and log records that can carry a failure without decoding the others.

An OTLP export request is ``resources → scopes → items`` (spans or log records)
for both signals. :func:`parse_frames` decodes only that frame, with each
resource and item left as its serialized bytes (a message type built here whose
field numbers match OTLP; every other field is skipped). :func:`candidates` then
finds, with a byte search over all items of a scope at once, the few items
whose bytes contain a marker — an ``exception`` event name, an
``exception.type`` attribute key — and only those are decoded with the real
OTLP message types.

So the cost of a request grows with its failures, not with its spans: a span
without failure is never turned into a Python object. A marker found in an item
that turns out to hold no failure (the text ``exception`` in some other field)
costs one decode and nothing else; an item that holds a failure always contains
its marker, because protobuf encodes a field's tag, length and text
contiguously.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

#: ``Span.Event.name`` (field 2) = "exception", as encoded on the wire.
SPAN_MARKERS: Final = (b"\x12\x09exception",)
#: ``KeyValue.key`` (field 1) = "exception.type" / "exception.message", as encoded.
LOG_MARKERS: Final = (b"\x0a\x0eexception.type", b"\x0a\x11exception.message")


def _frame_types() -> Any:
    file = descriptor_pb2.FileDescriptorProto(
        name="faultlens/internal/otlp_frame.proto", package="faultlens.internal", syntax="proto3"
    )
    field = descriptor_pb2.FieldDescriptorProto
    repeated, optional = field.LABEL_REPEATED, field.LABEL_OPTIONAL

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        added = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            entry = added.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                entry.type_name = type_name

    # ExportTraceServiceRequest / ExportLogsServiceRequest: field 1, the resource entries.
    message("Frame", ("resources", 1, field.TYPE_MESSAGE, repeated, ".faultlens.internal.Resource"))
    # ResourceSpans / ResourceLogs: 1 resource, 2 scope entries.
    message(
        "Resource",
        ("resource", 1, field.TYPE_BYTES, optional, ""),
        ("scopes", 2, field.TYPE_MESSAGE, repeated, ".faultlens.internal.Scope"),
    )
    # ScopeSpans / ScopeLogs: 2 the spans or log records.
    message("Scope", ("items", 2, field.TYPE_BYTES, repeated, ""))
    # Span and Span.Event with their attributes left serialized (KeyValue bytes).
    message(
        "Span",
        ("trace_id", 1, field.TYPE_BYTES, optional, ""),
        ("span_id", 2, field.TYPE_BYTES, optional, ""),
        ("name", 5, field.TYPE_STRING, optional, ""),
        ("end_time_unix_nano", 8, field.TYPE_FIXED64, optional, ""),
        ("attributes", 9, field.TYPE_BYTES, repeated, ""),
        ("events", 11, field.TYPE_MESSAGE, repeated, ".faultlens.internal.Event"),
    )
    message(
        "Event",
        ("time_unix_nano", 1, field.TYPE_FIXED64, optional, ""),
        ("name", 2, field.TYPE_STRING, optional, ""),
        ("attributes", 3, field.TYPE_BYTES, repeated, ""),
    )
    message(
        "LogRecord",
        ("time_unix_nano", 1, field.TYPE_FIXED64, optional, ""),
        ("attributes", 6, field.TYPE_BYTES, repeated, ""),
        ("trace_id", 9, field.TYPE_BYTES, optional, ""),
        ("span_id", 10, field.TYPE_BYTES, optional, ""),
        ("observed_time_unix_nano", 11, field.TYPE_FIXED64, optional, ""),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return tuple(
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"faultlens.internal.{name}"))
        for name in ("Frame", "Span", "LogRecord")
    )


_FRAME: Any
#: A span whose attributes (its own and its events') stay serialized ``KeyValue`` bytes.
SpanFrame: Any
#: A log record whose attributes stay serialized ``KeyValue`` bytes.
LogRecordFrame: Any
_FRAME, SpanFrame, LogRecordFrame = _frame_types()


def parse_frames(body: bytes) -> Any:
    """The frame of a trace or logs export request (``.resources[].scopes[].items``).

    Raises ``google.protobuf.message.DecodeError`` when even the frame is not
    valid protobuf.
    """
    return _FRAME.FromString(body)


def candidates(items: Sequence[bytes], markers: Sequence[bytes]) -> Iterator[bytes]:
    """The serialized items that contain any of ``markers``, in order, each once."""
    items = list(items)  # a protobuf container copies an item out on every access
    joined = b"".join(items)
    found: set[int] = set()
    ends: list[int] | None = None
    for marker in markers:
        position = joined.find(marker)
        while position >= 0:
            if ends is None:
                ends = list(accumulate(map(len, items)))
            index = bisect_right(ends, position)
            found.add(index)
            position = joined.find(marker, ends[index])
    for index in sorted(found):
        yield items[index]
