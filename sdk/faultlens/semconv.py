"""Names that faultlens puts on the wire (docs/sdk.md, "What goes on the wire").

These are the attribute keys, event names and closed vocabularies shared by the
SDK (which writes them) and the processor (which reads them). Keep them in one
place so the two sides can never drift apart.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# Standard OpenTelemetry exception attributes.
EXCEPTION_EVENT_NAME: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
ERROR_TYPE: Final = "error.type"
EVENT_NAME: Final = "event.name"

# faultlens' own failure attributes.
FAILURE_CATEGORY: Final = "failure.category"
FAILURE_SEVERITY: Final = "failure.severity"
FAILURE_FINGERPRINT: Final = "failure.fingerprint"
FAILURE_HANDLED: Final = "failure.handled"
FAILURE_SOURCE: Final = "failure.source"
FAILURE_COUNT: Final = "failure.count"

# Key fields of halts (and of the successes that end consecutive-failure streaks) that
# are not attribute names: the resource's service and the span's name.
SERVICE_NAME: Final = "service.name"
SPAN_NAME: Final = "span.name"

#: Name of the span faultlens starts when a failure is recorded outside any recording span.
FAILURE_SPAN_NAME: Final = "faultlens.failure"

#: Instrumentation scope under which the SDK emits spans, events and log records.
INSTRUMENTATION_SCOPE: Final = "faultlens"

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: Final[tuple[Severity, ...]] = ("low", "medium", "high", "critical")
SEVERITY_RANK: Final[dict[str, int]] = {name: rank for rank, name in enumerate(SEVERITIES)}

Source = Literal[
    "manual",
    "decorator",
    "auto",
    "logging",
    "excepthook",
    "asyncio",
    "retry",
    "breaker",
    "tracker",
    "checkpoint",
]
SOURCES: Final[tuple[Source, ...]] = get_args(Source)

#: The default category vocabulary; users may register further category names.
CATEGORIES: Final[tuple[str, ...]] = (
    "import",
    "attribute",
    "type",
    "value",
    "lookup",
    "timeout",
    "connection",
    "io",
    "permission",
    "resource",
    "validation",
    "configuration",
    "dependency",
    "cancelled",
    "halted",
    "unknown",
)


def max_severity(first: str, second: str) -> str:
    """Return the higher of two severities; unknown names rank below ``low``."""
    return first if SEVERITY_RANK.get(first, -1) >= SEVERITY_RANK.get(second, -1) else second


_TYPE_NAMES: dict[type[BaseException], str] = {}


def qualified_type_name(exc_type: type[BaseException]) -> str:
    """Name an exception type the way the OpenTelemetry Python SDK does.

    Builtins keep their bare qualname (``ValueError``); everything else is
    ``module.qualname`` (``requests.exceptions.ConnectTimeout``). Cached per type
    (bounded), so repeated failures share one string.
    """
    name = _TYPE_NAMES.get(exc_type)
    if name is None:
        module = exc_type.__module__
        qualname = exc_type.__qualname__
        name = f"{module}.{qualname}" if module and module != "builtins" else qualname
        if len(_TYPE_NAMES) >= 4096:
            _TYPE_NAMES.clear()
        _TYPE_NAMES[exc_type] = name
    return name
