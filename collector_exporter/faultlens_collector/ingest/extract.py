"""Failures found in OTLP requests: :class:`Occurrence` and the extractors.

A failure is an ``exception`` span event (TraceService) or a log record carrying
``exception.type`` or ``exception.message`` (LogsService), from any OpenTelemetry
SDK. The ``failure.*`` attributes faultlens' SDK adds are used when present and
valid; otherwise the processor derives them: the fingerprint from the type, the
stack trace and the message; the category from the type's name; whether it was
handled from ``exception.escaped`` (a bool, or the string ``"true"``/``"false"`` in
any case, as the Python SDK writes it) and, for a span event, from its span's status
(:mod:`.escaped`: a span that ended with status ERROR for this exception means it
escaped, whatever ``exception.escaped`` says); the severity ``medium`` (``high`` for a
failure that escaped).

Only the spans and log records that carry a failure are decoded (see
:mod:`.framing`), and only what the group store needs is copied out of them.
Oversized strings are truncated, never rejected.

**Values that cannot be read.** The processor reads few values: every attribute
of a failure's event or log record, the resource's ``service.name`` and — only when a
listener asks for attributes (rules, halt rules, hooks) — the span's attributes.
Nothing else (other resource attributes, log bodies, spans without failures) is
decoded at all: it is passed on unchanged and can hold anything. A value it reads
that nests past the protobuf parser's limit (100 messages, counted from the
attribute: an ``AnyValue`` kvlist up to 33 levels deep, an array up to 49), or
whose inside does not decode, is skipped: the failure is kept without it, and the
reply's ``partial_success`` says how many values were skipped (a warning: its
rejected count stays 0). A failure whose ``exception.type`` and
``exception.message`` are both unreadable has neither and is rejected. Only bytes
that are not even a ``KeyValue`` (a key that is not UTF-8, a length that lies)
reject the span or record.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from faultlens import semconv
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from faultlens_collector.causes.spans import (
    EVERY_TRACE,
    SpanTrees,
    TracedSpan,
    add_wanted,
    facts_of,
    logged_span,
)
from faultlens_collector.groups.model import Occurrence
from faultlens_collector.ingest.categories import category_of_type
from faultlens_collector.ingest.escaped import escaped_on
from faultlens_collector.ingest.fingerprint import fingerprint_of
from faultlens_collector.ingest.framing import (
    LOG_MARKERS,
    SPAN_MARKERS,
    EventFrame,
    KeyValueFrame,
    LogRecordFrame,
    ResourceFrame,
    SpanFrame,
    candidates,
    exception_span_indexes,
    parse_frames,
)

#: Longest ``exception.message`` kept (characters).
MAX_MESSAGE: Final = 8 * 1024
#: Longest ``exception.stacktrace`` kept (characters).
MAX_STACKTRACE: Final = 64 * 1024
#: Longest span name, service name or category kept.
MAX_NAME: Final = 256
#: ``failure.count`` values above this are clamped (a single event cannot stand for more).
MAX_COUNT: Final = 1_000_000_000
#: Attributes of a span or event copied for halt-rule keys beyond this many are ignored.
MAX_ATTRIBUTES: Final = 64
#: Times (Unix ns) past this are not times (the store holds signed 64-bit integers).
MAX_TIME: Final = (1 << 63) - 1

_EXCEPTION_KEYS: Final = frozenset(
    {semconv.EXCEPTION_TYPE, semconv.EXCEPTION_MESSAGE, semconv.EXCEPTION_STACKTRACE}
)
_FAILURE_KEYS: Final = _EXCEPTION_KEYS | {
    "exception.escaped",
    semconv.FAILURE_CATEGORY,
    semconv.FAILURE_SEVERITY,
    semconv.FAILURE_FINGERPRINT,
    semconv.FAILURE_HANDLED,
    semconv.FAILURE_COUNT,
    semconv.FAILURE_SOURCE,
}
#: Decoded ``KeyValue``s kept, and the largest one kept (stack traces are decoded each time).
_CACHED_KEY_VALUES: Final = 16_384
_CACHED_KEY_VALUE_BYTES: Final = 1024
_KEY_VALUES: dict[bytes, tuple[str, Any]] = {}
#: Failure templates kept, and the longest message plus stack trace a kept one may have.
_CACHED_TEMPLATES: Final = 1024
_CACHED_TEMPLATE_CHARS: Final = 16 * 1024
#: ... and the longest serialized span event whose verdict is kept.
_CACHED_TEMPLATE_BYTES: Final = 16 * 1024
#: Verdicts by serialized attribute set (tuple) or span event without its time (bytes).
_TEMPLATES: dict[object, Template | InvalidFailure | None] = {}


class _Unseen(enum.Enum):
    """No verdict cached (None is one: "not an exception event")."""

    TOKEN = 0


class _Unreadable(enum.Enum):
    """A value that could not be read (None is one: "not a scalar")."""

    VALUE = 0


_UNSEEN: Final = _Unseen.TOKEN
#: ``Span.Event.time_unix_nano`` (field 1, fixed64): the tag it starts with when present.
_EVENT_TIME_TAG: Final = 0x09
#: All-zero IDs: invalid in W3C trace context, so no link to a trace.
_INVALID_TRACE_ID: Final = bytes(16)
_INVALID_SPAN_ID: Final = bytes(8)
_SCALARS: Final = frozenset({"string_value", "bool_value", "int_value", "double_value"})
#: ``exception.escaped`` sent as text.
_TRUTH: Final = {"true": True, "false": False}
#: The value of an attribute that could not be read (:func:`readable_key_value`).
UNREADABLE: Final = _Unreadable.VALUE
#: ``KeyValue.key`` (field 1) = "service.name", as encoded on the wire.
_SERVICE_NAME_KEY: Final = b"\x0a\x0cservice.name"


@dataclass(slots=True)
class Extraction:
    """What one request held: its failures and the items rejected as invalid."""

    occurrences: list[Occurrence] = field(default_factory=list)
    items: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    #: Values not read (nested past the parser's limit, or undecodable inside).
    skipped: int = 0
    #: With ``trees`` (root-cause linking): the facts of the spans with failures and of
    #: the wanted spans, of the traces followed (:mod:`faultlens_collector.causes.spans`),
    #: and how many spans with failures there were, followed or not.
    spans: list[TracedSpan] = field(default_factory=list)
    offered: int = 0

    def reject(self, reason: str) -> None:
        """Count one rejected item (span or log record) and remember why (first few reasons)."""
        self.rejected += 1
        if len(self.reasons) < 3 and reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def message(self) -> str:
        """The ``partial_success`` error message: the distinct reasons, ``; ``-joined, and
        how many values were not read."""
        notes = list(self.reasons)
        if self.skipped:
            notes.append(
                f"{self.skipped} value{'s' if self.skipped > 1 else ''} not read (nested "
                "deeper than 100 messages, or not decodable inside); their failures are kept"
            )
        return "; ".join(notes)


def any_value(value: Any) -> Any:
    """The Python value of an OTLP ``AnyValue`` (arrays as tuples of scalars, else None)."""
    kind = value.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(value, kind)
    if kind == "array_value":
        items = []
        for item in value.array_value.values:
            item_kind = item.WhichOneof("value")
            if item_kind in _SCALARS:
                items.append(getattr(item, item_kind))
        return tuple(items)
    return None


def attributes_of(key_values: Iterable[Any], limit: int = MAX_ATTRIBUTES) -> dict[str, Any]:
    """Scalar and array attributes of a repeated ``KeyValue`` (nested maps and bytes skipped)."""
    result: dict[str, Any] = {}
    for item in key_values:
        if len(result) >= limit:
            break
        value = any_value(item.value)
        if value is not None:
            result[item.key] = value
    return result


def resource_service(resource: bytes, found: Extraction | None = None) -> str:
    """``service.name`` of a serialized OTLP resource, or ``unknown_service`` as the SDKs
    default to; the other attributes are not decoded. A ``service.name`` that cannot be
    read is counted in ``found``. Raises ``DecodeError`` when the resource's frame, or
    the ``service.name`` attribute's key, does not decode."""
    for raw in ResourceFrame.FromString(resource).attributes:
        if raw.startswith(_SERVICE_NAME_KEY):
            key, value = readable_key_value(raw)
            if value is UNREADABLE:
                if found is not None:
                    found.skipped += 1
            elif key == "service.name":
                return _text(value, MAX_NAME) or "unknown_service"
    return "unknown_service"


def key_value(raw: bytes) -> tuple[str, Any]:
    """``(key, value)`` of a serialized ``KeyValue`` (value as :func:`any_value` gives it).

    Small entries are cached (bounded): the same attribute recurs in every
    failure of a defect. Raises ``DecodeError`` for bytes that are not a
    ``KeyValue`` (including invalid UTF-8).
    """
    cached = _KEY_VALUES.get(raw)
    if cached is not None:
        return cached
    item = KeyValue.FromString(raw)
    decoded = (item.key, any_value(item.value))
    if len(raw) <= _CACHED_KEY_VALUE_BYTES:
        if len(_KEY_VALUES) >= _CACHED_KEY_VALUES:
            _KEY_VALUES.clear()
        _KEY_VALUES[raw] = decoded
    return decoded


def readable_key_value(raw: bytes) -> tuple[str, Any]:
    """:func:`key_value`, or ``(key, UNREADABLE)`` for a ``KeyValue`` whose value cannot be
    read (nested past the parser's limit, or undecodable inside). Raises ``DecodeError``
    when even the key and the value's framing do not decode."""
    try:
        return key_value(raw)
    except DecodeError:
        # The key and framing decode (or this raises): only the value does not.
        return KeyValueFrame.FromString(raw).key, UNREADABLE


def failure_fields(attributes: Iterable[bytes]) -> tuple[dict[str, Any], list[str]]:
    """The scalar ``exception.*`` and ``failure.*`` attributes among serialized
    ``KeyValue``s, and the keys of the values that could not be read (left out).

    Raises ``DecodeError`` when an attribute's key or framing does not decode.
    """
    result: dict[str, Any] = {}
    unreadable: list[str] = []
    for raw in attributes:
        key, value = readable_key_value(raw)
        if value is UNREADABLE:
            unreadable.append(key)
        elif key in _FAILURE_KEYS and value is not None and not isinstance(value, tuple):
            result[key] = value
    return result, unreadable


def attributes_of_serialized(
    attributes: Iterable[bytes], limit: int = MAX_ATTRIBUTES, found: Extraction | None = None
) -> dict[str, Any]:
    """Scalar and array attributes among serialized ``KeyValue``s (undecodable ones skipped,
    and counted in ``found`` when given)."""
    result: dict[str, Any] = {}
    for raw in attributes:
        if len(result) >= limit:
            break
        try:
            key, value = key_value(raw)
        except DecodeError:
            if found is not None:
                found.skipped += 1
            continue
        if value is not None:
            result[key] = value
    return result


def extract_spans(
    body: bytes, *, attributes: bool = False, trees: SpanTrees | None = None
) -> Extraction:
    """The failures in a serialized ``ExportTraceServiceRequest``: its ``exception`` events.

    Only spans with an ``exception`` event are decoded (see :mod:`.framing`); one
    whose bytes or ``exception`` events do not decode is rejected (counted in the
    result), the others are not inspected. An occurrence's time is the
    event's, else the span's end, else now (a time past :data:`MAX_TIME`
    counts as none). With ``attributes``, each
    occurrence also carries the span's attributes merged with the event's (the
    event's win), for halt-rule keys; without, only the failure fields are
    decoded. With ``trees`` (root-cause linking), ``spans`` holds the linking facts of
    each span with failures and of each span whose id is wanted, in the traces followed.
    Raises ``DecodeError`` when the request's frame does not decode.
    """
    found = Extraction()
    now = time.time_ns()
    frame = parse_frames(body)
    indexes = exception_span_indexes(body)
    for number, (service, items) in enumerate(scopes(frame, found)):
        found.items += len(items)
        spans = (
            candidates(items, SPAN_MARKERS)
            if indexes is None
            else [items[index] for index in indexes[number]]
        )
        _add_span_failures(found, spans, service, now, attributes, trees=trees)
        if trees is not None and trees.scan_now():
            add_wanted(items, trees.wanted, service, found.spans)
    return found


def _add_span_failures(
    found: Extraction,
    spans: Iterable[bytes],
    service: str,
    now: int,
    attributes: bool,
    *,
    trees: SpanTrees | None = None,
) -> None:
    """Add the failures of serialized spans to ``found``. A span that does not decode, or
    one of whose ``exception`` events does not, is rejected with none of its failures.

    One loop over the spans of a scope, the cached verdict of a repeated event looked up
    in it (see :func:`exception_event`): this runs for every failure received.
    """
    decode = SpanFrame.FromString
    verdicts = _TEMPLATES
    added = found.occurrences
    keep = trees.keep if trees is not None else 0  # 0: linking reads nothing
    for raw in spans:
        before = len(added)
        invalid: list[InvalidFailure] | None = None
        known: tuple[str, str, str, int] | None = None  # read from the span once, if needed
        own: dict[str, Any] | None = None  # the span's attributes, read once if asked for
        failures = skipped = 0
        try:
            span = decode(raw)
            for event in span.events:
                event_attributes: Sequence[bytes] = ()
                if attributes:
                    template, when, event_attributes = _decoded_event(event)
                else:
                    hit = _cached_verdict(verdicts, event)
                    if hit is _UNSEEN:
                        template, when = exception_event(event)
                    else:
                        template, when = hit, int.from_bytes(event[1:9], "little")
                if template is None:
                    continue
                if isinstance(template, InvalidFailure):
                    invalid = [*(invalid or ()), template]
                    continue
                failures += 1
                if type(template) is AnnotatedTemplate:
                    skipped += template.skipped
                    escaped = template.escaped
                    if escaped is not None and escaped_on(span, raw, template[1], template[2]):
                        template = escaped
                if not template[7]:  # failure.count 0: refers to one counted elsewhere
                    continue
                if known is None:
                    known = (
                        span.name[:MAX_NAME],
                        *_hex_ids(span.trace_id, span.span_id),
                        span.end_time_unix_nano,
                    )
                name, trace_hex, span_hex, end = known
                context: dict[str, Any] = {}
                if attributes:
                    context, own = _context(span, event_attributes, own, found)
                added.append(
                    Occurrence(
                        *template,
                        _time(when, end, now),
                        service,
                        name,
                        trace_hex,
                        span_hex,
                        context,
                    )
                )
            _finish_span(found, before, failures, span, service=service, keep=keep)
        except DecodeError:
            del added[before:]  # none of a span that does not decode
            found.reject("a span with an exception event does not decode")
            continue
        found.skipped += skipped
        for reason in invalid or ():
            found.reject(f"exception event {reason}")


def _finish_span(
    found: Extraction, before: int, failures: int, span: Any, *, service: str, keep: int
) -> None:
    """After the events of one span: count once what several of its events say about one
    exception; with linking on (``keep``, :attr:`SpanTrees.keep
    <faultlens_collector.causes.spans.SpanTrees.keep>`), count a span with failures and
    append its span-tree facts when its trace is followed."""
    added = found.occurrences
    if failures > 1:
        _merge_duplicates(added, before, span.events)
    if keep and len(added) > before:
        found.offered += 1
        trace_id = span.trace_id
        if keep >= EVERY_TRACE or (trace_id and trace_id[0] < keep):
            found.spans.append(facts_of(span, service, added[before:], trace_id))


def _context(
    span: Any, event_attributes: Sequence[bytes], own: dict[str, Any] | None, found: Extraction
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the attributes kept beside a failure: the span's merged with its event's, the
    event's winning, ``exception.*`` dropped; the span's own, decoded once per span with
    the values that cannot be read counted in ``found``)."""
    if own is None:
        own = attributes_of_serialized(span.attributes, found=found)
    context = {**own, **attributes_of_serialized(event_attributes)}
    _drop_exception_keys(context)
    return context, own


def _merge_duplicates(added: list[Occurrence], start: int, events: Sequence[bytes]) -> None:
    """Count once what several ``exception`` events of one span say about one exception.

    ``added[start:]`` are the span's occurrences, in the order of its events. Two
    layers often record the same exception on the same span — a faultlens SDK
    and a framework instrumentation, or two instrumentations — and each writes
    its own event. So, within the span:

    * an event without a ``failure.fingerprint`` (a plain OpenTelemetry one) whose
      ``exception.type`` and ``exception.message`` are those of an event that has
      one (a faultlens SDK's, counted or a ``failure.count`` 0 reference) is the
      same exception: the faultlens event stands for it;
    * of plain events with the same type, message and stack trace, the first
      stands for the others.

    Two *different* exceptions with the same type and message recorded on one
    span by two layers are counted once too: the price of not counting every
    failing request of a Flask or FastAPI app twice. Runs only for spans with two
    or more ``exception`` events.
    """
    described: list[tuple[Template, bool]] = []
    for raw in events:
        template, _, attributes = _decoded_event(raw)
        if isinstance(template, tuple):
            described.append((template, _carries_fingerprint(attributes)))
    counted = [(template, sdk) for template, sdk in described if template[7]]
    occurrences = added[start:]
    if len(counted) != len(occurrences):  # not the events these came from: leave them
        return
    by_sdk = {(template[1], template[2]) for template, sdk in described if sdk}
    plain: set[tuple[str, str, str]] = set()
    kept: list[Occurrence] = []
    for occurrence, (_, sdk) in zip(occurrences, counted, strict=True):
        if not sdk:
            key = (occurrence.exception_type, occurrence.message, occurrence.stacktrace)
            if key[:2] in by_sdk or key in plain:
                continue
            plain.add(key)
        kept.append(occurrence)
    added[start:] = kept


def _carries_fingerprint(attributes: Sequence[bytes]) -> bool:
    """Whether serialized event attributes have a ``failure.fingerprint`` string."""
    for raw in attributes:
        try:
            key, value = key_value(raw)
        except DecodeError:
            continue
        if key == semconv.FAILURE_FINGERPRINT and isinstance(value, str):
            return True
    return False


def exception_event(raw: bytes) -> tuple[Template | InvalidFailure | None, int]:
    """``(template, time)`` of a serialized span event: the template is None for an event
    not named ``exception``, an :class:`InvalidFailure` for an ``exception`` event that
    cannot be a failure.

    The verdict is cached (bounded) by the event's bytes without its leading time —
    the same defect sends the same event every time — so a repeat is one dictionary
    lookup. Raises ``DecodeError`` when the event does not decode.
    """
    hit = _cached_verdict(_TEMPLATES, raw)
    if hit is not _UNSEEN:
        return hit, int.from_bytes(raw[1:9], "little")
    key = raw[9:] if len(raw) >= 9 and raw[0] == _EVENT_TIME_TAG else b""
    template, when, _ = _decoded_event(raw)
    # Kept only when the leading time is the event's time (a later time field would win),
    # so a hit, whose bytes after that time are the same, may take the leading time.
    if key and len(key) <= _CACHED_TEMPLATE_BYTES and when == int.from_bytes(raw[1:9], "little"):
        _remember(key, template)
    return template, when


def _cached_verdict(
    verdicts: dict[object, Template | InvalidFailure | None], raw: bytes
) -> Template | InvalidFailure | _Unseen | None:
    """The cached verdict on a serialized span event that starts with its time (one
    lookup, safe while another thread empties the cache), else ``_UNSEEN``."""
    if len(raw) >= 9 and raw[0] == _EVENT_TIME_TAG:
        return verdicts.get(raw[9:], _UNSEEN)
    return _UNSEEN


def _decoded_event(raw: bytes) -> tuple[Template | InvalidFailure | None, int, Sequence[bytes]]:
    """``(template, time, serialized attributes)`` of a span event, decoded (see
    :func:`exception_event`)."""
    event = EventFrame.FromString(raw)
    if event.name != semconv.EXCEPTION_EVENT_NAME:
        return None, event.time_unix_nano, ()
    try:
        template: Template | InvalidFailure = failure_template(event.attributes)
    except InvalidFailure as exc:
        template = exc.with_traceback(None)  # it may be cached: keep no frames alive
    return template, event.time_unix_nano, event.attributes


def _remember(key: object, verdict: Template | InvalidFailure | None) -> None:
    """Cache ``verdict`` under ``key``, emptying the cache when it is full."""
    if len(_TEMPLATES) >= _CACHED_TEMPLATES:
        _TEMPLATES.clear()
    _TEMPLATES[key] = verdict


def extract_logs(
    body: bytes, *, attributes: bool = False, trees: SpanTrees | None = None
) -> Extraction:
    """The failures in a serialized ``ExportLogsServiceRequest``: records with ``exception.*``.

    Only records whose bytes contain an ``exception.type`` or
    ``exception.message`` key are decoded; ``attributes``, ``trees`` (a failure tied to
    a span is linked through that span) and errors as for :func:`extract_spans`.
    """
    found = Extraction()
    now = time.time_ns()
    for service, items in scopes(parse_frames(body), found):
        found.items += len(items)
        for raw in candidates(items, LOG_MARKERS):
            try:
                record = LogRecordFrame.FromString(raw)
                template = failure_template(record.attributes)
            except DecodeError:
                found.reject("a log record with exception attributes does not decode")
                continue
            except InvalidFailure as exc:
                if exc.has_exception_keys:
                    found.reject(f"log record {exc}")
                continue
            if type(template) is AnnotatedTemplate:
                found.skipped += template.skipped
            if not template[7]:  # failure.count 0: refers to one counted elsewhere
                continue
            occurrence = _occurrence(
                template,
                attributes_of_serialized(record.attributes) if attributes else {},
                time_unix_nano=_time(record.time_unix_nano, record.observed_time_unix_nano, now),
                service=service,
                span_name="",
                trace_id=record.trace_id,
                span_id=record.span_id,
            )
            found.occurrences.append(occurrence)
            if trees is not None and occurrence.span_id:
                found.offered += 1
                if trees.follows(record.trace_id):
                    found.spans.append(logged_span(record, service, occurrence))
    return found


def scopes(frame: Any, found: Extraction | None = None) -> Iterator[tuple[str, Sequence[bytes]]]:
    """``(service.name, serialized items)`` per scope of a request frame (resource values
    that cannot be read counted in ``found``)."""
    for entry in frame.resources:
        service = resource_service(entry.resource, found)
        for scope in entry.scopes:
            yield service, scope.items


class InvalidFailure(ValueError):
    """An ``exception`` event or record that cannot be a failure (the message says why)."""

    def __init__(self, message: str, *, has_exception_keys: bool = True) -> None:
        super().__init__(message)
        self.has_exception_keys = has_exception_keys


#: What an occurrence takes from its attributes alone: the first eight fields of
#: :class:`Occurrence`, fingerprint to count.
Template = tuple[str, str, str, str, str, str, "bool | None", int]


class AnnotatedTemplate(Template):
    """A :data:`Template` that says more than its fields; a tuple like any template (an
    occurrence is built from it the same way), its type the only mark, checked once per
    failure.

    ``escaped`` — set when the span may still decide ``handled``: the failure has no
    ``failure.handled`` and did not say it escaped. It is the same failure as escaped
    (``handled`` False, severity ``high`` unless ``failure.severity`` gave one), and
    applies when the event's span ended with status ERROR for this exception
    (:func:`~.escaped.escaped_by_status`). ``skipped`` — values of the failure's
    attributes that could not be read (see the module docstring)."""

    escaped: Template | None
    skipped: int


def failure_template(attributes: Sequence[bytes]) -> Template:
    """The failure fields of serialized attributes, fingerprint computed (cached per set).

    The same attribute set — one defect with the same message — recurs in every
    repeat, so the result is cached (bounded; sets with long messages or stack
    traces are not kept). Raises :class:`InvalidFailure` when neither
    ``exception.type`` nor ``exception.message`` is a non-empty string (``has_exception_keys``
    tells whether any ``exception.*`` key was there), or when an attribute does
    not decode.
    """
    key = tuple(attributes)
    template = _TEMPLATES.get(key)
    if isinstance(template, tuple):
        return template
    try:
        fields, unreadable = failure_fields(key)
    except DecodeError:
        raise InvalidFailure("attributes do not decode") from None
    if not _identified(fields):
        unread = [key for key in unreadable if key in _EXCEPTION_KEYS]
        raise InvalidFailure(
            "without exception.type or exception.message"
            + (f" that can be read ({', '.join(unread)} not read)" if unread else ""),
            has_exception_keys=bool(unread) or any(name in _EXCEPTION_KEYS for name in fields),
        )
    exception_type = _text(fields.get(semconv.EXCEPTION_TYPE), MAX_NAME)
    message = _text(fields.get(semconv.EXCEPTION_MESSAGE), MAX_MESSAGE)
    stacktrace = _text(fields.get(semconv.EXCEPTION_STACKTRACE), MAX_STACKTRACE)
    handled = _handled(fields)
    severity = fields.get(semconv.FAILURE_SEVERITY)
    given = severity in semconv.SEVERITY_RANK
    if not given:
        severity = "medium" if handled is not False else "high"
    category = _text(fields.get(semconv.FAILURE_CATEGORY), MAX_NAME) or category_of_type(
        exception_type
    )
    fingerprint = fingerprint_of(fields)
    count = _count(fields.get(semconv.FAILURE_COUNT))
    fixed = (fingerprint, exception_type, message, stacktrace, category)
    result: Template = (*fixed, str(severity), handled, count)
    derivable = handled is not False and not isinstance(fields.get(semconv.FAILURE_HANDLED), bool)
    if derivable or unreadable:
        result = AnnotatedTemplate(result)
        result.escaped = (
            (*fixed, str(severity) if given else "high", False, count) if derivable else None
        )
        result.skipped = len(unreadable)
    if len(message) + len(stacktrace) <= _CACHED_TEMPLATE_CHARS:
        _remember(key, result)
    return result


def _occurrence(
    template: Template,
    context: dict[str, Any],
    *,
    time_unix_nano: int,
    service: str,
    span_name: str,
    trace_id: bytes,
    span_id: bytes,
) -> Occurrence:
    _drop_exception_keys(context)
    return Occurrence(
        *template,
        time_unix_nano,
        service,
        span_name[:MAX_NAME],
        *_hex_ids(trace_id, span_id),
        context,
    )


def _hex_ids(trace_id: bytes, span_id: bytes) -> tuple[str, str]:
    """Trace and span ID as hex; empty when not valid W3C IDs (wrong length, all zero)."""
    return (
        trace_id.hex() if len(trace_id) == 16 and trace_id != _INVALID_TRACE_ID else "",
        span_id.hex() if len(span_id) == 8 and span_id != _INVALID_SPAN_ID else "",
    )


def _drop_exception_keys(context: dict[str, Any]) -> None:
    """Remove ``exception.*`` keys from attributes kept beside a failure (the group has them)."""
    if context:
        for key in _EXCEPTION_KEYS:
            context.pop(key, None)


def _identified(fields: Mapping[str, Any]) -> bool:
    """Whether a failure has a type or a message: a non-empty string in either."""
    return bool(
        _text(fields.get(semconv.EXCEPTION_TYPE), 1)
        or _text(fields.get(semconv.EXCEPTION_MESSAGE), 1)
    )


def _handled(attributes: Mapping[str, Any]) -> bool | None:
    """``failure.handled``, else the negation of ``exception.escaped`` — a bool or the
    text ``true``/``false`` in any case (the Python SDK writes ``"True"``/``"False"``) —
    else None."""
    handled = attributes.get(semconv.FAILURE_HANDLED)
    if isinstance(handled, bool):
        return handled
    escaped = attributes.get("exception.escaped")
    if isinstance(escaped, str):
        escaped = _TRUTH.get(escaped.strip().lower())
    if isinstance(escaped, bool):
        return not escaped
    return None


def _time(first: int, second: int, now: int) -> int:
    """The first of two OTLP times that is set and fits the store, else ``now``."""
    if 0 < first <= MAX_TIME:
        return first
    if 0 < second <= MAX_TIME:
        return second
    return now


def _count(value: Any) -> int:
    """``failure.count``: 1 when absent or not a count; 0 stands for no occurrence (a
    reference to one counted by another event)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 1
    return min(value, MAX_COUNT)


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""
