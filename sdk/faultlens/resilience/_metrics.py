"""OpenTelemetry metrics of the resilience layer (docs/resilience.md, "Metrics").

Nothing here runs on the success path of a protected call. Breakers, retry
policies, trackers and fallbacks keep plain counts (:class:`Tally`, an atomic
increment under the GIL) and every instrument is *observable*: the SDK's
metric reader calls the callbacks below at collection time, and they read those
counts. Adding a point with ``Counter.add`` would cost ~8 µs per call.

Instruments come from the global ``MeterProvider`` (through the API's proxy, so
objects built before the application configures the SDK report once it does)
or from the ``meter_provider`` given to an object, OpenTelemetry-instrumentor
style. Members are held weakly: a breaker that is garbage-collected stops
reporting.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.util.types import AttributeValue

from faultlens import semconv
from faultlens._internal_errors import report_internal_error
from faultlens._version import __version__
from faultlens.resilience import _names as names

Point = tuple[float, Mapping[str, AttributeValue]]
Family = Literal["breaker", "retry", "tracker", "fallback", "checkpoint"]


class Tally:
    """A monotonically increasing count; ``add()`` is safe from any thread without a lock.

    ``add`` is the bound ``__next__`` of an :func:`itertools.count`, which the
    interpreter runs atomically; ``value`` reads the count back.
    """

    __slots__ = ("_count", "add")

    def __init__(self) -> None:
        self._count = itertools.count()
        self.add: Callable[[], int] = self._count.__next__

    @property
    def value(self) -> int:
        # repr is "count(N)": the next number it would hand out, i.e. the adds so far.
        return int(repr(self._count)[6:-1])


class Observed(Protocol):
    """What the resilience classes expose to the metric callbacks."""

    def observe(self, instrument: str) -> Iterable[Point]:
        """The current points of ``instrument`` for this object (may be empty)."""
        ...


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """One instrument: its name, type, unit, meaning and attribute keys."""

    name: str
    kind: Literal["counter", "updowncounter", "gauge"]
    unit: str
    description: str
    attributes: tuple[str, ...]
    family: Family


#: Every instrument the resilience layer reports (docs/resilience.md lists them).
INSTRUMENTS: Final[tuple[InstrumentSpec, ...]] = (
    InstrumentSpec(
        "faultlens.breaker.status",
        "updowncounter",
        "1",
        "1 for the state the circuit breaker is in, 0 for the others",
        (names.BREAKER_NAME, names.BREAKER_STATE),
        "breaker",
    ),
    InstrumentSpec(
        "faultlens.breaker.transitions",
        "counter",
        "{transition}",
        "times the circuit breaker entered each state",
        (names.BREAKER_NAME, names.BREAKER_STATE),
        "breaker",
    ),
    InstrumentSpec(
        "faultlens.breaker.rejected",
        "counter",
        "{call}",
        "calls refused with CircuitOpenError, by the state that refused them",
        (names.BREAKER_NAME, names.BREAKER_STATE),
        "breaker",
    ),
    InstrumentSpec(
        "faultlens.breaker.calls",
        "counter",
        "{call}",
        "calls the circuit breaker let through, by outcome",
        (names.BREAKER_NAME, names.BREAKER_OUTCOME),
        "breaker",
    ),
    InstrumentSpec(
        "faultlens.retry.calls",
        "counter",
        "{call}",
        "calls through the retry policy, by outcome",
        (names.RETRY_NAME, names.RETRY_OUTCOME),
        "retry",
    ),
    InstrumentSpec(
        "faultlens.retry.attempts",
        "counter",
        "{attempt}",
        "attempts made, the first of each call included",
        (names.RETRY_NAME,),
        "retry",
    ),
    InstrumentSpec(
        "faultlens.tracker.consecutive_failures",
        "gauge",
        "{failure}",
        "current consecutive failures of each key",
        (names.TRACKER_NAME, "<key attributes>"),
        "tracker",
    ),
    InstrumentSpec(
        "faultlens.tracker.failures",
        "counter",
        "{failure}",
        "failures recorded for each key",
        (names.TRACKER_NAME, "<key attributes>"),
        "tracker",
    ),
    InstrumentSpec(
        "faultlens.tracker.halted",
        "updowncounter",
        "1",
        "1 while a halt is in force for the key, 0 after it was resumed",
        (names.TRACKER_NAME, "<key attributes>"),
        "tracker",
    ),
    InstrumentSpec(
        "faultlens.tracker.halts",
        "counter",
        "{halt}",
        "halts started for each key (threshold reached or manual)",
        (names.TRACKER_NAME, "<key attributes>"),
        "tracker",
    ),
    InstrumentSpec(
        "faultlens.tracker.refused",
        "counter",
        "{call}",
        "calls the tracker's guard refused with HaltedError",
        (names.TRACKER_NAME,),
        "tracker",
    ),
    InstrumentSpec(
        "faultlens.fallback.calls",
        "counter",
        "{call}",
        "calls by outcome: primary result, fallback (degraded) result, or both failed",
        (names.FALLBACK_NAME, names.FALLBACK_OUTCOME),
        "fallback",
    ),
    InstrumentSpec(
        "faultlens.checkpoint.saves",
        "counter",
        "{save}",
        "checkpoints written (success) or not written because the write failed (failure)",
        (names.CHECKPOINT_NAME, names.CHECKPOINT_OUTCOME),
        "checkpoint",
    ),
    InstrumentSpec(
        "faultlens.checkpoint.restores",
        "counter",
        "{restore}",
        "restores by outcome: a checkpoint read back, none found, or unusable",
        (names.CHECKPOINT_NAME, names.CHECKPOINT_OUTCOME),
        "checkpoint",
    ),
    InstrumentSpec(
        "faultlens.checkpoint.age",
        "gauge",
        "s",
        "seconds since the job's last checkpoint was written (while one exists)",
        (names.CHECKPOINT_NAME,),
        "checkpoint",
    ),
)


class _Hub:
    """The instruments of one meter and the objects whose counts they publish."""

    def __init__(self, meter: Meter) -> None:
        self._lock = threading.Lock()
        self._members: dict[Family, weakref.WeakSet[Observed]] = {
            "breaker": weakref.WeakSet(),
            "retry": weakref.WeakSet(),
            "tracker": weakref.WeakSet(),
            "fallback": weakref.WeakSet(),
            "checkpoint": weakref.WeakSet(),
        }
        for spec in INSTRUMENTS:
            callbacks = [self._callback(spec)]
            if spec.kind == "counter":
                meter.create_observable_counter(spec.name, callbacks, spec.unit, spec.description)
            elif spec.kind == "updowncounter":
                meter.create_observable_up_down_counter(
                    spec.name, callbacks, spec.unit, spec.description
                )
            else:
                meter.create_observable_gauge(spec.name, callbacks, spec.unit, spec.description)

    def add(self, family: Family, member: Observed) -> None:
        with self._lock:
            self._members[family].add(member)

    def _callback(self, spec: InstrumentSpec) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                members = list(self._members[spec.family])
            # Objects sharing a name (two unnamed inline retry policies, say) would report
            # the same attribute set twice; their values are summed into one point.
            totals: dict[frozenset[tuple[str, AttributeValue]], float] = {}
            for member in members:
                try:
                    for value, attributes in member.observe(spec.name):
                        key = frozenset(attributes.items())
                        totals[key] = totals.get(key, 0) + value
                except Exception:
                    report_internal_error(f"metrics callback {spec.name}")
            return [Observation(value, dict(key)) for key, value in totals.items()]

        return callback


_lock = threading.Lock()
#: Hubs of explicitly given meter providers; the global one is kept under the key None.
_global_hubs: dict[None, _Hub] = {}
_hubs: weakref.WeakKeyDictionary[MeterProvider, _Hub] = weakref.WeakKeyDictionary()


def _hub(meter_provider: MeterProvider | None) -> _Hub:
    with _lock:
        if meter_provider is None:
            hub = _global_hubs.get(None)
            if hub is None:
                meter = metrics.get_meter(semconv.INSTRUMENTATION_SCOPE, __version__)
                hub = _global_hubs[None] = _Hub(meter)
            return hub
        hub = _hubs.get(meter_provider)
        if hub is None:
            hub = _Hub(meter_provider.get_meter(semconv.INSTRUMENTATION_SCOPE, __version__))
            _hubs[meter_provider] = hub
        return hub


def attach(family: Family, member: Observed, meter_provider: MeterProvider | None) -> None:
    """Publish ``member``'s counts through the instruments of ``meter_provider`` (global: None).

    Never raises: a broken meter provider leaves the object working, unmeasured.
    """
    try:
        _hub(meter_provider).add(family, member)
    except Exception:
        report_internal_error("resilience metrics attach")
