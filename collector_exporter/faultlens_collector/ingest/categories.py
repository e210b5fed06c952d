"""A failure category for exception types from any language, by name.

Failures from faultlens' SDK carry ``failure.category``; those from other SDKs
(Java, Node, Go, .NET, plain OpenTelemetry Python) only carry ``exception.type``.
:func:`category_of_type` maps the type's last name component to the faultlens
vocabulary with a table of well-known names and then keyword rules, so
``java.net.SocketTimeoutException``, ``TimeoutError`` and
``context.DeadlineExceeded`` all become ``timeout``. Unknown names give ``unknown``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

_EXACT: Final[dict[str, str]] = {
    "keyerror": "lookup",
    "indexerror": "lookup",
    "nosuchelementexception": "lookup",
    "arrayindexoutofboundsexception": "lookup",
    "indexoutofboundsexception": "lookup",
    "rangeerror": "value",
    "valueerror": "value",
    "numberformatexception": "value",
    "illegalargumentexception": "value",
    "typeerror": "type",
    "classcastexception": "type",
    "attributeerror": "attribute",
    "nullpointerexception": "attribute",
    "referenceerror": "attribute",
    "importerror": "import",
    "modulenotfounderror": "import",
    "classnotfoundexception": "import",
    "noclassdeffounderror": "import",
    "memoryerror": "resource",
    "outofmemoryerror": "resource",
    "recursionerror": "resource",
    "stackoverflowerror": "resource",
    "cancellederror": "cancelled",
    "cancellationexception": "cancelled",
    "interruptedexception": "cancelled",
    "aborterror": "cancelled",
    "canceled": "cancelled",
    "keyboardinterrupt": "cancelled",
    "deadlineexceeded": "timeout",
    "haltederror": "halted",
    "circuitopenerror": "dependency",
    "permissionerror": "permission",
    "securityexception": "permission",
    "accessdeniedexception": "permission",
    "filenotfounderror": "io",
    "filenotfoundexception": "io",
    "ioexception": "io",
    "oserror": "io",
    "eoferror": "io",
}

# Checked in order on the lower-cased last name component.
_KEYWORDS: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern), category)
    for pattern, category in (
        (r"timeout|timedout|deadline", "timeout"),
        (r"cancel", "cancelled"),
        (r"permission|forbidden|unauthori[sz]ed|accessdenied|auth", "permission"),
        (r"connect|socket|unreachable|refused|network|dns|unknownhost|broken.?pipe", "connection"),
        (r"outofmemory|memory|quota|exhausted|toomany|diskfull|nospace", "resource"),
        (r"config|setting|environment", "configuration"),
        (r"validation|invalid|schema|constraint|malformed|parse|syntax", "validation"),
        (r"http|grpc|rpc|remote|upstream|service|client|response|status", "dependency"),
        (r"notfound|missing|lookup|key|index", "lookup"),
        (r"file|io(error|exception)|stream|eof", "io"),
        (r"type|cast", "type"),
        (r"value|argument|range|format", "value"),
        (r"import|module|classnotfound|linkage", "import"),
        (r"attribute|null|nil|reference", "attribute"),
    )
)
_SEPARATORS: Final = re.compile(r"[.:/$\\]")


@lru_cache(maxsize=4096)
def category_of_type(exception_type: str) -> str:
    """The faultlens category for an exception type name, or ``unknown``.

    Only the last component counts (``a.b.FooError``, ``pkg/errors.Foo``,
    ``Outer$Inner``); matching is case-insensitive. The result is cached.
    """
    name = _SEPARATORS.split(exception_type.strip())[-1].lower()
    if not name:
        return "unknown"
    exact = _EXACT.get(name)
    if exact is not None:
        return exact
    for pattern, category in _KEYWORDS:
        if pattern.search(name):
            return category
    return "unknown"
