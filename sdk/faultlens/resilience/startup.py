"""The exceptions of start-up verification (:func:`faultlens.resilience.verify_startup`).

Each violated requirement is recorded as a failure whose ``exception.type`` is one of
these classes, named after this module (``faultlens.resilience.startup.MissingComponentError``,
…): the name is on the wire and part of the failure's fingerprint, so these classes stay
here, in a public module of their own, while the verification itself is private
(``faultlens.resilience._startup``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faultlens.resilience._startup import Violation

__all__ = [
    "DependencyTimeoutError",
    "DependencyUnavailableError",
    "MissingAttributeError",
    "MissingComponentError",
    "StartupRequirementError",
    "StartupVerificationError",
]


class StartupRequirementError(Exception):
    """One violated start-up requirement (what gets recorded as a failure)."""


class MissingComponentError(StartupRequirementError, LookupError):
    """A component other components depend on is not there."""


class MissingAttributeError(StartupRequirementError, AttributeError):
    """A component lacks a method or attribute other components call on it."""


class DependencyUnavailableError(StartupRequirementError, ConnectionError):
    """A dependency did not answer (its exception is the ``__cause__``)."""


class DependencyTimeoutError(DependencyUnavailableError, TimeoutError):
    """A dependency did not answer within the timeout."""


class StartupVerificationError(RuntimeError):
    """``strict`` verification found violations; ``violations`` lists every one."""

    def __init__(self, name: str, violations: tuple[Violation, ...]) -> None:
        lines = "\n".join(f"  - [{v.severity}] {v.message}" for v in violations)
        plural = "s" if len(violations) != 1 else ""
        super().__init__(
            f"start-up verification {name!r} failed with {len(violations)} violation{plural}:\n"
            f"{lines}"
        )
        self.name = name
        self.violations = violations
