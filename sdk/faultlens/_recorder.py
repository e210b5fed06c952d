"""Turn an exception into a failure on the wire (docs/sdk.md, "What goes on the wire").

:func:`record_failure` is the one path every capture mechanism takes: the
decorator and context manager, the zero-code wrappers, the logging handler,
the excepthooks, the asyncio hook and the resilience layer. It

1. skips exceptions already recorded (the same object passing through several
   captured layers is recorded once, by the first; :mod:`faultlens._seen`
   remembers them by identity without touching them) and control-flow
   exceptions (``GeneratorExit``, ``StopIteration``, ``StopAsyncIteration``,
   ``SystemExit`` with a success code);
2. computes the fingerprint (:mod:`faultlens._fingerprint`), or normalizes the
   caller's;
3. asks storm control (:mod:`faultlens._storm`) whether to emit in full, as an
   aggregate, or just count;
4. classifies (:mod:`faultlens._classify`), redacts (:mod:`faultlens._redact`)
   and emits an ``exception`` span event and/or log record per
   ``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN``. With no recording span the event
   goes on a short span of its own (named ``faultlens.failure``). An escaped
   failure sets the span's status to ERROR and ``error.type``, also when the
   event itself is only counted.

It never raises into the caller: a faultlens bug or an exporter failure is
logged once per kind through the ``faultlens`` logger and the caller goes on.
Re-entrant calls on the same thread (an exporter logging an exception while
faultlens emits) are ignored.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, SeverityNumber, get_logger, get_logger_provider
from opentelemetry.trace import Span, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.util.types import AttributeValue

from faultlens import semconv
from faultlens._classify import Classifier, validate_category, validate_severity
from faultlens._config import Settings, settings_from_env
from faultlens._fingerprint import (
    FrameClassifier,
    fingerprint_exception,
    normalize_fingerprint,
    safe_message,
)
from faultlens._internal_errors import forget_reported, report_internal_error
from faultlens._randomness import ID_GENERATOR
from faultlens._redact import Redactor
from faultlens._seen import EscapedOnSpan, Seen, SpanKey, token
from faultlens._storm import AGGREGATE, FULL, SUPPRESS, Due, StormControl
from faultlens._version import __version__

_log = logging.getLogger("faultlens")

FingerprintCallback = Callable[[BaseException, str], "str | None"]

_TRUNCATED: Final = "\n... [truncated by faultlens] ...\n"


class _Runtime:
    """The process-wide recorder state; one instance, replaced parts on configure()."""

    def __init__(self, settings: Settings) -> None:
        self.classifier = Classifier()
        self.redactor = Redactor()
        self.fingerprint_callback: FingerprintCallback | None = None
        self.tracer_provider: TracerProvider | None = None
        self.logger_provider: LoggerProvider | None = None
        self.apply(settings)
        self.local = threading.local()
        self.warned: set[str] = set()
        self.flusher: _Flusher | None = None
        self.lock = threading.Lock()
        self.seen = Seen()
        self.escaped_on_span = EscapedOnSpan()
        #: (provider, tracer) for the spans faultlens starts itself: IDs from a private generator.
        self.own_tracer: tuple[object, Tracer] | None = None

    def apply(self, settings: Settings) -> None:
        self.settings = settings
        self.frames = FrameClassifier(settings.in_app_include, settings.in_app_exclude)
        self.storm = StormControl(
            burst=settings.storm_burst,
            refill_seconds=settings.storm_refill_seconds,
            interval_seconds=settings.storm_interval_seconds,
            max_keys=settings.max_fingerprints,
        )
        self.bind_providers()

    def bind_providers(self) -> None:
        self.own_tracer = None
        if self.tracer_provider is not None:
            self.tracer = self.tracer_provider.get_tracer(
                semconv.INSTRUMENTATION_SCOPE, __version__
            )
        else:
            self.tracer = trace.get_tracer(semconv.INSTRUMENTATION_SCOPE, __version__)
        provider = self.logger_provider
        if provider is not None:
            self.logger = provider.get_logger(semconv.INSTRUMENTATION_SCOPE, __version__)
        else:
            self.logger = get_logger(semconv.INSTRUMENTATION_SCOPE, __version__)


_runtime = _Runtime(settings_from_env())


def runtime_settings() -> Settings:
    """The settings in force now."""
    return _runtime.settings


def is_disabled() -> bool:
    """True when faultlens is switched off (``FAULTLENS_DISABLED`` or ``configure``)."""
    return _runtime.settings.disabled


def configure(
    *,
    reload_env: bool = False,
    tracer_provider: TracerProvider | None = None,
    logger_provider: LoggerProvider | None = None,
    fingerprint_callback: FingerprintCallback | None = None,
    **overrides: Any,
) -> Settings:
    """Change the recorder's settings; returns the settings now in force.

    ``overrides`` are fields of :class:`faultlens.Settings`
    (``disabled``, ``signal``, ``storm_burst``, ``redact``, …); unknown names raise
    ``TypeError``. ``reload_env`` re-reads the environment first.
    ``tracer_provider`` / ``logger_provider`` replace the global providers for
    faultlens' own emissions (as OpenTelemetry instrumentors accept them).
    ``fingerprint_callback(exc, default)`` may return a fingerprint to use
    instead of ``default`` (any string; non-hex strings are hashed), or None.
    Storm state starts afresh when storm settings change.
    """
    base = settings_from_env() if reload_env else _runtime.settings
    settings = replace(base, **overrides) if overrides else base
    with _runtime.lock:
        if tracer_provider is not None:
            _runtime.tracer_provider = tracer_provider
        if logger_provider is not None:
            _runtime.logger_provider = logger_provider
        if fingerprint_callback is not None:
            _runtime.fingerprint_callback = fingerprint_callback
        _runtime.apply(settings)
    return settings


def reset() -> None:
    """Restore settings from the environment and forget rules, patterns, providers and state.

    Meant for tests and for applications that reconfigure from scratch.
    """
    with _runtime.lock:
        _runtime.classifier.clear()
        _runtime.redactor = Redactor()
        _runtime.fingerprint_callback = None
        _runtime.tracer_provider = None
        _runtime.logger_provider = None
        _runtime.apply(settings_from_env())
        _runtime.warned.clear()
        forget_reported()
        _runtime.seen.clear()
        _runtime.escaped_on_span.clear()


def classifier() -> Classifier:
    """The process-wide :class:`~faultlens.classify.Classifier` (for registering rules)."""
    return _runtime.classifier


def redactor() -> Redactor:
    """The process-wide :class:`~faultlens.shared.Redactor` (for adding patterns)."""
    return _runtime.redactor


def storm() -> StormControl:
    """The process-wide :class:`~faultlens._storm.StormControl` (for diagnostics)."""
    return _runtime.storm


def _is_control_flow(exc: BaseException) -> bool:
    if isinstance(exc, (GeneratorExit, StopIteration, StopAsyncIteration)):
        return True
    return isinstance(exc, SystemExit) and exc.code in (None, 0)


def already_recorded(exc: BaseException) -> str | None:
    """The fingerprint ``exc`` was recorded under, or None if it was not recorded (or is no
    longer remembered, see :mod:`faultlens._seen`)."""
    entry = _runtime.seen.get(exc)
    return entry.fingerprint if entry is not None else None


def record_failure(
    exc: BaseException,
    *,
    handled: bool = True,
    category: str | None = None,
    severity: str | None = None,
    fingerprint: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    source: semconv.Source = "manual",
    span: Span | None = None,
    severity_floor: str | None = None,
    span_status: bool = True,
) -> str | None:
    """Record ``exc`` as a failure; return its fingerprint, or None if nothing was recorded.

    ``handled`` is True when the program caught the exception and went on (a
    silent failure) and False when it escaped. ``category`` and ``severity``
    override classification for this call; ``fingerprint`` overrides the
    computed one (a 16-hex string is kept, any other string is hashed into that
    form). ``attributes`` are added to the event (they cannot replace the
    ``exception.*``/``failure.*`` ones). ``span`` is where the event goes (the
    current span by default). ``severity_floor`` raises the default severity
    (escaped failures are at least ``medium`` regardless). ``span_status=False``
    leaves the status of the span the event goes on alone even for an escaped
    failure (its owner decides; a span faultlens starts for the event still
    gets ERROR).

    An exception already recorded returns its earlier fingerprint without a new
    event. Nothing is recorded while faultlens is disabled. Never raises.
    """
    runtime = _runtime
    if runtime.settings.disabled or not isinstance(exc, BaseException):
        return None
    category = _checked("category", category, validate_category)
    severity = _checked("severity", severity, validate_severity)
    local = runtime.local
    if getattr(local, "busy", False):
        return None
    local.busy = True
    try:
        return _record(
            runtime,
            exc,
            handled=handled,
            category=category,
            severity=severity,
            fingerprint=fingerprint,
            attributes=attributes,
            source=source,
            span=span,
            severity_floor=severity_floor,
            span_status=span_status,
        )
    except Exception:
        report_internal_error("record_failure")
        return None
    finally:
        local.busy = False


def _checked(what: str, value: str | None, validate: Callable[[str], str]) -> str | None:
    """Validate a per-call override; a bad one is warned about once and ignored."""
    if value is None:
        return None
    try:
        return validate(value)
    except ValueError as err:
        key = f"invalid {what} {value!r}"
        if key not in _runtime.warned:
            _runtime.warned.add(key)
            _log.warning("%s; recording with the default %s instead", err, what)
        return None


def _record(
    runtime: _Runtime,
    exc: BaseException,
    *,
    handled: bool,
    category: str | None,
    severity: str | None,
    fingerprint: str | None,
    attributes: Mapping[str, AttributeValue] | None,
    source: str,
    span: Span | None,
    severity_floor: str | None,
    span_status: bool = True,
) -> str | None:
    previous = runtime.seen.get(exc)
    if previous is not None:
        return previous.fingerprint
    if _is_control_flow(exc):
        return None
    fp = _fingerprint(runtime, exc, fingerprint)
    mode, count = runtime.storm.admit(fp)
    if mode == SUPPRESS:
        type_name = semconv.qualified_type_name(type(exc))
        runtime.seen.add(
            exc,
            fp,
            _reference(
                {
                    semconv.EXCEPTION_TYPE: type_name,
                    semconv.FAILURE_FINGERPRINT: fp,
                    semconv.FAILURE_HANDLED: handled,
                    semconv.FAILURE_SOURCE: source,
                }
            ),
        )
        if not handled and span_status:
            target = span if span is not None else trace.get_current_span()
            if target.is_recording():
                _mark_span_error(target, type_name, None)
        if runtime.flusher is None:
            _ensure_flusher(runtime)
        return fp

    target = span if span is not None else trace.get_current_span()
    attrs = _attributes(
        runtime,
        exc,
        fp,
        handled=handled,
        category=category,
        severity=severity,
        severity_floor=severity_floor,
        attributes=attributes,
        source=source,
    )
    runtime.storm.remember(fp, _sample(attrs, attributes))
    entry = runtime.seen.add(exc, fp, _reference(attrs))
    attrs[semconv.FAILURE_COUNT] = count
    if mode == FULL:
        attrs[semconv.EXCEPTION_STACKTRACE] = _stacktrace(runtime, exc)
    elif mode == AGGREGATE:
        _ensure_flusher(runtime)
    key = _emit(runtime, attrs, target, escaped=not handled, span_status=span_status)
    if entry is not None:
        entry.span = key
    elif key is not None and not handled:
        runtime.escaped_on_span.add(
            key, str(attrs[semconv.EXCEPTION_TYPE]), str(attrs[semconv.EXCEPTION_MESSAGE])
        )
    return fp


#: What an event referring to a failure counted elsewhere repeats of it (its message and
#: stack trace are formatted again: they are not kept, to keep the identity table small).
_REFERENCE_KEYS: Final = (
    semconv.EXCEPTION_TYPE,
    semconv.FAILURE_CATEGORY,
    semconv.FAILURE_SEVERITY,
    semconv.FAILURE_FINGERPRINT,
    semconv.FAILURE_HANDLED,
    semconv.FAILURE_SOURCE,
)


def _reference(attrs: Mapping[str, AttributeValue]) -> tuple[AttributeValue | None, ...]:
    """The compact form :class:`~faultlens._seen.Recorded` keeps (see :func:`_referring`)."""
    return tuple(attrs.get(key) for key in _REFERENCE_KEYS)


def _referring(kept: tuple[AttributeValue | None, ...]) -> dict[str, AttributeValue]:
    pairs = zip(_REFERENCE_KEYS, kept, strict=True)
    return {key: value for key, value in pairs if value is not None}


def _attributes(
    runtime: _Runtime,
    exc: BaseException,
    fp: str,
    *,
    handled: bool,
    category: str | None,
    severity: str | None,
    severity_floor: str | None,
    attributes: Mapping[str, AttributeValue] | None,
    source: str,
) -> dict[str, AttributeValue]:
    """An event's attributes but ``failure.count`` and ``exception.stacktrace``."""
    floor = severity_floor or "low"
    if not handled:
        floor = semconv.max_severity(floor, "medium")
    verdict = runtime.classifier.classify(exc, floor=floor)
    attrs: dict[str, AttributeValue] = {}
    if attributes:
        attrs.update(attributes)
    attrs[semconv.EXCEPTION_TYPE] = semconv.qualified_type_name(type(exc))
    attrs[semconv.EXCEPTION_MESSAGE] = _message(runtime, exc)
    attrs[semconv.FAILURE_CATEGORY] = category or verdict.category
    attrs[semconv.FAILURE_SEVERITY] = severity or verdict.severity
    attrs[semconv.FAILURE_FINGERPRINT] = fp
    attrs[semconv.FAILURE_HANDLED] = handled
    attrs[semconv.FAILURE_SOURCE] = source
    return attrs


def _message(runtime: _Runtime, exc: BaseException) -> str:
    """``exception.message``: clipped, redacted unless redaction is off."""
    message = _clip(safe_message(exc), runtime.settings.max_message_chars)
    return runtime.redactor.redact(message) if runtime.settings.redact else message


def _stacktrace(runtime: _Runtime, exc: BaseException) -> str:
    """``exception.stacktrace``: the whole chain, clipped in the middle, redacted."""
    stacktrace = _clip_middle(
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        runtime.settings.max_stacktrace_chars,
    )
    return runtime.redactor.redact(stacktrace) if runtime.settings.redact else stacktrace


def record_span_exception(
    span: Span, exc: BaseException, *, escaping: bool
) -> dict[str, AttributeValue] | None:
    """What an ``exception`` event written by ``span.record_exception(exc)`` should carry.

    The hook on the SDK's ``Span.record_exception`` (:mod:`faultlens._spanhook`)
    calls this so that an exception is one occurrence however many layers record
    it. Returns

    * None — write no event: ``exc`` was already recorded on this very span (by
      faultlens or by an earlier ``record_exception``); for an exception
      :mod:`faultlens._seen` cannot remember, an escaping one whose type and
      message an escaped failure recorded on this span already has;
    * the attributes of a *reference* — ``exc`` was counted on another span (or
      in a storm aggregate): the failure's attributes with ``failure.count`` 0, so
      the span keeps its event and the sum of counts stays exact;
    * the attributes of a new failure — the first time ``exc`` is seen:
      classified, fingerprinted and redacted like every faultlens failure,
      ``failure.source`` ``auto``, ``failure.handled`` false when ``escaping``
      (the hook decides, see :mod:`faultlens._spanhook`) and true otherwise.
      ``failure.count`` is 0 when storm control keeps it for an aggregate or when
      failures go out as log records (then emitted here);
    * an empty dict — record nothing of faultlens' (disabled, re-entrant call, or
      an internal error): the SDK writes its plain event.

    The span's status is the caller's business and is left alone. Never raises.
    """
    runtime = _runtime
    if runtime.settings.disabled or not isinstance(exc, BaseException):
        return {}
    local = runtime.local
    if getattr(local, "busy", False):
        return {}
    local.busy = True
    try:
        return _record_on_span(runtime, exc, span, escaping)
    except Exception:
        report_internal_error("Span.record_exception")
        return {}
    finally:
        local.busy = False


def _record_on_span(
    runtime: _Runtime, exc: BaseException, span: Span, escaping: bool
) -> dict[str, AttributeValue] | None:
    key = _span_key(span)
    entry = runtime.seen.get(exc)
    if entry is not None:
        if entry.span == key:
            return None
        refer = _referring(entry.attributes)
        refer[semconv.FAILURE_COUNT] = 0
        refer[semconv.EXCEPTION_MESSAGE] = _message(runtime, exc)
        refer[semconv.EXCEPTION_STACKTRACE] = _stacktrace(runtime, exc)
        return refer
    if _is_control_flow(exc):
        return {}
    type_name = semconv.qualified_type_name(type(exc))
    if (
        escaping
        and token(exc) is None
        and runtime.escaped_on_span.has(key, type_name, _message(runtime, exc))
    ):
        return None
    fp = _fingerprint(runtime, exc, None)
    mode, count = runtime.storm.admit(fp)
    handled = not escaping
    attrs = _attributes(
        runtime,
        exc,
        fp,
        handled=handled,
        category=None,
        severity=None,
        severity_floor=None,
        attributes=None,
        source="auto",
    )
    runtime.storm.remember(fp, _sample(attrs, None))
    entry = runtime.seen.add(exc, fp, _reference(attrs))
    attrs[semconv.EXCEPTION_STACKTRACE] = _stacktrace(runtime, exc)
    if mode == SUPPRESS:
        if runtime.flusher is None:
            _ensure_flusher(runtime)
        attrs[semconv.FAILURE_COUNT] = 0
        return attrs
    if mode == AGGREGATE:
        _ensure_flusher(runtime)
    signal = runtime.settings.signal
    if signal != "span":
        _emit_log(runtime, {**attrs, semconv.FAILURE_COUNT: count}, span)
    attrs[semconv.FAILURE_COUNT] = count if signal != "logs" else 0
    if signal != "logs":
        if entry is not None:
            entry.span = key
        elif escaping:
            runtime.escaped_on_span.add(key, type_name, str(attrs[semconv.EXCEPTION_MESSAGE]))
    return attrs


def _span_key(span: Span) -> SpanKey:
    context = span.get_span_context()
    return (context.trace_id, context.span_id)


def _fingerprint(runtime: _Runtime, exc: BaseException, explicit: str | None) -> str:
    if explicit is not None:
        return normalize_fingerprint(explicit)
    fp = fingerprint_exception(exc, runtime.frames)
    callback = runtime.fingerprint_callback
    if callback is not None:
        try:
            custom = callback(exc, fp)
        except Exception:
            report_internal_error("fingerprint_callback")
            custom = None
        if custom:
            fp = normalize_fingerprint(custom)
    return fp


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _clip_middle(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit // 4
    return text[:head] + _TRUNCATED + text[-(limit - head) :]


def _mark_span_error(span: Span, type_name: str, message: str | None) -> None:
    description = f"{type_name}: {message}" if message else type_name
    span.set_status(Status(StatusCode.ERROR, description))
    span.set_attribute(semconv.ERROR_TYPE, type_name)


def _emit(
    runtime: _Runtime,
    attrs: dict[str, AttributeValue],
    target: Span,
    *,
    escaped: bool,
    span_status: bool = True,
) -> SpanKey | None:
    """Write the failure per the signal setting; returns the span its event went on, if any."""
    mode = runtime.settings.signal
    type_name = str(attrs[semconv.EXCEPTION_TYPE])
    message = str(attrs[semconv.EXCEPTION_MESSAGE])
    key: SpanKey | None = None
    if mode != "logs":
        if target.is_recording():
            target.add_event(semconv.EXCEPTION_EVENT_NAME, attrs)
            if escaped and span_status:
                _mark_span_error(target, type_name, message)
            key = _span_key(target)
        else:
            own = _own_tracer(runtime).start_span(semconv.FAILURE_SPAN_NAME)
            try:
                own.add_event(semconv.EXCEPTION_EVENT_NAME, attrs)
                if escaped:
                    _mark_span_error(own, type_name, message)
            finally:
                own.end()
            key = _span_key(own)
    elif escaped and span_status and target.is_recording():
        _mark_span_error(target, type_name, message)
    if mode != "span":
        _emit_log(runtime, attrs, target)
    return key


def _emit_log(runtime: _Runtime, attrs: dict[str, AttributeValue], target: Span) -> None:
    """The failure as a log record tied to ``target``'s context."""
    type_name = str(attrs[semconv.EXCEPTION_TYPE])
    message = str(attrs[semconv.EXCEPTION_MESSAGE])
    ctx = trace.set_span_in_context(target, otel_context.get_current())
    runtime.logger.emit(
        timestamp=time.time_ns(),
        context=ctx,
        severity_number=SeverityNumber.ERROR,
        severity_text="ERROR",
        body=f"{type_name}: {message}",
        attributes=attrs,
        event_name=semconv.EXCEPTION_EVENT_NAME,
    )


def _own_tracer(runtime: _Runtime) -> Tracer:
    """The tracer for spans faultlens starts itself, drawing IDs from a private generator.

    The SDK's default ID generator draws from the global ``random`` state, which
    a seeded program must find as it left it. A tracer of the OpenTelemetry SDK
    is its own object with its own ``id_generator``, so this one gets
    faultlens' private generator; the provider's other tracers keep theirs. A
    tracer of another implementation is used as it is.
    """
    provider = runtime.tracer_provider or trace.get_tracer_provider()
    cached = runtime.own_tracer
    if cached is not None and cached[0] is provider:
        return cached[1]
    if isinstance(provider, trace.ProxyTracerProvider):  # no SDK yet: ask again next time
        return runtime.tracer
    tracer = provider.get_tracer(semconv.INSTRUMENTATION_SCOPE, __version__)
    if hasattr(tracer, "id_generator"):
        tracer.id_generator = ID_GENERATOR
    runtime.own_tracer = (provider, tracer)
    return tracer


_SAMPLE_KEYS: Final = (
    semconv.EXCEPTION_TYPE,
    semconv.EXCEPTION_MESSAGE,
    semconv.FAILURE_CATEGORY,
    semconv.FAILURE_SEVERITY,
    semconv.FAILURE_FINGERPRINT,
    semconv.FAILURE_HANDLED,
    semconv.FAILURE_SOURCE,
)


def _sample(
    attrs: Mapping[str, AttributeValue], extra: Mapping[str, AttributeValue] | None
) -> tuple[object, ...]:
    """What later aggregate events of this fingerprint carry: a compact tuple, not a dict.

    The storm state holds one per fingerprint, so its size bounds the SDK's memory.
    """
    return (*(attrs[key] for key in _SAMPLE_KEYS), dict(extra) if extra else None)


def _attributes_from_sample(sample: tuple[Any, ...]) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = dict(sample[-1] or {})
    attrs.update(zip(_SAMPLE_KEYS, sample[:-1], strict=True))
    return attrs


def _emit_due(runtime: _Runtime, items: list[Due]) -> None:
    for item in items:
        if item.sample is None or item.count <= 0:
            continue
        attrs = _attributes_from_sample(item.sample)
        attrs[semconv.FAILURE_COUNT] = item.count
        _emit(runtime, attrs, trace.INVALID_SPAN, escaped=False)


def flush(timeout_millis: int = 5_000) -> bool:
    """Emit every pending aggregate, then flush the tracer and logger providers.

    Returns False if a provider did not finish within ``timeout_millis``.
    Safe to call from any thread, at exit, or from an excepthook; never raises.
    """
    runtime = _runtime
    ok = True
    try:
        _emit_due(runtime, runtime.storm.take_due(force=True))
    except Exception:
        report_internal_error("flush")
    for provider in (
        runtime.tracer_provider or trace.get_tracer_provider(),
        runtime.logger_provider or get_logger_provider(),
    ):
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is None:
            continue
        try:
            ok = bool(force_flush(timeout_millis)) and ok
        except Exception:
            report_internal_error("provider.force_flush")
            ok = False
    return ok


class _Flusher:
    """Background thread that emits aggregates left pending when a storm stops."""

    def __init__(self, runtime: _Runtime) -> None:
        self._runtime = runtime
        self._wake = threading.Event()
        self._stopped = False
        self.thread = threading.Thread(target=self._run, name="faultlens-flusher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self._runtime.settings.storm_interval_seconds)
            self._wake.clear()
            try:
                self._runtime.local.busy = True
                _emit_due(self._runtime, self._runtime.storm.take_due())
            except Exception:
                report_internal_error("flusher")
            finally:
                self._runtime.local.busy = False

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()


def _ensure_flusher(runtime: _Runtime) -> None:
    flusher = runtime.flusher
    if flusher is not None and flusher.thread.is_alive():
        return
    with runtime.lock:
        if runtime.flusher is None or not runtime.flusher.thread.is_alive():
            first = runtime.flusher is None
            runtime.flusher = _Flusher(runtime)
            if first:
                # Registered now rather than at import so that it runs before the
                # SDK providers' own atexit shutdown (atexit runs last-in first-out).
                atexit.register(_flush_at_exit)


def _flush_at_exit() -> None:
    flusher = _runtime.flusher
    if flusher is not None:
        flusher.stop()
    _runtime.local.busy = True
    try:
        _emit_due(_runtime, _runtime.storm.take_due(force=True))
    except Exception:
        report_internal_error("atexit flush")
    finally:
        _runtime.local.busy = False


def _after_fork_in_child() -> None:
    # The parent's flusher thread does not exist in the child; locks may be held.
    _runtime.lock = threading.Lock()
    _runtime.flusher = None
    _runtime.local = threading.local()
    _runtime.seen = Seen()
    _runtime.escaped_on_span = EscapedOnSpan()
    _runtime.storm = StormControl(
        burst=_runtime.settings.storm_burst,
        refill_seconds=_runtime.settings.storm_refill_seconds,
        interval_seconds=_runtime.settings.storm_interval_seconds,
        max_keys=_runtime.settings.max_fingerprints,
    )


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
