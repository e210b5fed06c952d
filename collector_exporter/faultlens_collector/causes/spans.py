"""What root-cause linking reads from OTLP spans, read cheaply on the ingest path.

* :func:`facts_of` — the facts of a span that carries failures, from the frame
  ingest decoded anyway to read those failures (:mod:`~faultlens_collector.processor.framing`):
  trace and span ids, parent id, start and end, status code.
* :func:`add_wanted` — the spans *without* failures that a held trace wants (the
  parent of a span that passed a failure on, :mod:`.window`). They are found without
  decoding the others: a serialized span starts with its trace id and its span id
  (fields 1 and 2, written first by every OpenTelemetry SDK and by the Collector), so
  the span id is at bytes 20 to 28 of each span; one C-level pass over a scope's spans
  compares those bytes with the wanted ids, and only a span that matches is decoded. A
  span written in another field order is not found: linking then treats it as missing.
"""

from __future__ import annotations

import operator
from collections.abc import Container, Sequence
from typing import Any, Final

from google.protobuf.message import DecodeError

from faultlens_collector.causes.linking import FailureLike, SpanFacts
from faultlens_collector.processor.framing import SpanFrame
from faultlens_collector.processor.framing import StatusFrame as _StatusFrame

#: Bytes 20 to 28 of a span serialized trace id first: ``0x0a 0x10`` + 16 id bytes, then
#: ``0x12 0x08`` + the 8 bytes of the span id.
_SPAN_ID: Final = operator.itemgetter(slice(20, 28))

#: ``Status.code`` (field 3, varint) as the first byte of its entry.
_CODE_TAG: Final = 0x18
_new: Final = tuple.__new__

#: ``(raw trace id, facts)``: one span of a trace, as the window takes it.
TracedSpan = tuple[bytes, SpanFacts]


def facts_of(span: Any, service: str, failures: Sequence[FailureLike]) -> TracedSpan:
    """The linking facts of a decoded ``SpanFrame`` with ``failures`` on it (the tuple is
    built directly: this runs for every span with failures)."""
    return span.trace_id, _new(
        SpanFacts,
        (
            span.span_id,
            span.parent_span_id,
            span.start_time_unix_nano,
            span.end_time_unix_nano,
            status_code(span.status),
            service,
            failures,
            span.kind,
        ),
    )


def status_code(status: bytes) -> int:
    """``Status.code`` of a serialized ``Status``: empty is UNSET, ``0x18 <code>`` (field
    3, what SDKs write without a message) is read directly, anything else is decoded."""
    if not status:
        return 0
    if len(status) == 2 and status[0] == _CODE_TAG:
        return status[1]
    try:
        return int(_StatusFrame.FromString(status).code)
    except DecodeError:
        return 0


def add_wanted(
    items: Sequence[bytes], wanted: Container[bytes], service: str, found: list[TracedSpan]
) -> None:
    """Append to ``found`` the facts of the serialized spans in ``items`` whose span id
    is in ``wanted`` (a span that does not decode is skipped: the next hop validates
    it)."""
    if not any(map(wanted.__contains__, map(_SPAN_ID, items))):
        return
    for raw in items:
        if raw[20:28] in wanted:
            try:
                span = SpanFrame.FromString(raw)
            except DecodeError:
                continue
            if span.span_id in wanted:
                found.append(facts_of(span, service, ()))
