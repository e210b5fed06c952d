"""Replace the variable parts of an error message with placeholders.

``Timeout after 30s connecting to 10.0.0.7:5432 (request 8f14e45f-...)`` and
``Timeout after 12s connecting to 10.0.0.9:5432 (request 1c0f...)`` are the same
defect; after :func:`parameterize` both read
``Timeout after <duration> connecting to <ip> (request <uuid>)``.

Used by the SDK's fingerprint fallback (when an exception has no usable frame)
and by the processor for failures from other SDKs. The pass is a single regular
expression scan, so the cost is linear in the message length.

Placeholders: ``<url>``, ``<email>``, ``<uuid>``, ``<timestamp>``, ``<ip>``,
``<path>``, ``<duration>``, ``<hex>``, ``<host>``, ``<str>`` (quoted values) and
``<num>``.
"""

from __future__ import annotations

import re
from typing import Final

_TLDS: Final = (
    "com|net|org|io|dev|app|ai|co|uk|de|fr|nl|eu|us|info|biz|cloud|edu|gov|local|localdomain"
    "|internal|intranet|lan|corp|home|svc|cluster|example|test|invalid"
)

# Alternatives are tried left to right at each position: the more specific
# shapes (URLs, e-mails, UUIDs, timestamps) must come before the generic ones
# (hosts, hex runs, bare numbers) that would otherwise eat their pieces.
_PATTERN: Final = re.compile(
    r"""
    (?P<url>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'"<>]+)
  | (?P<email>\b[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+\b)
  | (?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
  | (?P<timestamp>
        \b\d{4}[-/]\d{2}[-/]\d{2}
        (?:[T\ ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+\-]\d{2}:?\d{2})?)?
      | \b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b
    )
  | (?P<ip>
        \b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b
      | \[[0-9a-fA-F:]*:[0-9a-fA-F:]*\](?::\d{1,5})?
      | (?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])
      | (?<![\w:])(?=[0-9a-fA-F:]*[0-9a-fA-F])
        (?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?::(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?
        (?![\w:])
    )
  | (?P<path>
        (?<![\w.:/])(?:~|\.{1,2})?(?:/[\w.@%+\-]+){2,}/?
      | \b[A-Za-z]:\\(?:[^\\\s'"]+\\)*[^\\\s'"]*
    )
  | (?P<duration>\b\d+(?:\.\d+)?\s?
        (?:ns|us|µs|ms|s|sec|secs|seconds?|min|mins|minutes?|h|hrs?|hours?|days?)\b)
  | (?P<hex>\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}\b)
  | (?P<host>\b(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?\.)+(?:"""
    + _TLDS
    + r""")\b(?::\d{1,5})?)
  | (?P<str>'[^'\n]{0,512}'|"[^"\n]{0,512}")
  | (?P<num>(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b)
    """,
    re.VERBOSE,
)

#: Messages longer than this are cut before parameterizing: the head of a
#: message identifies the defect, and the cost must stay bounded.
MAX_MESSAGE_CHARS: Final = 2048


def _placeholder(match: re.Match[str]) -> str:
    return f"<{match.lastgroup}>"


def parameterize(message: str) -> str:
    """Return ``message`` with its variable parts replaced by placeholders.

    The result is deterministic and idempotent (``parameterize(parameterize(m))
    == parameterize(m)``), and never longer than :data:`MAX_MESSAGE_CHARS` plus
    the placeholders.
    """
    return _PATTERN.sub(_placeholder, message[:MAX_MESSAGE_CHARS])
