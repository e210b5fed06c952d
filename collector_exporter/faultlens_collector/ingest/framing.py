"""Find the spans and log records that can carry a failure without decoding the others.

An OTLP export request is ``resources → scopes → items`` (spans or log records)
for both signals. :func:`parse_frames` decodes only that frame, with each
resource and item left as its serialized bytes (a message type built here whose
field numbers match OTLP; every other field is skipped). :func:`candidates` then
finds, with a byte search over all items of a scope at once, the few items
whose bytes contain a marker — an ``exception`` event name, an
``exception.type`` attribute key — and only those are decoded with the real
OTLP message types.

For spans there is a faster way than the byte search: :func:`exception_span_indexes`
decodes the request a second time with a skeleton that knows only the events'
names, drops everything else and re-encodes it, leaving a few bytes per span; the
spans with an ``exception`` event are found in that (:func:`candidates` stays the
fallback for a request the skeleton cannot decode).

So the cost of a request grows with its failures, not with its spans: a span
without failure is never turned into a Python object. A marker found in an item
that turns out to hold no failure (the text ``exception`` in some other field)
costs one decode and nothing else; an item that holds a failure always contains
its marker, because protobuf encodes a field's tag, length and text
contiguously.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

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
    # Span (with its status serialized) and Span.Event, their attributes left serialized
    # (KeyValue bytes); the parent, start and status are what root-cause linking reads.
    message(
        "Span",
        ("trace_id", 1, field.TYPE_BYTES, optional, ""),
        ("span_id", 2, field.TYPE_BYTES, optional, ""),
        ("parent_span_id", 4, field.TYPE_BYTES, optional, ""),
        ("name", 5, field.TYPE_STRING, optional, ""),
        ("kind", 6, field.TYPE_INT32, optional, ""),
        ("start_time_unix_nano", 7, field.TYPE_FIXED64, optional, ""),
        ("end_time_unix_nano", 8, field.TYPE_FIXED64, optional, ""),
        ("attributes", 9, field.TYPE_BYTES, repeated, ""),
        ("events", 11, field.TYPE_BYTES, repeated, ""),
        ("status", 15, field.TYPE_BYTES, optional, ""),
    )
    message("SpanStatus", ("code", 3, field.TYPE_INT32, optional, ""))
    message(
        "Event",
        ("time_unix_nano", 1, field.TYPE_FIXED64, optional, ""),
        ("name", 2, field.TYPE_STRING, optional, ""),
        ("attributes", 3, field.TYPE_BYTES, repeated, ""),
    )
    message(
        "LogRecord",
        ("time_unix_nano", 1, field.TYPE_FIXED64, optional, ""),
        ("body", 5, field.TYPE_BYTES, optional, ""),
        ("attributes", 6, field.TYPE_BYTES, repeated, ""),
        ("trace_id", 9, field.TYPE_BYTES, optional, ""),
        ("span_id", 10, field.TYPE_BYTES, optional, ""),
        ("observed_time_unix_nano", 11, field.TYPE_FIXED64, optional, ""),
    )
    # A resource's attributes, and one attribute with its value left serialized (AnyValue
    # bytes): what can be read of an attribute whose value nests past the parser's limit.
    message("ResourceAttributes", ("attributes", 1, field.TYPE_BYTES, repeated, ""))
    message(
        "KeyValue",
        ("key", 1, field.TYPE_STRING, optional, ""),
        ("value", 2, field.TYPE_BYTES, optional, ""),
    )
    # The event-name skeleton of a trace request: resources → scopes → spans → events → name.
    message("EventNames", ("resources", 1, field.TYPE_MESSAGE, repeated, ".faultlens.internal.R"))
    message("R", ("scopes", 2, field.TYPE_MESSAGE, repeated, ".faultlens.internal.S"))
    message("S", ("spans", 2, field.TYPE_MESSAGE, repeated, ".faultlens.internal.E"))
    message("E", ("events", 11, field.TYPE_MESSAGE, repeated, ".faultlens.internal.N"))
    message("N", ("name", 2, field.TYPE_BYTES, optional, ""))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return tuple(
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"faultlens.internal.{name}"))
        for name in (
            "Frame",
            "Span",
            "Event",
            "LogRecord",
            "EventNames",
            "ResourceAttributes",
            "KeyValue",
            "SpanStatus",
        )
    )


_FRAME: Any
#: A span whose attributes stay serialized ``KeyValue`` bytes and whose events stay serialized.
SpanFrame: Any
#: A span event whose attributes stay serialized ``KeyValue`` bytes.
EventFrame: Any
#: A log record whose attributes stay serialized ``KeyValue`` bytes.
LogRecordFrame: Any
_EVENT_NAMES: Any
#: A resource whose attributes stay serialized ``KeyValue`` bytes.
ResourceFrame: Any
#: A ``KeyValue`` whose value stays serialized ``AnyValue`` bytes.
KeyValueFrame: Any
#: A span's ``Status`` (its code only), for the rare status that is not just a code.
StatusFrame: Any
(
    _FRAME,
    SpanFrame,
    EventFrame,
    LogRecordFrame,
    _EVENT_NAMES,
    ResourceFrame,
    KeyValueFrame,
    StatusFrame,
) = _frame_types()
#: A span without events in the re-encoded skeleton (an ``S.spans`` entry of length 0), and
#: a run of them.
_EVENTLESS_SPAN: Final = b"\x12\x00"
_EVENTLESS_RUN: Final = re.compile(rb"(?:\x12\x00)*")
#: A span whose only event is named ``exception``: ``S.spans`` entry (13 bytes) holding one
#: ``E.events`` entry (11 bytes) holding ``N.name``.
_SINGLE_EXCEPTION_SPAN: Final = b"\x12\x0d\x5a\x0b" + SPAN_MARKERS[0]


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


def exception_span_indexes(body: bytes) -> list[list[int]] | None:
    """Per scope of a trace request (in the order of :func:`parse_frames`), the indexes
    of the spans that have an event named ``exception``; None when the request does
    not decode as OTLP (then use :func:`candidates`).

    A span listed may also hold a differently named event whose name contains the
    marker bytes; a span not listed has no ``exception`` event.
    """
    try:
        skeleton = _EVENT_NAMES.FromString(body)
    except DecodeError:
        return None
    skeleton.DiscardUnknownFields()
    found: list[list[int]] = []
    for resource in skeleton.resources:
        for scope in resource.scopes:
            found.append(_indexes_with_marker(scope.SerializeToString(), SPAN_MARKERS[0]))
    return found


def _indexes_with_marker(scope: bytes, marker: bytes) -> list[int]:
    """Indexes of the spans whose events hold ``marker`` in a re-encoded skeleton scope:
    a sequence of ``0x12 <length> <events>`` entries, ``0x12 0x00`` for a span without
    events."""
    indexes = _indexes_of_single_exception_events(scope)
    return _indexes_by_walking(scope, marker) if indexes is None else indexes


def _indexes_of_single_exception_events(scope: bytes) -> list[int] | None:
    """The indexes, when every span of ``scope`` has no event or exactly one, named
    ``exception`` (the usual request); None otherwise.

    Split at the entry of such a span, every piece must be a run of ``0x12 0x00``
    (spans without events): then the entries tile the scope from its start, so they
    are its spans, and a piece of ``n`` bytes holds ``n / 2`` of them.
    """
    pieces = scope.split(_SINGLE_EXCEPTION_SPAN)
    for piece in pieces:
        if piece.count(_EVENTLESS_SPAN) * 2 != len(piece):
            return None
    indexes: list[int] = []
    index = -1
    for piece in pieces[:-1]:
        index += (len(piece) >> 1) + 1
        indexes.append(index)
    return indexes


def _indexes_by_walking(scope: bytes, marker: bytes) -> list[int]:
    """The general case of :func:`_indexes_with_marker`: runs of spans without events are
    skipped by a regular expression, so the Python loop turns once per span with events."""
    indexes: list[int] = []
    position, index, end = 0, 0, len(scope)
    while position < end:
        run_end = _EVENTLESS_RUN.match(scope, position).end()  # type: ignore[union-attr]
        index += (run_end - position) >> 1
        if run_end >= end:
            break
        position, length = _varint(scope, run_end + 1)
        if scope.find(marker, position, position + length) >= 0:
            indexes.append(index)
        position += length
        index += 1
    return indexes


def _varint(data: bytes, position: int) -> tuple[int, int]:
    """``(position after, value)`` of the varint at ``position`` (well-formed input)."""
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return position, value
        shift += 7
