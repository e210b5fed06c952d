"""Classify an exception into a category and a severity (docs/sdk.md, "Classification").

Resolution order, first answer wins:

1. **User rules** (:meth:`Classifier.register`), newest first: predicate rules
   are tried with the exception instance; type rules walk the exception's MRO,
   so a rule for a base class covers its subclasses.
2. **The exception class's own declaration**: a class attribute
   ``__faultlens_category__`` (and optionally ``__faultlens_severity__``), as
   faultlens' own ``CircuitOpenError`` and ``HaltedError`` do.
3. **OSError errno**: ``ENOSPC``/``EMFILE``/``ENFILE``/``ENOMEM``/``EDQUOT`` →
   ``resource``; ``EACCES``/``EPERM``/``EROFS`` → ``permission``;
   ``ETIMEDOUT`` → ``timeout``; ``ECONNREFUSED``/``ECONNRESET``/… → ``connection``.
4. **Defaults** walking the MRO: a table of builtin, standard-library and
   well-known third-party exception types by qualified name (so the libraries
   need not be installed), then, for non-builtin classes, name hints
   (``…Timeout…`` → ``timeout``, ``…Connection…`` → ``connection``, …).
5. ``unknown``.

Severity: a user rule's severity if one matched; else ``critical`` for
``MemoryError``, ``SystemError`` and ``RecursionError``; else the category's
default (table in :data:`CATEGORY_SEVERITY`), raised to the caller's floor
(``medium`` for escaped failures, ``critical`` for ``sys.excepthook``).
"""

from __future__ import annotations

import errno
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from faultlens.semconv import SEVERITIES, max_severity, qualified_type_name

_log = logging.getLogger("faultlens")

Predicate = Callable[[BaseException], bool]

_CATEGORY_NAME = re.compile(r"^[a-z][a-z0-9_.\-]{0,63}$")

#: Default severity of each category before the floor is applied.
CATEGORY_SEVERITY: Final[dict[str, str]] = {
    "import": "high",
    "configuration": "high",
    "permission": "high",
    "resource": "high",
    "halted": "high",
    "attribute": "medium",
    "type": "medium",
    "timeout": "medium",
    "connection": "medium",
    "dependency": "medium",
    "io": "medium",
    "unknown": "medium",
    "value": "low",
    "lookup": "low",
    "validation": "low",
    "cancelled": "low",
}

_CRITICAL_TYPES: Final = frozenset({"MemoryError", "SystemError", "RecursionError"})

#: Qualified type name → category. Aliases (``socket.timeout`` is
#: ``TimeoutError`` since 3.10) resolve through the class itself.
DEFAULT_TYPE_CATEGORIES: Final[dict[str, str]] = {
    # timeout — listed before anything whose MRO also reaches a connection class
    "TimeoutError": "timeout",
    "asyncio.exceptions.TimeoutError": "timeout",
    "concurrent.futures._base.TimeoutError": "timeout",
    "requests.exceptions.Timeout": "timeout",
    "requests.exceptions.ConnectTimeout": "timeout",
    "requests.exceptions.ReadTimeout": "timeout",
    "urllib3.exceptions.TimeoutError": "timeout",
    "httpx.TimeoutException": "timeout",
    "aiohttp.client_exceptions.ServerTimeoutError": "timeout",
    "redis.exceptions.TimeoutError": "timeout",
    "grpc.FutureTimeoutError": "timeout",
    # connection
    "ConnectionError": "connection",
    "socket.gaierror": "connection",
    "socket.herror": "connection",
    "ssl.SSLError": "connection",
    "urllib.error.URLError": "connection",
    "http.client.HTTPException": "connection",
    "requests.exceptions.ConnectionError": "connection",
    "urllib3.exceptions.NewConnectionError": "connection",
    "urllib3.exceptions.MaxRetryError": "connection",
    "urllib3.exceptions.ProtocolError": "connection",
    "httpx.TransportError": "connection",
    "aiohttp.client_exceptions.ClientConnectionError": "connection",
    "redis.exceptions.ConnectionError": "connection",
    # dependency: a remote service answered, with an error
    "urllib.error.HTTPError": "dependency",
    "requests.exceptions.HTTPError": "dependency",
    "httpx.HTTPStatusError": "dependency",
    "aiohttp.client_exceptions.ClientResponseError": "dependency",
    "grpc.RpcError": "dependency",
    "botocore.exceptions.ClientError": "dependency",
    "xmlrpc.client.Fault": "dependency",
    "sqlalchemy.exc.DBAPIError": "dependency",
    "requests.exceptions.RequestException": "dependency",
    # validation
    "json.decoder.JSONDecodeError": "validation",
    "pydantic_core._pydantic_core.ValidationError": "validation",
    "pydantic.error_wrappers.ValidationError": "validation",
    "jsonschema.exceptions.ValidationError": "validation",
    "marshmallow.exceptions.ValidationError": "validation",
    "django.core.exceptions.ValidationError": "validation",
    # configuration
    "configparser.Error": "configuration",
    "django.core.exceptions.ImproperlyConfigured": "configuration",
    # permission
    "PermissionError": "permission",
    "django.core.exceptions.PermissionDenied": "permission",
    # resource
    "MemoryError": "resource",
    "RecursionError": "resource",
    "BufferError": "resource",
    # cancelled
    "asyncio.exceptions.CancelledError": "cancelled",
    "concurrent.futures._base.CancelledError": "cancelled",
    "KeyboardInterrupt": "cancelled",
    # the builtin families
    "ImportError": "import",
    "AttributeError": "attribute",
    "TypeError": "type",
    "LookupError": "lookup",
    "ValueError": "value",
    "ArithmeticError": "value",
    "EOFError": "io",
    "OSError": "io",
}

_ERRNO_CATEGORIES: Final[dict[int, str]] = {
    code: category
    for category, names in (
        ("resource", ("ENOSPC", "EMFILE", "ENFILE", "ENOMEM", "EDQUOT", "ENOBUFS")),
        ("permission", ("EACCES", "EPERM", "EROFS")),
        ("timeout", ("ETIMEDOUT",)),
        (
            "connection",
            (
                "ECONNREFUSED",
                "ECONNRESET",
                "ECONNABORTED",
                "EHOSTUNREACH",
                "ENETUNREACH",
                "ENETDOWN",
                "EPIPE",
            ),
        ),
    )
    for name in names
    if (code := getattr(errno, name, None)) is not None
}

#: Name hints for classes not in the table, checked in this order.
_NAME_HINTS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"Time(?:d)?[Oo]ut"), "timeout"),
    (re.compile(r"Cancel"), "cancelled"),
    (re.compile(r"Permission|Forbidden|Unauthori[sz]ed|AccessDenied"), "permission"),
    (re.compile(r"Connect"), "connection"),
    (re.compile(r"Config|Misconfigured|Settings"), "configuration"),
    (re.compile(r"Validat|Schema|Invalid"), "validation"),
)


@dataclass(frozen=True, slots=True)
class Classification:
    """The outcome of :meth:`Classifier.classify`."""

    category: str
    severity: str


@dataclass(frozen=True, slots=True)
class _Rule:
    exc_type: type[BaseException] | None
    predicate: Predicate | None
    category: str | None
    severity: str | None


def validate_category(category: str) -> str:
    """Return ``category`` if it is a usable name, else raise ``ValueError``."""
    if not isinstance(category, str) or not _CATEGORY_NAME.match(category):
        raise ValueError(
            f"faultlens: invalid category {category!r}: use lowercase letters, digits, "
            "'_', '.', '-' (at most 64 characters), starting with a letter"
        )
    return category


def validate_severity(severity: str) -> str:
    """Return ``severity`` if it is one of ``low|medium|high|critical``, else raise."""
    if severity not in SEVERITIES:
        raise ValueError(
            f"faultlens: invalid severity {severity!r}: expected one of {', '.join(SEVERITIES)}"
        )
    return severity


class Classifier:
    """Category and severity rules: the defaults plus the user's.

    Thread-safe. Type-only answers are cached per exception class; the cache is
    cleared whenever a rule is registered.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: tuple[_Rule, ...] = ()
        self._has_predicates = False
        self._cache: dict[type[BaseException], tuple[str, str | None]] = {}

    def register(
        self,
        match: type[BaseException] | tuple[type[BaseException], ...] | Predicate,
        *,
        category: str | None = None,
        severity: str | None = None,
    ) -> None:
        """Add a user rule; rules registered later are consulted first.

        ``match`` is an exception type (subclasses included), a tuple of types,
        or a predicate ``(exc) -> bool``. At least one of ``category`` and
        ``severity`` must be given; a rule that sets only one leaves the other to
        the next rule or the defaults. A predicate that raises counts as no match.
        """
        if category is None and severity is None:
            raise ValueError("faultlens: a rule needs a category, a severity, or both")
        if category is not None:
            validate_category(category)
        if severity is not None:
            validate_severity(severity)
        new: list[_Rule] = []
        if isinstance(match, tuple):
            for item in match:
                new.append(_Rule(_check_type(item), None, category, severity))
        elif isinstance(match, type):
            new.append(_Rule(_check_type(match), None, category, severity))
        elif callable(match):
            new.append(_Rule(None, match, category, severity))
        else:
            raise TypeError(
                f"faultlens: a rule matches an exception type, a tuple of types or a "
                f"predicate, not {type(match).__name__}"
            )
        with self._lock:
            self._rules = (*reversed(new), *self._rules)
            self._has_predicates = any(rule.predicate is not None for rule in self._rules)
            self._cache = {}

    def clear(self) -> None:
        """Remove every user rule (the defaults stay)."""
        with self._lock:
            self._rules = ()
            self._has_predicates = False
            self._cache = {}

    def classify(self, exc: BaseException, *, floor: str = "low") -> Classification:
        """Classify ``exc``; ``floor`` is the lowest *default* severity to report.

        A severity set by a user rule is reported as is, even below ``floor``.
        """
        category, user_severity = self._category(exc)
        if user_severity is not None:
            return Classification(category, user_severity)
        if type(exc).__name__ in _CRITICAL_TYPES and isinstance(
            exc, (MemoryError, SystemError, RecursionError)
        ):
            return Classification(category, "critical")
        declared = getattr(type(exc), "__faultlens_severity__", None)
        severity = declared if declared in SEVERITIES else CATEGORY_SEVERITY.get(category, "medium")
        return Classification(category, max_severity(severity, floor))

    def _category(self, exc: BaseException) -> tuple[str, str | None]:
        exc_type = type(exc)
        if not self._has_predicates and not isinstance(exc, OSError):
            cached = self._cache.get(exc_type)
            if cached is not None:
                return cached
        rules = self._rules
        category: str | None = None
        severity: str | None = None
        if rules:
            category, severity = _apply_user_rules(rules, exc)
        if category is None:
            category = _default_category(exc)
        result = (category, severity)
        if not self._has_predicates and not isinstance(exc, OSError):
            if len(self._cache) > 4096:
                self._cache = {}
            self._cache[exc_type] = result
        return result


def _check_type(candidate: object) -> type[BaseException]:
    if not (isinstance(candidate, type) and issubclass(candidate, BaseException)):
        raise TypeError(f"faultlens: {candidate!r} is not an exception type")
    return candidate


def _apply_user_rules(
    rules: tuple[_Rule, ...], exc: BaseException
) -> tuple[str | None, str | None]:
    """First category and first severity from user rules (each may come from a different rule)."""
    category: str | None = None
    severity: str | None = None
    for rule in rules:
        if rule.predicate is None:
            continue
        try:
            matched = bool(rule.predicate(exc))
        except Exception:
            _log.debug(
                "faultlens: classification predicate %r raised", rule.predicate, exc_info=True
            )
            matched = False
        if matched:
            category = category or rule.category
            severity = severity or rule.severity
            if category and severity:
                return category, severity
    for klass in type(exc).__mro__:
        for rule in rules:
            if rule.exc_type is klass:
                category = category or rule.category
                severity = severity or rule.severity
                if category and severity:
                    return category, severity
    return category, severity


def _default_category(exc: BaseException) -> str:
    declared = getattr(type(exc), "__faultlens_category__", None)
    if isinstance(declared, str) and declared:
        return declared
    if isinstance(exc, OSError) and exc.errno is not None:
        by_errno = _ERRNO_CATEGORIES.get(exc.errno)
        if by_errno is not None:
            return by_errno
    for klass in type(exc).__mro__:
        by_name = DEFAULT_TYPE_CATEGORIES.get(qualified_type_name(klass))
        if by_name is not None:
            return by_name
        if klass.__module__ != "builtins":
            for pattern, hinted in _NAME_HINTS:
                if pattern.search(klass.__name__):
                    return hinted
    return "unknown"
