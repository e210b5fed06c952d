"""The processor behind the console: control-API clients per token, and the live hub.

Each browser session calls the processor with its own token (the one it logged in
with), so the console holds one :class:`~faultlens_collector.control.client.ControlClient`
(one channel) per distinct token, the most recently used few.

:class:`LiveHub` follows the processor's streams — ``WatchGroups``,
``StreamAlerts``, ``WatchHalts`` — once per token, for as long as some page listens,
and hands every event to each listener's queue on its event loop. A stream that
breaks (the processor restarts) is opened again after a growing pause (up to
:data:`MAX_BACKOFF` s); listeners then get a ``resync`` event so pages re-read what
they show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import grpc

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.console._settings import ConsoleSettings
from faultlens_collector.control.client import ControlClient, ControlError

_log = logging.getLogger(__name__)
#: Seconds a control call may take.
CALL_TIMEOUT: Final = 15.0
#: Clients (channels) kept, one per token.
MAX_CLIENTS: Final = 16
#: Longest pause before a broken stream is opened again (seconds).
MAX_BACKOFF: Final = 10.0
#: Events queued per listener before older ones give way to a ``resync``.
MAX_QUEUED: Final = 256
_NEEDS_TOKEN_TTL: Final = 10.0


class Upstream:
    """Control-API clients of one processor, per token (see the module docstring)."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._clients: OrderedDict[str | None, ControlClient] = OrderedDict()
        self._needs_token: tuple[float, bool] | None = None

    def client(self, token: str | None) -> ControlClient:
        """The client that calls with ``token`` (None: no token)."""
        with self._lock:
            client = self._clients.get(token)
            if client is not None:
                self._clients.move_to_end(token)
                return client
            client = ControlClient(
                self.settings.target,
                token=token,
                ca_file=self.settings.ca_file,
                timeout=CALL_TIMEOUT,
            )
            self._clients[token] = client
            while len(self._clients) > MAX_CLIENTS:
                _, oldest = self._clients.popitem(last=False)
                oldest.close()
            return client

    def needs_token(self) -> bool:
        """Whether the processor refuses calls without a token (asked at most every 10 s;
        True when the console was given a token or the processor cannot be reached)."""
        if self.settings.token:
            return True
        now = time.monotonic()
        known = self._needs_token
        if known is not None and now - known[0] < _NEEDS_TOKEN_TTL:
            return known[1]
        try:
            self.client(None).call("ListHalts", control_pb2.ListHaltsRequest())
            needs = False
        except ControlError as exc:
            needs = exc.code != grpc.StatusCode.UNIMPLEMENTED
        self._needs_token = (now, needs)
        return needs

    def check_token(self, token: str | None) -> None:
        """Raise :class:`ControlError` unless the processor takes ``token``."""
        self.client(token).call("ListHalts", control_pb2.ListHaltsRequest())

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


@dataclass(eq=False)
class Listener:
    """One page's subscription: events arrive in ``queue`` on ``loop``."""

    token: str | None
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    dropped: bool = False

    def put(self, kind: str, payload: Any) -> None:
        """Queue an event (from any thread); a full queue is replaced by one ``resync``."""
        self.loop.call_soon_threadsafe(self._put, kind, payload)

    def _put(self, kind: str, payload: Any) -> None:
        if self.queue.qsize() >= MAX_QUEUED:
            while not self.queue.empty():
                self.queue.get_nowait()
            kind, payload = "resync", None
        self.queue.put_nowait((kind, payload))


#: The streams the hub follows: name, request, event kind.
_STREAMS: Final[tuple[tuple[str, Callable[[], Any], str], ...]] = (
    (
        "WatchGroups",
        lambda: control_pb2.WatchGroupsRequest(heartbeat_seconds=5, coalesce_millis=100),
        "groups",
    ),
    ("StreamAlerts", control_pb2.StreamAlertsRequest, "alert"),
    ("WatchHalts", lambda: control_pb2.WatchHaltsRequest(heartbeat_seconds=15), "halts"),
)


class _Follower:
    """The streams of one token, each on a thread, while listeners exist."""

    def __init__(self, hub: LiveHub, token: str | None) -> None:
        self.hub = hub
        self.token = token
        self.listeners: set[Listener] = set()
        self.stopped = threading.Event()
        self._calls: list[Any] = []
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(
                target=self._follow,
                args=(name, request, kind),
                name=f"faultlens-console-{kind}",
                daemon=True,
            )
            for name, request, kind in _STREAMS
        ]
        for thread in self.threads:
            thread.start()

    def _follow(self, name: str, request: Callable[[], Any], kind: str) -> None:
        backoff = 0.5
        broken = False
        while not self.stopped.is_set():
            client = self.hub.upstream.client(self.token)
            call = client.open_stream(name, request())
            with self._lock:
                if self.stopped.is_set():
                    call.cancel()
                    return
                self._calls.append(call)
            try:
                for item in call:
                    if broken:
                        broken = False
                        self.hub.publish(self, "resync", None)
                    backoff = 0.5
                    self.hub.publish(self, kind, item)
            except grpc.RpcError as error:
                if self.stopped.is_set():
                    return
                if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                    self.hub.publish(self, "unauthenticated", None)
                _log.debug("console: %s stream broke: %s", name, client.error(error))
            finally:
                with self._lock:
                    if call in self._calls:
                        self._calls.remove(call)
            broken = True
            if self.stopped.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF)

    def stop(self) -> None:
        self.stopped.set()
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            call.cancel()


class LiveHub:
    """Fans the processor's streams out to listening pages (see the module docstring)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._followers: dict[str | None, _Follower] = {}
        self._closed = False

    def subscribe(self, token: str | None) -> Listener:
        """A new listener for the streams of ``token`` (on the running event loop)."""
        listener = Listener(token, asyncio.get_running_loop())
        with self._lock:
            if self._closed:
                listener.queue.put_nowait(("closed", None))
                return listener
            follower = self._followers.get(token)
            if follower is None:
                follower = self._followers[token] = _Follower(self, token)
            follower.listeners.add(listener)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        """Stop listening; the last listener of a token ends its streams."""
        with self._lock:
            follower = self._followers.get(listener.token)
            if follower is None:
                return
            follower.listeners.discard(listener)
            if follower.listeners:
                return
            del self._followers[listener.token]
        follower.stop()

    def publish(self, follower: _Follower, kind: str, payload: Any) -> None:
        with self._lock:
            listeners = list(follower.listeners)
        for listener in listeners:
            with contextlib.suppress(RuntimeError):  # its event loop is closed
                listener.put(kind, payload)

    @property
    def followed(self) -> int:
        """Tokens whose streams are followed now."""
        with self._lock:
            return len(self._followers)

    def close(self) -> None:
        """End every stream; listeners get ``closed``."""
        with self._lock:
            self._closed = True
            followers = list(self._followers.values())
            self._followers.clear()
        for follower in followers:
            follower.stop()
            for listener in list(follower.listeners):
                with contextlib.suppress(RuntimeError):
                    listener.put("closed", None)
