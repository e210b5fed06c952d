"""Start-up verification: refuse to run with a component missing what others call on it.

A missing method or a dependency that does not answer is cheap to find at start-up
and expensive to find later, when the first call cascades through everything that
depends on it. :func:`verify_startup` checks declared requirements once::

    from faultlens.resilience import verify_startup

    verify_startup(
        components=app,                                # or a mapping name -> component
        requires={
            "vix_manager": ["get_current_vix()", "get_market_regime()"],
            "position_sizer": ["get_max_position_size()", "max_allocation"],
        },
        dependencies={"postgres": db.ping, "quotes": quotes_client.health},  # sync or async
        timeout=2.0,
        strict=True,                                   # raise instead of starting degraded
    )

* ``components`` — where the components are: a mapping of names to objects, or any
  object whose attributes they are (``getattr(components, name)``). A name that is
  absent, or whose value is None, is a **missing component** (severity
  ``critical``, category ``configuration``).
* ``requires`` — for each component, what other components call on it: a name ending
  in ``()`` must be a callable attribute (a method), any other name an attribute.
  Each one absent (or not callable) is a **missing method/attribute** (``high``,
  category ``integration``).
* ``dependencies`` — callables that must answer within ``timeout`` seconds:
  a plain function, a coroutine function or one returning an awaitable. Each one
  that raises, returns ``False`` or runs out of time is an **unavailable
  dependency** (``high``, or ``critical`` when named in ``critical``; category
  ``dependency``; the exception it raised is the ``__cause__``). They are checked at
  the same time (one thread each), so the whole check takes at most ``timeout``;
  a call still running then is left behind on its daemon thread.

Each violation is recorded as a handled failure (:func:`faultlens.record_failure`)
with a fingerprint made of the violation itself (kind, component, name), so the
same broken deployment groups together across restarts and hosts. The result — a
:class:`StartupReport` — shows in :func:`faultlens.resilience.health` as a component
of kind ``startup`` (``unhealthy`` with a critical violation, ``degraded`` with
others) until a later verification of the same ``name`` replaces it. With
``strict=True`` any violation raises one :class:`StartupVerificationError` that
lists them all (after they were recorded). Inside a running event loop, await
:func:`verify_startup_async` instead (same arguments); a coroutine dependency then
runs on that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from faultlens._fingerprint import hash_parts
from faultlens.resilience import _report as _registry
from faultlens.resilience._report import ComponentHealth, HealthStatus
from faultlens.resilience.startup import (
    DependencyTimeoutError,
    DependencyUnavailableError,
    MissingAttributeError,
    MissingComponentError,
    StartupRequirementError,
    StartupVerificationError,
)

ViolationKind = Literal["missing_component", "missing_attribute", "dependency"]
Dependency = Callable[[], Any]
DEFAULT_TIMEOUT: Final = 5.0
#: Attributes on every recorded violation.
REQUIREMENT_KIND: Final = "faultlens.requirement.kind"
REQUIREMENT_NAME: Final = "faultlens.requirement.name"


@dataclass(frozen=True, slots=True)
class Violation:
    """One requirement that does not hold."""

    kind: ViolationKind
    component: str
    name: str
    message: str
    severity: Literal["high", "critical"]
    category: str
    fingerprint: str
    #: What a dependency raised (None for a timeout and for the other kinds).
    cause: BaseException | None = field(default=None, compare=False, repr=False)
    timed_out: bool = False

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "component": self.component,
            "name": self.name,
            "message": self.message,
            "severity": self.severity,
            "category": self.category,
            "fingerprint": self.fingerprint,
        }


@dataclass(eq=False)
class StartupReport:
    """The outcome of one verification; reported by :func:`~faultlens.resilience.health`."""

    name: str
    violations: tuple[Violation, ...]
    checked: int
    seconds: float
    at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def status(self) -> HealthStatus:
        if any(v.severity == "critical" for v in self.violations):
            return "unhealthy"
        return "degraded" if self.violations else "healthy"

    def health(self) -> ComponentHealth:
        return ComponentHealth(
            "startup",
            self.name,
            self.status,
            {
                "checked": self.checked,
                "violations": [v.as_dict() for v in self.violations],
                "seconds": round(self.seconds, 3),
            },
        )

    def raise_for_violations(self) -> None:
        """Raise :class:`StartupVerificationError` when there is any violation."""
        if self.violations:
            raise StartupVerificationError(self.name, self.violations)


_lock = threading.Lock()
#: The latest report per name, kept alive here (the health registry holds weak references).
_latest: dict[str, StartupReport] = {}


def verify_startup(
    components: object = None,
    requires: Mapping[str, Iterable[str]] | None = None,
    dependencies: Mapping[str, Dependency] | None = None,
    *,
    critical: Iterable[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    strict: bool = False,
    name: str = "startup",
) -> StartupReport:
    """Check the declared requirements (see the module docstring); record each
    violation, publish the report to ``health()``, raise on any with ``strict``."""
    started = time.monotonic()
    violations, checked = _structure(components, requires or {})
    deps = dict(dependencies or {})
    violations += _answers(deps, timeout, frozenset(critical))
    return _conclude(name, violations, checked + len(deps), started, strict)


async def verify_startup_async(
    components: object = None,
    requires: Mapping[str, Iterable[str]] | None = None,
    dependencies: Mapping[str, Dependency] | None = None,
    *,
    critical: Iterable[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    strict: bool = False,
    name: str = "startup",
) -> StartupReport:
    """:func:`verify_startup` for code running in an event loop: coroutine dependencies
    run on this loop, plain ones on threads; every one at the same time."""
    started = time.monotonic()
    violations, checked = _structure(components, requires or {})
    deps = dict(dependencies or {})
    important = frozenset(critical)
    outcomes = await asyncio.gather(*(_answer_async(call, timeout) for call in deps.values()))
    for dep, error in zip(deps, outcomes, strict=True):
        if error is not None:
            violations.append(_dependency_violation(dep, error, dep in important, timeout))
    return _conclude(name, violations, checked + len(deps), started, strict)


def latest_reports() -> dict[str, StartupReport]:
    """The latest report of each verification name."""
    with _lock:
        return dict(_latest)


# the checks
def _structure(
    components: object, requires: Mapping[str, Iterable[str]]
) -> tuple[list[Violation], int]:
    violations: list[Violation] = []
    checked = 0
    for component, names in requires.items():
        checked += 1
        target = _lookup(components, component)
        if target is None:
            violations.append(
                _violation(
                    "missing_component",
                    component,
                    "",
                    message=f"component {component!r} is missing: everything that calls it "
                    "will fail",
                    severity="critical",
                    category="configuration",
                )
            )
            continue
        for wanted in names:
            checked += 1
            problem = _attribute_problem(target, component, wanted)
            if problem is not None:
                violations.append(
                    _violation(
                        "missing_attribute",
                        component,
                        wanted,
                        message=problem,
                        severity="high",
                        category="integration",
                    )
                )
    return violations, checked


def _lookup(components: object, name: str) -> object | None:
    if isinstance(components, Mapping):
        return components.get(name)
    if components is None:
        return None
    try:
        return getattr(components, name, None)
    except Exception:  # a property that raises: the component is not usable
        return None


def _attribute_problem(target: object, component: str, wanted: str) -> str | None:
    method = wanted.endswith("()")
    attribute = wanted[:-2] if method else wanted
    kind = type(target).__name__
    try:
        value = getattr(target, attribute)
    except Exception as exc:
        what = "method" if method else "attribute"
        detail = "" if isinstance(exc, AttributeError) else f" ({type(exc).__name__}: {exc})"
        return f"{component} ({kind}) has no {what} {attribute!r}{detail}"
    if method and not callable(value):
        return f"{component}.{attribute} ({kind}) is not callable: {type(value).__name__}"
    return None


def _answers(
    dependencies: Mapping[str, Dependency], timeout: float, critical: frozenset[str]
) -> list[Violation]:
    """Call every dependency at once, each on a daemon thread of its own (one that
    hangs must neither hold start-up nor the interpreter's exit); wait ``timeout``."""
    outcomes: dict[str, BaseException | None] = {}
    done = {name: threading.Event() for name in dependencies}

    def answer(name: str, call: Dependency) -> None:
        outcomes[name] = _answer_blocking(call)
        done[name].set()

    for name, call in dependencies.items():
        threading.Thread(
            target=answer, args=(name, call), name=f"faultlens-startup-{name}", daemon=True
        ).start()
    deadline = time.monotonic() + timeout
    violations: list[Violation] = []
    for name in dependencies:
        if not done[name].wait(max(0.0, deadline - time.monotonic())):
            violations.append(_dependency_violation(name, None, name in critical, timeout))
        elif outcomes[name] is not None:
            violations.append(
                _dependency_violation(name, outcomes[name], name in critical, timeout)
            )
    return violations


def _answer_blocking(call: Dependency) -> BaseException | None:
    """Call a dependency on this (worker) thread; an awaitable it returns runs to its end
    on a loop of its own. The exception it raised, a falsy ``False`` as an error, or None."""
    try:
        result = call()
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
    except Exception as exc:
        return exc
    return _refused() if result is False else None


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


async def _answer_async(call: Dependency, timeout: float) -> BaseException | None:
    try:
        if inspect.iscoroutinefunction(call):
            result = await asyncio.wait_for(call(), timeout)
            return _refused() if result is False else None
        # A plain callable runs on a daemon thread (not the loop's executor, whose
        # shutdown would wait for a call that hangs).
        return await asyncio.wait_for(_on_daemon_thread(call), timeout)
    except asyncio.TimeoutError:
        return _Timeout()
    except Exception as exc:
        return exc


def _on_daemon_thread(call: Dependency) -> asyncio.Future[BaseException | None]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[BaseException | None] = loop.create_future()

    def settle(outcome: BaseException | None) -> None:
        if not future.done():
            future.set_result(outcome)

    def work() -> None:
        outcome = _answer_blocking(call)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=work, name="faultlens-startup", daemon=True).start()
    return future


class _Timeout(Exception):
    """Marks a dependency that ran out of time (becomes DependencyTimeoutError)."""


def _refused() -> Exception:
    return RuntimeError("the check returned False")


def _dependency_violation(
    name: str, error: BaseException | None, critical: bool, timeout: float
) -> Violation:
    if error is None or isinstance(error, _Timeout):
        message = f"dependency {name!r} did not answer within {timeout:g} s"
    else:
        message = f"dependency {name!r} did not answer: {type(error).__name__}: {error}"
    timed_out = error is None or isinstance(error, _Timeout)
    violation = _violation(
        "dependency",
        name,
        "",
        message=message,
        severity="critical" if critical else "high",
        category="dependency",
    )
    return replace(violation, cause=None if timed_out else error, timed_out=timed_out)


def _violation(
    kind: ViolationKind,
    component: str,
    name: str,
    *,
    message: str,
    severity: Literal["high", "critical"],
    category: str,
) -> Violation:
    fingerprint = hash_parts(("faultlens.startup", kind, component, name))
    return Violation(kind, component, name, message, severity, category, fingerprint)


_ERRORS: Final[dict[ViolationKind, type[StartupRequirementError]]] = {
    "missing_component": MissingComponentError,
    "missing_attribute": MissingAttributeError,
    "dependency": DependencyUnavailableError,
}


def _record(violation: Violation) -> None:
    from faultlens._recorder import record_failure

    error_type = DependencyTimeoutError if violation.timed_out else _ERRORS[violation.kind]
    error = error_type(violation.message)
    error.__cause__ = violation.cause
    record_failure(
        error,
        handled=True,
        category=violation.category,
        severity=violation.severity,
        fingerprint=violation.fingerprint,
        attributes={
            REQUIREMENT_KIND: violation.kind,
            REQUIREMENT_NAME: ".".join(p for p in (violation.component, violation.name) if p),
        },
    )


def _conclude(
    name: str, violations: list[Violation], checked: int, started: float, strict: bool
) -> StartupReport:
    report = StartupReport(name, tuple(violations), checked, time.monotonic() - started)
    for violation in violations:
        _record(violation)
    with _lock:
        previous = _latest.get(name)
        _latest[name] = report
    if previous is not None:
        _registry.unregister(previous)
    _registry.register(report)
    if strict:
        if violations:
            from faultlens._recorder import flush

            flush()
        report.raise_for_violations()
    return report
