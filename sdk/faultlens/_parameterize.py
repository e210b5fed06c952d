"""Replace the variable parts of an error message with placeholders.

``Timeout after 30s connecting to 10.0.0.7:5432 (request 8f14e45f-...)`` and
``Timeout after 12s connecting to 10.0.0.9:5432 (request 1c0f...)`` are the same
defect; after :func:`parameterize` both read
``Timeout after <duration> connecting to <ip> (request <uuid>)``.

Used by the SDK's fingerprint fallback (when an exception has no usable frame)
and by the processor for failures from other SDKs. The pass is a single regular
expression scan, so the cost is linear in the message length.

Placeholders: ``<url>``, ``<email>``, ``<uuid>``, ``<timestamp>`` (ISO 8601,
``01/03/2024``, ``01.03.2024``, ``Mon, 01 Mar 2024 12:00:00 GMT``, ``March 1,
2024``, ``12:30:45``), ``<ip>``, ``<path>``, ``<duration>`` (``30s``, ``250 ms``,
Go's ``1m30s``, ISO 8601 ``PT30S``), ``<hex>``, ``<host>``, ``<str>`` (values
in single, double, back or typographic quotes) and ``<num>``.
"""

from __future__ import annotations

import re
from typing import Final

_TLDS: Final = (
    "com|net|org|io|dev|app|ai|co|uk|de|fr|nl|eu|us|info|biz|cloud|edu|gov|local|localdomain"
    "|internal|intranet|lan|corp|home|svc|cluster|example|test|invalid"
)

_MONTHS: Final = (
    "Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    "|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?"
)
_WEEKDAYS: Final = "(?:Mon|Tue(?:s)?|Wed(?:nes)?|Thu(?:rs)?|Fri|Sat(?:ur)?|Sun)(?:day)?"

# Alternatives are tried left to right at each position: the more specific
# shapes (URLs, e-mails, UUIDs, timestamps) must come before the generic ones
# (hosts, hex runs, bare numbers) that would otherwise eat their pieces. All but
# quoted values and bracketed IPv6 addresses start where a word starts, so one
# look-behind in front of them skips the inside of words at once. Quotes and
# brackets start with their own character, so no other shape competes with them
# at the same position.
_PATTERN: Final = re.compile(
    r"""
    (?<!\w)(?:
    (?P<url>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'"<>]+)
  | (?P<email>\b[\w.+\-]{1,64}@[\w\-]+(?:\.[\w\-]+)+\b)
  | (?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
  | (?P<timestamp>
        \b\d{4}[-/]\d{2}[-/]\d{2}
        (?:[T\ ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+\-]\d{2}:?\d{2})?)?
      | (?:\b\d{1,2}/\d{1,2}/\d{4}\b|\b\d{1,2}\.\d{1,2}\.\d{4}\b(?!\.\d))
        (?:,?\ \d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?
      | \b(?:"""
    + _WEEKDAYS
    + r""",?\ )?(?:\d{1,2}\ (?:"""
    + _MONTHS
    + r"""),?\ \d{4}|(?:"""
    + _MONTHS
    + r""")\ \d{1,2}(?:st|nd|rd|th)?,?\ \d{4})
        (?:,?\ \d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\ ?(?:GMT|UTC|Z|[+\-]\d{2}:?\d{2}))?)?
      | \b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b
    )
  | (?P<ip>
        \b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b
      | (?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])
      | (?<![\w:])(?=[0-9a-fA-F:]*[0-9a-fA-F])
        (?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?::(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?
        (?![\w:])
    )
  | (?P<path>
        (?<![\w.:/])(?:~|\.{1,2})?(?:/[\w.@%+\-]+){2,}/?
      | \b[A-Za-z]:\\(?:[^\\\s'"]+\\)*[^\\\s'"]*
    )
  | (?P<duration>
        \b(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns)){2,}\b
      | \bP(?=\d|T\d)(?:\d+[YMWD])*(?:T(?:\d+(?:\.\d+)?[HMS])+)?\b
      | \b\d+(?:\.\d+)?\s?
        (?:ns|us|µs|ms|s|sec|secs|seconds?|min|mins|minutes?|h|hrs?|hours?|days?)\b
    )
  | (?P<hex>\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}\b)
  | (?P<host>\b(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?\.){1,16}(?:"""
    + _TLDS
    + r""")\b(?::\d{1,5})?)
  | (?P<num>(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b)
    )
  | (?P<bracketed_ip>\[[0-9a-fA-F:]*:[0-9a-fA-F:]*\](?::\d{1,5})?)
  | (?P<str>'[^'\n]{0,512}'|"[^"\n]{0,512}"|`[^`\n]{0,512}`
      | \u201c[^\u201d\n]{0,512}\u201d|\u2018[^\u2019\n]{0,512}\u2019)
    """,
    re.VERBOSE,
)

#: Messages longer than this are cut before parameterizing: the head of a
#: message identifies the defect, and the cost must stay bounded.
MAX_MESSAGE_CHARS: Final = 2048


_PLACEHOLDERS: Final = {
    name: f"<{'ip' if name == 'bracketed_ip' else name}>" for name in _PATTERN.groupindex
}


def _placeholder(match: re.Match[str]) -> str:
    return _PLACEHOLDERS[match.lastgroup or ""]


def parameterize(message: str) -> str:
    """Return ``message`` with its variable parts replaced by placeholders.

    The result is deterministic and idempotent (``parameterize(parameterize(m))
    == parameterize(m)``), and never longer than :data:`MAX_MESSAGE_CHARS` plus
    the placeholders.
    """
    return _PATTERN.sub(_placeholder, message[:MAX_MESSAGE_CHARS])
