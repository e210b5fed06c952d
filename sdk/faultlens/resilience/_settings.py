"""Defaults of the resilience layer, overridable by ``FAULTLENS_*`` environment variables.

Code always wins: an argument passed to a constructor is used as given. An
argument left out takes the default below, read from the environment when the
object is built. A malformed environment value is reported once through the
``faultlens`` logger and the built-in default is used (configuration trouble in
the environment never stops the application); a bad value passed in code raises
``ValueError`` at construction.

=========================================  =======  ==============================================
variable                                   default  meaning
=========================================  =======  ==============================================
``FAULTLENS_RETRY_ATTEMPTS``               3        attempts per call, the first one included
``FAULTLENS_RETRY_INITIAL_DELAY``          0.1      seconds; base of the exponential backoff
``FAULTLENS_RETRY_MAX_DELAY``              10       seconds; cap on any single backoff delay
``FAULTLENS_BREAKER_FAILURE_THRESHOLD``    5        consecutive failures that open a breaker
``FAULTLENS_BREAKER_RECOVERY_TIMEOUT``     30       seconds a breaker stays open before trials
``FAULTLENS_BREAKER_HALF_OPEN_MAX_CALLS``  1        trial calls allowed at once while half-open
``FAULTLENS_BREAKER_SUCCESS_THRESHOLD``    1        trial successes that close a half-open breaker
``FAULTLENS_TRACKER_THRESHOLD``            3        consecutive failures of a key that halt it
``FAULTLENS_TRACKER_HISTORY``              100      failures a tracker keeps in its history
``FAULTLENS_CHECKPOINT_INTERVAL``          10       seconds a checkpoint waits between writes
=========================================  =======  ==============================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from faultlens._config import parse_number


@dataclass(frozen=True)
class ResilienceDefaults:
    """The defaults in force (see the module docstring for their variables)."""

    retry_attempts: int = 3
    retry_initial_delay: float = 0.1
    retry_max_delay: float = 10.0
    breaker_failure_threshold: int = 5
    breaker_recovery_timeout: float = 30.0
    breaker_half_open_max_calls: int = 1
    breaker_success_threshold: int = 1
    tracker_threshold: int = 3
    tracker_history: int = 100
    checkpoint_interval: float = 10.0


#: Environment variable → (field of :class:`ResilienceDefaults`, smallest valid value).
ENVIRONMENT: Final[dict[str, tuple[str, float]]] = {
    "FAULTLENS_RETRY_ATTEMPTS": ("retry_attempts", 1),
    "FAULTLENS_RETRY_INITIAL_DELAY": ("retry_initial_delay", 0),
    "FAULTLENS_RETRY_MAX_DELAY": ("retry_max_delay", 0),
    "FAULTLENS_BREAKER_FAILURE_THRESHOLD": ("breaker_failure_threshold", 1),
    "FAULTLENS_BREAKER_RECOVERY_TIMEOUT": ("breaker_recovery_timeout", 0),
    "FAULTLENS_BREAKER_HALF_OPEN_MAX_CALLS": ("breaker_half_open_max_calls", 1),
    "FAULTLENS_BREAKER_SUCCESS_THRESHOLD": ("breaker_success_threshold", 1),
    "FAULTLENS_TRACKER_THRESHOLD": ("tracker_threshold", 1),
    "FAULTLENS_TRACKER_HISTORY": ("tracker_history", 0),
    "FAULTLENS_CHECKPOINT_INTERVAL": ("checkpoint_interval", 0),
}

_BUILT_IN: Final = ResilienceDefaults()

#: Which exceptions an option applies to: types, or a predicate ``(exc) -> bool``.
ExceptionMatch = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)


def defaults(environ: Mapping[str, str] | None = None) -> ResilienceDefaults:
    """The defaults, with ``FAULTLENS_*`` overrides from ``environ`` (``os.environ``)."""
    env = os.environ if environ is None else environ
    values: dict[str, float] = {}
    for variable, (field_name, minimum) in ENVIRONMENT.items():
        raw = env.get(variable)
        if raw is None:
            continue
        built_in = getattr(_BUILT_IN, field_name)
        value = parse_number(variable, raw, built_in, minimum=minimum)
        values[field_name] = int(value) if isinstance(built_in, int) else value
    return ResilienceDefaults(**values)  # type: ignore[arg-type]


class Problems:
    """Collects configuration problems and raises them as one ``ValueError``.

    ``check(ok, message)`` notes ``message`` when ``ok`` is false; ``raise_if_any()``
    raises ``ValueError("faultlens: invalid <what>: <problem>; <problem>")``.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.found: list[str] = []

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.found.append(message)

    def at_least(self, name: str, value: float | None, minimum: float) -> None:
        """``value`` (if given) must be a number >= ``minimum``."""
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            self.found.append(f"{name} must be a number, got {value!r}")
        elif value < minimum:
            self.found.append(f"{name} must be >= {minimum}, got {value!r}")

    def positive(self, name: str, value: float | None) -> None:
        """``value`` (if given) must be a number > 0."""
        if value is None:
            return
        before = len(self.found)
        self.at_least(name, value, 0)
        if len(self.found) == before and value <= 0:
            self.found.append(f"{name} must be > 0, got {value!r}")

    def integer(self, name: str, value: int | None, minimum: int) -> None:
        """``value`` (if given) must be an int >= ``minimum``."""
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            self.found.append(f"{name} must be an integer, got {value!r}")
        else:
            self.at_least(name, value, minimum)

    def raise_if_any(self) -> None:
        if self.found:
            raise ValueError(f"faultlens: invalid {self.what}: {'; '.join(self.found)}")


def exception_types(
    name: str, value: type[BaseException] | tuple[type[BaseException], ...], problems: Problems
) -> tuple[type[BaseException], ...]:
    """Normalize an exception type or tuple of types, noting anything else as a problem."""
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            problems.found.append(f"{name} must be exception types, got {item!r}")
            return ()
    return items


def matcher(
    what: str, match: ExceptionMatch, problems: Problems
) -> Callable[[BaseException], bool]:
    """A predicate for exception types or a predicate (the latter returned as is)."""
    if isinstance(match, (type, tuple)):
        types = exception_types(what, match, problems)
        return lambda exc: isinstance(exc, types)
    if callable(match):
        return match
    problems.found.append(f"{what} must be exception types or a predicate, got {match!r}")
    return lambda exc: False
