"""Spans that ended without failure, for listeners that ask for them.

A consecutive-failure streak (a halt rule's) ends on a success for its key. The
processor sees successes only when applications send it their ordinary spans too; it
then reads, per span with no ``exception`` event and a status other than ERROR, the
values of the key fields its listeners named (``Interest.success_keys``:
``service.name`` from the resource, ``span.name``, any other name from the span's
attributes), and ingest hands each distinct key of a request to the listeners once.
Nothing of this runs unless a listener asks for it.

Spans are found in the request's frame (:mod:`.framing`): a span whose bytes hold
an ``exception`` event name is never a success and is not decoded; the others
are decoded one at a time, and when the only key field is ``service.name`` the
first successful span of a resource settles it — the rest are not decoded.
"""

from __future__ import annotations

from typing import Any, Final

from faultlens.semconv import SERVICE_NAME, SPAN_NAME
from google.protobuf.message import DecodeError
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from faultlens_collector.ingest.extract import attributes_of, scopes
from faultlens_collector.ingest.framing import SPAN_MARKERS, parse_frames

_ERROR: Final = Status.STATUS_CODE_ERROR

#: A success key: (field, value) pairs in the order of the fields asked for.
SuccessKey = tuple[tuple[str, Any], ...]


def success_keys(body: bytes, fields: tuple[str, ...]) -> set[SuccessKey]:
    """The distinct keys of the spans in a serialized ``ExportTraceServiceRequest`` that
    ended without failure. A field a span lacks is left out of its key (a halt rule
    whose key needs it then ignores that success); a span that does not decode is
    skipped."""
    keys: set[SuccessKey] = set()
    attribute_fields = tuple(name for name in fields if name not in (SERVICE_NAME, SPAN_NAME))
    per_span = any(name != SERVICE_NAME for name in fields)
    for service, items in scopes(parse_frames(body)):
        resource_key: SuccessKey = ((SERVICE_NAME, service),)
        if not per_span and resource_key in keys:
            continue
        for raw in items:
            if any(marker in raw for marker in SPAN_MARKERS):
                continue  # it may carry a failure
            try:
                span = Span.FromString(raw)
            except DecodeError:  # not ours to validate: the next hop does
                continue
            if span.status.code == _ERROR:
                continue
            if not per_span:
                keys.add(resource_key)
                break
            attributes = attributes_of(span.attributes) if attribute_fields else {}
            key = []
            for name in fields:
                if name == SERVICE_NAME:
                    key.append((name, service))
                elif name == SPAN_NAME:
                    key.append((name, span.name))
                elif name in attributes:
                    key.append((name, attributes[name]))
            keys.add(tuple(key))
    return keys
