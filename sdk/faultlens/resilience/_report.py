"""One call that reports every breaker, tracker, fallback, halt guard, checkpoint and
start-up verification (:mod:`.startup`), and a verdict.

Every :class:`~faultlens.resilience.CircuitBreaker`,
:class:`~faultlens.resilience.FailureTracker`,
:class:`~faultlens.resilience.Fallback` and
:class:`~faultlens.resilience.Checkpoint` registers itself here when it is built
(pass ``register=False`` to opt out; :func:`register` / :func:`unregister`
manage it by hand). The registry holds *weak* references, so an object that the
program drops disappears from the report instead of being kept alive by it.
Retry policies carry no state between calls and are not reported.

Overall status:

* ``unhealthy`` — some component refuses work: a breaker is ``open`` or
  ``forced_open``, a tracker has a halt in force, or a
  :class:`~faultlens.resilience.RemoteHalts` guard knows a processor halt that
  can cover this application's work;
* ``degraded`` — nothing refuses work, but something is not right: a breaker is
  ``half_open``, a tracker key has consecutive failures, a fallback's most
  recent call returned the fallback's result, a halt guard cannot reach its
  processor (it applies the halts it last knew), or a running job's checkpoint
  is older than expected or could not be written;
* ``healthy`` — otherwise (also when nothing is registered).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

HealthStatus = Literal["healthy", "degraded", "unhealthy"]
_RANK: Final[dict[str, int]] = {"healthy": 0, "degraded": 1, "unhealthy": 2}


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """How one breaker, tracker, fallback, halt guard or checkpoint is doing."""

    kind: Literal["breaker", "tracker", "fallback", "halt_guard", "checkpoint", "startup"]
    name: str
    status: HealthStatus
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "status": self.status, **self.detail}


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The overall status and each component's, sorted by kind and name."""

    status: HealthStatus
    components: tuple[ComponentHealth, ...]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serializable form (for a health endpoint)."""
        return {"status": self.status, "components": [c.as_dict() for c in self.components]}


class Reporting(Protocol):
    """What registered objects implement."""

    def health(self) -> ComponentHealth: ...


_lock = threading.Lock()
_members: weakref.WeakSet[Reporting] = weakref.WeakSet()


def register(member: Reporting) -> None:
    """Include ``member`` in :func:`health` (weakly held)."""
    with _lock:
        _members.add(member)


def unregister(member: Reporting) -> None:
    """Leave ``member`` out of :func:`health` from now on."""
    with _lock:
        _members.discard(member)


def worst(statuses: list[HealthStatus]) -> HealthStatus:
    """The worst of ``statuses`` (``healthy`` for none)."""
    result: HealthStatus = "healthy"
    for status in statuses:
        if _RANK[status] > _RANK[result]:
            result = status
    return result


def health() -> HealthReport:
    """Report every registered component (breaker, tracker, fallback, …) and the overall status."""
    with _lock:
        members = list(_members)
    components = sorted((m.health() for m in members), key=lambda c: (c.kind, c.name))
    return HealthReport(worst([c.status for c in components]), tuple(components))
