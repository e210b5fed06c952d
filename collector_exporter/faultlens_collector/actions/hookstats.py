"""Counts about hooks, and the ``faultlens.hook.*`` instruments that publish them.

Counting happens in plain dicts under a lock (cheap); the instruments are
*observable*: the SDK's metric reader calls their callbacks at collection time
(a synchronous ``Counter.add`` costs ~8 µs, too much for the ingest path).

==================================  =============  ========  =============================
instrument                          kind           unit      attributes
==================================  =============  ========  =============================
``faultlens.hook.executions``       counter        {run}     hook.name, hook.outcome
``faultlens.hook.skipped``          counter        {job}     hook.name, hook.skip_reason
``faultlens.hook.fixes``            counter        {fix}     hook.name, fix.result
``faultlens.hook.success_rate``     gauge          1         hook.name
``faultlens.hook.duration``         gauge          s         hook.name
``faultlens.hook.queue``            gauge          {job}     (none)
==================================  =============  ========  =============================

``hook.outcome`` is ``ok``, ``failed``, ``timeout``, ``error`` or ``dry_run``;
``hook.skip_reason`` is ``cooldown``, ``dropped`` or ``deferred``; ``fix.result``
is ``verified`` or ``failed``. ``success_rate`` and ``duration`` are the
verified share and the mean execution time of the hook's recent decided fixes
(the effectiveness window), reported once a hook has decided fixes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol

from faultlens import __version__, semconv
from faultlens.shared import report_internal_error
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from faultlens_collector.actions.records import AuditRecord

HOOK_NAME: Final = "hook.name"
HOOK_OUTCOME: Final = "hook.outcome"
SKIP_REASON: Final = "hook.skip_reason"
FIX_RESULT: Final = "fix.result"


class HookStats:
    """Execution and skip counts per hook (since the engine started)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.executions: dict[tuple[str, str], int] = {}
        self.skips: dict[tuple[str, str], int] = {}
        self.fixes: dict[tuple[str, str], int] = {}

    def executed(self, record: AuditRecord) -> None:
        key = (record.hook, record.outcome)
        with self._lock:
            self.executions[key] = self.executions.get(key, 0) + 1

    def skipped(self, hook: str, reason: str) -> None:
        key = (hook, reason)
        with self._lock:
            self.skips[key] = self.skips.get(key, 0) + 1

    def decided(self, hook: str, result: str) -> None:
        key = (hook, result)
        with self._lock:
            self.fixes[key] = self.fixes.get(key, 0) + 1

    def snapshot(self) -> tuple[dict[tuple[str, str], int], ...]:
        with self._lock:
            return dict(self.executions), dict(self.skips), dict(self.fixes)


class EffectivenessSource(Protocol):
    def effectiveness(self) -> Mapping[str, tuple[float | None, float | None]]:
        """hook -> (success rate, mean duration), None where unknown."""
        ...


def register_instruments(
    stats: HookStats,
    effectiveness: EffectivenessSource,
    queue_depth: Callable[[], int],
    meter_provider: MeterProvider | None = None,
) -> None:
    """Create the observable ``faultlens.hook.*`` instruments; never raises."""
    try:
        provider = meter_provider or metrics.get_meter_provider()
        meter = provider.get_meter(f"{semconv.INSTRUMENTATION_SCOPE}.actions", __version__)
    except Exception:
        report_internal_error("actions: metrics")
        return

    def counts(index: int, label: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            table = stats.snapshot()[index]
            return [
                Observation(value, {HOOK_NAME: hook, label: what})
                for (hook, what), value in table.items()
            ]

        return callback

    def rates(index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            try:
                values = effectiveness.effectiveness()
            except Exception:
                report_internal_error("actions: effectiveness metrics")
                return []
            observations = []
            for hook, pair in values.items():
                value = pair[index]
                if value is not None:
                    observations.append(Observation(value, {HOOK_NAME: hook}))
            return observations

        return callback

    def depth(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(queue_depth())]

    try:
        meter.create_observable_counter(
            "faultlens.hook.executions",
            [counts(0, HOOK_OUTCOME)],
            "{run}",
            "hook executions by outcome",
        )
        meter.create_observable_counter(
            "faultlens.hook.skipped",
            [counts(1, SKIP_REASON)],
            "{job}",
            "hook jobs not run at once: in cooldown, dropped (queue full) or deferred",
        )
        meter.create_observable_counter(
            "faultlens.hook.fixes",
            [counts(2, FIX_RESULT)],
            "{fix}",
            "fixes decided: verified (no recurrence in the window) or failed",
        )
        meter.create_observable_gauge(
            "faultlens.hook.success_rate",
            [rates(0)],
            "1",
            "verified share of the hook's recent decided fixes",
        )
        meter.create_observable_gauge(
            "faultlens.hook.duration",
            [rates(1)],
            "s",
            "mean execution time of the hook's recent decided fixes",
        )
        meter.create_observable_gauge(
            "faultlens.hook.queue", [depth], "{job}", "hook jobs waiting for a worker"
        )
    except Exception:
        report_internal_error("actions: metrics")
