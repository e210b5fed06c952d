"""Rate spikes: a group failing far more often than it usually does.

Time is cut into buckets of ``bucket`` seconds. For each group the detector
keeps the count of the current bucket and an exponentially weighted moving
average (EWMA, weight ``alpha``) of the counts of past buckets, empty ones
included. A spike is a current count of at least ``min_count`` *and* above
``factor`` times that baseline, once the group has ``warmup`` buckets of
history (a brand-new group is a ``new_failure``, not a spike). It is reported
the moment the count crosses the line — not at the end of the bucket — and
once: the detector re-arms only after a whole bucket below the line.

State is in memory and bounded to ``max_groups`` groups (the oldest is
forgotten first); a restart begins a new warm-up.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from faultlens_collector.actions.config import RateSpikeConfig


@dataclass(frozen=True, slots=True)
class Spike:
    """A detected spike: the bucket it happened in and both rates per minute."""

    bucket_start: float
    per_minute: float
    baseline_per_minute: float


class _GroupRate:
    __slots__ = ("baseline", "bucket_start", "count", "history", "spiking")

    def __init__(self, bucket_start: float) -> None:
        self.bucket_start = bucket_start
        self.count = 0
        self.baseline: float | None = None
        self.history = 0
        self.spiking = False


class RateSpikeDetector:
    """Per-group EWMA baselines; :meth:`observe` reports a :class:`Spike` once per spike."""

    def __init__(self, config: RateSpikeConfig) -> None:
        self.config = config
        self._groups: dict[str, _GroupRate] = {}
        self._lock = threading.Lock()
        self._per_minute = 60.0 / config.bucket

    def observe(self, fingerprint: str, occurrences: int, now: float) -> Spike | None:
        """Count ``occurrences`` of the group at ``now``; a Spike if this starts one."""
        config = self.config
        bucket_start = now - math.fmod(now, config.bucket)
        with self._lock:
            group = self._groups.get(fingerprint)
            if group is None:
                if len(self._groups) >= config.max_groups:
                    del self._groups[next(iter(self._groups))]
                group = self._groups[fingerprint] = _GroupRate(bucket_start)
            elif bucket_start > group.bucket_start:
                self._roll(group, bucket_start)
            group.count += occurrences
            baseline = group.baseline or 0.0
            if (
                group.spiking
                or group.history < config.warmup
                or group.count < config.min_count
                or group.count <= config.factor * baseline
            ):
                return None
            group.spiking = True
            return Spike(bucket_start, group.count * self._per_minute, baseline * self._per_minute)

    def _roll(self, group: _GroupRate, bucket_start: float) -> None:
        """Close the group's bucket (and any empty ones since) into its baseline."""
        config = self.config
        closed = group.count
        before = group.baseline or 0.0
        group.baseline = (
            float(closed)
            if group.baseline is None
            else config.alpha * closed + (1 - config.alpha) * group.baseline
        )
        empty = round((bucket_start - group.bucket_start) / config.bucket) - 1
        if empty > 0:
            group.baseline *= (1 - config.alpha) ** min(empty, 10_000)
        group.history += 1 + max(empty, 0)
        if empty > 0 or closed < max(config.min_count, config.factor * before):
            group.spiking = False
        group.bucket_start = bucket_start
        group.count = 0

    def __len__(self) -> int:
        return len(self._groups)
