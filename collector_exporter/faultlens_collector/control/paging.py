"""ListGroups' page tokens: keyset cursors, opaque to clients.

A token says where the previous page ended — the sort values and the fingerprint of
its last group (a :class:`~faultlens_collector.groups.store.GroupKey`) — so the next
page starts right after that place, wherever groups moved or appeared in between: a
walk through a live list sorted by last seen (or count, or first seen) never shows a
group twice and never skips one that did not change during the walk. (In a list
sorted *ascending* by last seen, count or severity, a group seen again moves ahead of
the walk and may show again at its new place.)

A token is the URL-safe base64 (unpadded) of a small JSON object: ``v`` the format
version, ``q`` a digest of the query it continues (filter, sort and direction; not the
filter's time bounds, which a relative search like ``since:24h`` recomputes on every
request), ``k`` the sort values, ``f`` the fingerprint. :func:`read_token` refuses —
with a :class:`BadPageToken` naming the problem, which the API turns into
``INVALID_ARGUMENT`` — a token longer than :data:`MAX_TOKEN_CHARS`, one that does not
decode, one of another version, and one made for another query. What a token holds
only ever becomes query *parameters*: it chooses no SQL.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from typing import Final

from faultlens_collector.control.methods import MAX_INT64
from faultlens_collector.groups.model import Group
from faultlens_collector.groups.store import SORT_COLUMNS, GroupKey, GroupQuery, group_key

#: The token format (a token of another version is refused: start from the first page).
TOKEN_VERSION: Final = 1
#: Longest token accepted (ours are about 100 characters).
MAX_TOKEN_CHARS: Final = 512
#: Longest fingerprint a token may carry.
MAX_FINGERPRINT: Final = 128
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_KEYS: Final = {"v", "q", "k", "f"}


class BadPageToken(ValueError):
    """A page token that cannot continue this query; the message says why."""


def query_digest(query: GroupQuery) -> str:
    """What a token must have been made for: a digest of ``query`` without its time
    bounds (64 bits as hex; it tells queries apart, it is no secret)."""
    stable = dataclasses.replace(query, since_unix_nano=0, first_seen_since=0, regressed_since=0)
    return hashlib.blake2b(repr(stable).encode(), digest_size=8).hexdigest()


def page_token(last: Group, query: GroupQuery) -> str:
    """The token of the page after the one that ended with ``last``."""
    key = group_key(last, query.sort)
    payload = {"v": TOKEN_VERSION, "q": query_digest(query), "k": key.values, "f": key.fingerprint}
    encoded = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(encoded).rstrip(b"=").decode()


def read_token(token: str, query: GroupQuery) -> GroupKey:
    """Where the page ``token`` continues ``query`` starts. Raises :class:`BadPageToken`."""
    if len(token) > MAX_TOKEN_CHARS:
        raise BadPageToken(f"page_token is longer than {MAX_TOKEN_CHARS} characters")
    if not _BASE64URL.fullmatch(token):
        raise BadPageToken("malformed page_token")
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:  # not base64, not UTF-8, not JSON
        raise BadPageToken("malformed page_token") from None
    if not isinstance(payload, dict) or set(payload) != _KEYS:
        raise BadPageToken("malformed page_token")
    if payload["v"] != TOKEN_VERSION:
        raise BadPageToken(
            "page_token is from another version of faultlens; start from the first page"
        )
    if payload["q"] != query_digest(query):
        raise BadPageToken("page_token does not match this query")
    values, fingerprint = payload["k"], payload["f"]
    if not (
        isinstance(values, list)
        and len(values) == len(SORT_COLUMNS[query.sort])
        and all(type(value) is int and -MAX_INT64 - 1 <= value <= MAX_INT64 for value in values)
        and isinstance(fingerprint, str)
        and 0 < len(fingerprint) <= MAX_FINGERPRINT
    ):
        raise BadPageToken("malformed page_token")
    return GroupKey(tuple(values), fingerprint)
