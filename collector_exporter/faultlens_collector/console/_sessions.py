"""Console logins: server-side sessions behind an HttpOnly, SameSite=Strict cookie.

A session holds the operator's name (the ``actor`` of every action they take, so the
processor's operator log names them), the processor token they logged in with, and
a CSRF token. The cookie carries only the session's random id — never the processor
token, which never reaches the page nor a URL. Every state-changing request of a
session must echo the CSRF token in the ``X-CSRF-Token`` header (the page reads it
from a ``<meta>`` tag of its own origin; another site cannot). Sessions expire after
:data:`IDLE_SECONDS` without use and end when the console stops.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

COOKIE: Final = "faultlens_console"
#: The cookie name over HTTPS: the ``__Host-`` prefix makes browsers insist on
#: Secure, Path=/ and no Domain.
SECURE_COOKIE: Final = "__Host-faultlens_console"
CSRF_HEADER: Final = "x-csrf-token"
IDLE_SECONDS: Final = 12 * 3600
MAX_SESSIONS: Final = 1000
MAX_ACTOR: Final = 64


@dataclass
class Session:
    """One logged-in browser."""

    id: str
    actor: str
    token: str | None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    seen: float = field(default_factory=time.monotonic)

    def csrf_ok(self, offered: str | None) -> bool:
        """Whether ``offered`` is this session's CSRF token (constant time)."""
        return offered is not None and hmac.compare_digest(offered.encode(), self.csrf.encode())


class Sessions:
    """The console's sessions, in memory (the most recent :data:`MAX_SESSIONS`)."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self._idle = idle_seconds
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, actor: str, token: str | None) -> Session:
        session = Session(secrets.token_urlsafe(32), actor, token)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (None when unknown or expired)."""
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.seen > self._idle:
                del self._sessions[session_id]
                return None
            session.seen = now
            self._sessions.move_to_end(session_id)
            return session

    def drop(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def drop_token(self, token: str | None) -> None:
        """End every session that uses ``token`` (the processor refused it)."""
        with self._lock:
            for key in [key for key, s in self._sessions.items() if s.token == token]:
                del self._sessions[key]


def clean_actor(text: str) -> str:
    """An operator name as logged: printable, single spaces, at most :data:`MAX_ACTOR`."""
    return " ".join("".join(ch for ch in text if ch.isprintable()).split())[:MAX_ACTOR]
