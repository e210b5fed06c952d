"""The capture engine of Python 3.12+: watch code objects with ``sys.monitoring`` (PEP 669).

Nothing is wrapped: the functions faultlens watches keep their identity, their
frames, their pickling and their speed. The engine watches *code objects* and
follows the exceptions that leave them until their fate is known.

Internal API (used by :mod:`faultlens._capture`, the zero-code instrumentation,
and the swallowed-exception detector of ``faultlens run``)::

    monitor = acquire()                  # None: no sys.monitoring, or no free tool id
    monitor.watch(codes, client)         # codes: what counts as the named code
    ...
    monitor.unwatch(codes, client)       # the tool id is released when nothing is left
    monitor.follow(exc, client, frame)   # an exception seen escaping a `with` block
    monitor.observe(observer)            # every handler entered, anywhere (see below)
    monitor.arm(code) / disarm(code)     # an observer's settle events on one code object

    holder = watch_calls(code, watcher)  # the calls ``code`` makes: a local event, the
                                         # tool id held, no global event switched on
    holder.unwatch_calls(code, watcher)  # the tool id is released when nothing is left

A client is any object with ``on_outcome(outcome: Outcome) -> None``. A
:class:`HandlerObserver` sees every ``EXCEPTION_HANDLED`` of the program (after
the engine's own handling of it) and, for the code objects it arms, the
``LINE``, ``PY_RETURN``, ``PY_YIELD`` and ``CALL`` events that tell when a
handler is over: one process, one tool id, however many parts of faultlens
watch exceptions. Callbacks run inside
``sys.monitoring`` callbacks: no events are reported while they run, and what
they raise is reported once through the ``faultlens`` logger and dropped.

The failure rule
----------------
*Named code* is the union of the watched code objects. An exception that
unwinds a named frame into a caller that is not named has crossed the boundary
of the named code; from there the engine follows it (``EXCEPTION_HANDLED``,
``PY_UNWIND``) until one of these outcomes, delivered
once to the client that watches the (outermost) named code it escaped from:

``caught``
    application code caught it and its handler finished without raising it
    again (``except ...: pass``, a fallback, ``contextlib.suppress``, a retry
    loop); the failure is *handled*.
``escaped``
    a handler of last resort caught it (:mod:`faultlens._frameworks`: Flask's
    ``wsgi_app``, Starlette's ``ServerErrorMiddleware``, uvicorn, gunicorn,
    Django, ``threading``, asyncio callbacks …).
``uncaught``
    it unwound the bottom frame of its thread.
``inside``
    named code caught it again (it passed through code that is not named, a
    callback, and came back); not a failure.
``swallowed``
    C code that called the named code swallowed it (``hasattr``, ``getattr``
    with a default, ``next`` with a default): protocol, not a failure.
``unresolved``
    its fate was still open when watching stopped or the program exited
    (typically: stored in a future or task nobody asked for again).

Raised and caught inside named code, an exception is never followed at all.
An exception *thrown into* a named generator or coroutine (``gen.throw``, a
``with`` body's exception entering a ``@contextmanager`` generator, asyncio's
cancellation) and passing out of it again did not come from the named code
and is not followed from there either. An exception raised while handling a
followed one (``raise ApiError(...) from exc``) that leaves the handler's frame
carries the followed exception's fate on. Control flow (``StopIteration``,
``StopAsyncIteration``, ``GeneratorExit``) is ignored.

How the fate is seen: a handler is *tentatively* entered at
``EXCEPTION_HANDLED``; the engine then enables ``LINE``, ``CALL``, ``PY_RETURN``
and ``PY_YIELD`` on that frame's code only and, at the first of them where the
frame has moved past the handler's entry and the exception is no longer the one
being handled (``sys.exception()`` and its ``__context__`` chain), calls it
caught; a ``PY_UNWIND`` of it (re-raised out of the frame) or an
``EXCEPTION_HANDLED`` (re-raised into an outer handler) moves it on first.
After a ``PY_UNWIND`` the exception must show up next in the caller (handled
or unwinding there): when another exception is handled or unwinds on that
thread first, C code in between swallowed it.

Cost: the success path of a watched function costs nothing (no local event is
set on watched code). ``PY_UNWIND``, ``PY_THROW`` and ``EXCEPTION_HANDLED`` are
on, globally, for as long as anything is watched, and their callbacks start
with one dictionary lookup: a few hundred nanoseconds per frame an exception
unwinds and per handler entered, anywhere in the program. They are never
switched on and off per failure: switching global events makes CPython
re-instrument every code object at its next call, which measured far costlier
on a real test suite than the events themselves. ``RAISE`` and ``RERAISE``
(one event per frame an exception passes through, and per ``StopIteration``
of every ``next()`` called from Python code) are not used. ``LINE``,
``PY_RETURN``, ``PY_YIELD`` and ``CALL`` are on only for the code of a frame
that holds a followed exception in a handler, until it is done.

Call watchers: :meth:`Monitor.watch_calls` turns on the local ``CALL`` event of
one code object and hands each call it makes to a :class:`CallWatcher`; a call
site the watcher says never matters is switched off with
``sys.monitoring.DISABLE`` (unless the engine or an observer needs that code's
calls at that moment), so a steady program pays nothing. The uncaught-exception
capture of threads (:mod:`faultlens._excepthooks`) watches the calls of
``threading.Thread._bootstrap_inner`` this way. Call watchers hold the tool id
but need no global event: the global events above are on only while something is
watched, followed or observed (``acquire()`` and those methods switch them on;
``release_if_idle`` switches them off and frees the tool id only when no call
watcher is left either). :func:`watch_calls` takes the tool id without
switching them on.

Tool ids: the engine takes the first free of 4, 3 and 5 (0 to 2 are reserved by
convention for debuggers, coverage and profilers) and frees it when nothing is
watched, followed or observed any more and no call watcher holds it; when none
is free :func:`acquire` returns None and callers fall back to wrapping (the
thread capture of :mod:`faultlens._excepthooks` to a ``threading.excepthook``).
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import CodeType, FrameType
from typing import Any, Final, Literal, Protocol

from faultlens._frameworks import role_of, runs_tasks

Fate = Literal["caught", "escaped", "uncaught", "inside", "swallowed", "unresolved"]

#: Tool ids tried in this order (PEP 669 reserves 0, 1, 2 and 5 by convention; 5,
#: "optimizer", is unused by CPython itself).
TOOL_IDS: Final = (4, 3, 5)
TOOL_NAME: Final = "faultlens"
#: Followed exceptions beyond this many are resolved as ``unresolved``, oldest first.
MAX_FOLLOWED: Final = 1_000
#: A followed exception parked in a holder this long without news is ``unresolved``.
PARK_SECONDS: Final = 60.0
#: How deep ``__context__`` chains are searched.
_CHAIN: Final = 16

_CONTROL_FLOW: Final = (StopIteration, StopAsyncIteration, GeneratorExit)

_monitoring: Any = getattr(sys, "monitoring", None)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of an exception that escaped named code."""

    exception: BaseException  #: the exception that left the named code
    fate: Fate
    boundary: CodeType  #: the (outermost) named code it escaped from
    catcher: CodeType | None  #: code whose handler decided the fate, if any
    current: BaseException  #: the exception last in flight (another one after a translation)


class Client(Protocol):
    """Receives the outcomes of exceptions escaping the code it watches."""

    def on_outcome(self, outcome: Outcome) -> None: ...


class CallWatcher(Protocol):
    """Sees the calls one code object makes (``Monitor.watch_calls``)."""

    def on_call(self, code: CodeType, called: object) -> bool:
        """``code`` is about to call ``called``; False when calls from this call site
        never matter (the site is switched off)."""


class HandlerObserver(Protocol):
    """Sees the exception handlers the program enters (``Monitor.observe``)."""

    def on_handled(self, code: CodeType, offset: int, exc: BaseException, frame: FrameType) -> None:
        """``frame`` (running ``code``) entered the handler at ``offset`` for ``exc``."""

    def on_settle(self, code: CodeType, frame: FrameType, *, ended: bool) -> None:
        """A line, call, return or yield of ``frame`` in ``code``, armed by
        ``Monitor.arm``; ``ended``: the frame returns or yields."""


@dataclass(eq=False, slots=True)
class _Followed:
    original: BaseException
    current: BaseException
    boundary: CodeType
    client: Client
    state: Literal["flight", "catch", "expect", "parked"] = "flight"
    waiter: FrameType | None = None
    handler_offset: int = -1
    since: float = field(default_factory=time.monotonic)


@dataclass(eq=False, slots=True)
class _Watch:
    code: CodeType
    clients: list[Client]


def supported() -> bool:
    """True when this interpreter has ``sys.monitoring`` (3.12+)."""
    return _monitoring is not None


class Monitor:
    """One ``sys.monitoring`` tool: watched code, followed exceptions. Use :func:`acquire`."""

    def __init__(self, tool: int) -> None:
        self.tool = tool
        self._events = _monitoring.events
        self._lock = threading.RLock()
        self._watched: dict[int, _Watch] = {}
        self._followed: dict[int, _Followed] = {}
        self._waiting: dict[int, list[_Followed]] = {}
        self._armed: dict[int, CodeType] = {}
        #: code objects observers armed: id -> (code, how many times)
        self._observed: dict[int, tuple[CodeType, int]] = {}
        self._observers: tuple[HandlerObserver, ...] = ()
        #: code objects whose calls are watched: id -> (code, watcher)
        self._call_watchers: dict[int, tuple[CodeType, CallWatcher]] = {}
        self._global = False
        self._freed = False
        self._thrown: dict[int, BaseException] = {}
        #: per thread, the exception that just left a frame and must be raised in its caller
        self._expecting: dict[int, _Followed] = {}
        self._settle = (
            self._events.LINE | self._events.PY_RETURN | self._events.PY_YIELD | self._events.CALL
        )
        self._install()

    # -- public API ---------------------------------------------------------

    def watch(self, codes: Iterable[CodeType], client: Client) -> None:
        """Count ``codes`` as named code of ``client`` (idempotent per client)."""
        with self._lock:
            self.use_global_events()
            for code in codes:
                entry = self._watched.get(id(code))
                if entry is None:
                    self._watched[id(code)] = _Watch(code, [client])
                elif client not in entry.clients:
                    entry.clients.append(client)

    def unwatch(self, codes: Iterable[CodeType], client: Client) -> None:
        """Stop counting ``codes`` for ``client``; releases the tool when nothing is left."""
        with self._lock:
            for code in codes:
                entry = self._watched.get(id(code))
                if entry is None or client not in entry.clients:
                    continue
                entry.clients.remove(client)
                if not entry.clients:
                    del self._watched[id(code)]
        self.release_if_idle()

    def observe(self, observer: HandlerObserver) -> None:
        """Call ``observer`` for every handler entered from now on (idempotent)."""
        with self._lock:
            self.use_global_events()
            if observer not in self._observers:
                self._observers = (*self._observers, observer)

    def unobserve(self, observer: HandlerObserver) -> None:
        """Stop calling ``observer``; releases the tool id when nothing is left.

        The codes it armed stay armed until it disarms them (``disarm``)."""
        with self._lock:
            self._observers = tuple(o for o in self._observers if o is not observer)
        self.release_if_idle()

    def arm(self, code: CodeType) -> None:
        """Turn on ``code``'s settle events for observers (counted: one ``disarm`` each)."""
        with self._lock:
            _, count = self._observed.get(id(code), (code, 0))
            self._observed[id(code)] = (code, count + 1)
            if count == 0:
                self._refresh_local(code)

    def disarm(self, code: CodeType) -> None:
        """Undo one :meth:`arm` of ``code``."""
        with self._lock:
            entry = self._observed.get(id(code))
            if entry is None:
                return
            if entry[1] > 1:
                self._observed[id(code)] = (code, entry[1] - 1)
                return
            del self._observed[id(code)]
            self._refresh_local(code)

    def watch_calls(self, code: CodeType, watcher: CallWatcher) -> None:
        """Hand every call ``code`` makes to ``watcher`` (one watcher per code object;
        a local ``CALL`` event, no global event)."""
        with self._lock:
            self._call_watchers[id(code)] = (code, watcher)
            self._refresh_local(code)

    def unwatch_calls(self, code: CodeType, watcher: CallWatcher) -> None:
        """Stop handing ``code``'s calls to ``watcher``; releases the tool id when
        nothing is left."""
        with self._lock:
            entry = self._call_watchers.get(id(code))
            if entry is None or entry[1] is not watcher:
                return
            del self._call_watchers[id(code)]
            if not self._freed:
                self._refresh_local(code)
        self.release_if_idle()

    def watches_calls(self, code: CodeType, watcher: CallWatcher) -> bool:
        """True while ``watcher`` sees ``code``'s calls."""
        entry = self._call_watchers.get(id(code))
        return entry is not None and entry[1] is watcher and not self._freed

    def use_global_events(self) -> None:
        """Switch the global events on (idempotent; nothing once the tool id is freed)."""
        with self._lock:
            if not self._global and not self._freed:
                events = self._events
                _monitoring.set_events(
                    self.tool, events.PY_UNWIND | events.PY_THROW | events.EXCEPTION_HANDLED
                )
                self._global = True

    @property
    def global_events(self) -> bool:
        """True while the global events are on."""
        return self._global

    def _refresh_local(self, code: CodeType) -> None:
        """``code``'s local events: the settle events while the engine or an observer
        needs them, ``CALL`` while a call watcher does, none otherwise."""
        key = id(code)
        needed = key in self._armed or key in self._observed
        events = self._settle if needed else 0
        if key in self._call_watchers:
            events |= self._events.CALL
        _monitoring.set_local_events(self.tool, code, events)

    def watches(self, code: CodeType) -> bool:
        """True when ``code`` is named code."""
        return id(code) in self._watched

    def follow(self, exc: BaseException, client: Client, frame: FrameType | None) -> None:
        """Follow ``exc`` from now on, as if it had just escaped named code.

        ``frame`` is the frame whose handler has it now (a ``with`` statement
        calling ``__exit__``; its code is the outcome's ``boundary``), or None
        when it is in flight.
        """
        if isinstance(exc, _CONTROL_FLOW) or id(exc) in self._followed:
            return
        code = frame.f_code if frame is not None else Monitor.follow.__code__
        with self._lock:
            self.use_global_events()
            record = self._start(exc, code, client)
            if frame is not None:
                self._wait(record, frame, "catch", frame.f_lasti)

    def resolve_all(self, fate: Fate = "unresolved") -> None:
        """Give every followed exception ``fate`` now (at exit, or when stopping)."""
        with self._lock:
            records = list(dict.fromkeys(self._followed.values()))
        for record in records:
            # one still expected in a caller was swallowed by C code on the way
            self._resolve(record, "swallowed" if record.state == "expect" else fate, None)

    @property
    def followed(self) -> int:
        """How many exceptions are being followed (for tests and diagnostics)."""
        return len(set(map(id, self._followed.values())))

    @property
    def watched(self) -> int:
        """How many code objects are watched."""
        return len(self._watched)

    # -- tool set-up --------------------------------------------------------

    def _install(self) -> None:
        events = self._events
        register = _monitoring.register_callback
        register(self.tool, events.PY_UNWIND, self._on_unwind)
        register(self.tool, events.PY_THROW, self._on_throw)
        register(self.tool, events.EXCEPTION_HANDLED, self._on_handled)
        register(self.tool, events.LINE, self._on_line)
        register(self.tool, events.PY_RETURN, self._on_leave)
        register(self.tool, events.PY_YIELD, self._on_leave)
        register(self.tool, events.CALL, self._on_call)

    def _other_exception(self) -> None:
        """Another exception handled or unwinding on this thread: the one expected
        in a caller was swallowed by C code on the way (``hasattr``, ``next(it, default)``)."""
        record = self._expecting.pop(threading.get_ident(), None)
        if record is not None and record.state == "expect":
            self._resolve(record, "swallowed", None)

    def release_if_idle(self) -> None:
        """When nothing is watched, followed or observed: switch the global events off,
        and free the tool id unless a call watcher still holds it (idempotent)."""
        with _engine.lock, self._lock:
            if self._watched or self._followed or self._observers or _engine.current is not self:
                return
            self._stop_global()
            if self._call_watchers:
                return
            self._shutdown()
            _engine.current = None

    def _stop_global(self) -> None:
        """What is left of following once nothing is watched: no settle events, no
        global events."""
        self._expecting.clear()
        armed = [*self._armed.values(), *(code for code, _ in self._observed.values())]
        self._armed.clear()
        self._observed.clear()
        for code in armed:
            self._refresh_local(code)
        if self._global:
            _monitoring.set_events(self.tool, 0)
            self._global = False

    def _shutdown(self) -> None:
        self._freed = True
        for event in (
            self._events.PY_UNWIND,
            self._events.PY_THROW,
            self._events.EXCEPTION_HANDLED,
            self._events.LINE,
            self._events.PY_RETURN,
            self._events.PY_YIELD,
            self._events.CALL,
        ):
            _monitoring.register_callback(self.tool, event, None)
        _monitoring.free_tool_id(self.tool)

    # -- following ----------------------------------------------------------

    def _start(self, exc: BaseException, boundary: CodeType, client: Client) -> _Followed:
        record = _Followed(exc, exc, boundary, client)
        self._followed[id(exc)] = record
        self._evict()
        return record

    def _evict(self) -> None:
        """Resolve records parked too long, and the oldest beyond :data:`MAX_FOLLOWED`."""
        now = time.monotonic()
        stale = [
            record
            for record in self._followed.values()
            if record.state == "parked" and now - record.since > PARK_SECONDS
        ]
        if len(self._followed) > MAX_FOLLOWED and not stale:
            stale = [next(iter(self._followed.values()))]
        for record in stale:
            self._forget(record)
            _deliver(record, "unresolved", None)

    def _wait(self, record: _Followed, frame: FrameType, state: Any, offset: int) -> None:
        """``record`` is in a handler of ``frame``: settle it at the frame's next line."""
        self._unwait(record)
        record.state = state
        record.waiter = frame
        record.handler_offset = offset
        code = frame.f_code
        self._waiting.setdefault(id(code), []).append(record)
        if id(code) not in self._armed:
            self._armed[id(code)] = code
            self._refresh_local(code)

    def _expect(self, record: _Followed, caller: FrameType) -> None:
        """``record`` left a frame for ``caller``: it must show up there next."""
        self._unwait(record)
        ident = threading.get_ident()
        earlier = self._expecting.get(ident)
        if earlier is not None and earlier is not record and earlier.state == "expect":
            # another exception escaped on this thread first: the earlier one never
            # reached its caller
            del self._expecting[ident]
            self._resolve(earlier, "swallowed", None)
        record.state = "expect"
        self._expecting[ident] = record

    def _unwait(self, record: _Followed) -> None:
        if record.state == "expect":
            ident = threading.get_ident()
            if self._expecting.get(ident) is record:
                del self._expecting[ident]
            record.state = "flight"
        waiter = record.waiter
        if waiter is None:
            return
        record.waiter = None
        code = waiter.f_code
        waiting = self._waiting.get(id(code))
        if waiting is not None:
            if record in waiting:
                waiting.remove(record)
            if not waiting:
                del self._waiting[id(code)]
        if id(code) not in self._waiting and self._armed.pop(id(code), None) is not None:
            self._refresh_local(code)

    def _park(self, record: _Followed) -> None:
        self._unwait(record)
        record.state = "parked"
        record.since = time.monotonic()

    def _forget(self, record: _Followed) -> None:
        self._unwait(record)
        for ident in [key for key, value in self._expecting.items() if value is record]:
            del self._expecting[ident]
        for key in [key for key, value in self._followed.items() if value is record]:
            del self._followed[key]

    def _resolve(self, record: _Followed, fate: Fate, catcher: CodeType | None) -> None:
        with self._lock:
            if self._followed.get(id(record.current)) is not record:
                return
            self._forget(record)
        _deliver(record, fate, catcher)
        self.release_if_idle()

    def _in_flight_from(self, record: _Followed, frame: FrameType) -> None:
        """``record`` left ``frame``: wait for the caller, or decide at the bottom."""
        caller = frame.f_back
        if caller is None:
            self._resolve(record, "uncaught", None)
            return
        with self._lock:
            if runs_tasks(caller.f_code, caller.f_globals.get("__name__")):
                self._park(record)
            else:
                self._expect(record, caller)

    # -- callbacks ----------------------------------------------------------

    def _on_unwind(self, code: CodeType, offset: int, exc: BaseException) -> Any:
        try:
            record = self._followed.get(id(exc))
            if record is not None and record.current is exc:
                frame = sys._getframe(1)
                if id(code) in self._watched:
                    record.boundary = code
                self._in_flight_from(record, frame)
            else:
                if self._expecting:
                    self._other_exception()
                if id(code) in self._watched:
                    self._escaping(code, exc)
                elif self._waiting:
                    self._translated(code, exc)
        except Exception:
            _internal_error("sys.monitoring PY_UNWIND")

    def _escaping(self, code: CodeType, exc: BaseException) -> None:
        if isinstance(exc, _CONTROL_FLOW):
            return
        frame = sys._getframe(2)
        if self._thrown and self._thrown.pop(id(frame), None) is exc:
            return  # thrown in from outside (gen.throw): not raised by named code
        caller = frame.f_back
        if caller is not None and id(caller.f_code) in self._watched:
            return  # still inside named code
        if _recorded(exc):
            return
        entry = self._watched.get(id(code))
        if entry is None:
            return
        with self._lock:
            record = self._start(exc, code, entry.clients[0])
        self._in_flight_from(record, frame)

    def _translated(self, code: CodeType, exc: BaseException) -> None:
        """A new exception leaving a frame that was handling a followed one carries it on."""
        frame = sys._getframe(2)
        for record in list(self._waiting.get(id(code), ())):
            if record.waiter is frame and record.state == "catch":
                if not _in_chain(exc.__context__, record.current):
                    continue
                with self._lock:
                    self._followed.pop(id(record.current), None)
                    record.current = exc
                    self._followed[id(exc)] = record
                self._in_flight_from(record, frame)
                return

    def _on_throw(self, code: CodeType, offset: int, exc: BaseException) -> Any:
        try:
            if id(code) in self._watched:
                thrown = self._thrown
                if len(thrown) > 256:
                    thrown.clear()
                thrown[id(sys._getframe(1))] = exc
        except Exception:
            _internal_error("sys.monitoring PY_THROW")

    def _on_handled(self, code: CodeType, offset: int, exc: BaseException) -> Any:
        record = self._followed.get(id(exc))
        try:
            if record is None or record.current is not exc:
                if self._expecting:
                    self._other_exception()
            else:
                self._handled(record, code, offset)
        except Exception:
            _internal_error("sys.monitoring EXCEPTION_HANDLED")
        if self._observers:
            self._notify(code, offset, exc)

    def _handled(self, record: _Followed, code: CodeType, offset: int) -> None:
        frame = sys._getframe(2)
        role = role_of(code, frame.f_globals.get("__name__"))
        if role == "last_resort":
            self._resolve(record, "escaped", code)
        elif role == "holder":
            with self._lock:
                self._park(record)
        else:
            with self._lock:
                self._wait(record, frame, "catch", offset)

    def _notify(self, code: CodeType, offset: int, exc: BaseException) -> None:
        frame = sys._getframe(2)
        for observer in self._observers:
            try:
                observer.on_handled(code, offset, exc, frame)
            except Exception:
                _internal_error("handler observer")

    def _on_line(self, code: CodeType, line: int) -> Any:
        waiting = self._waiting.get(id(code))
        if waiting:
            self._settle_in(code, waiting)
        if id(code) in self._observed:
            self._notify_settle(code, ended=False)

    def _on_leave(self, code: CodeType, offset: int, value: object) -> Any:
        waiting = self._waiting.get(id(code))
        if waiting:
            self._settle_in(code, waiting)
        if id(code) in self._observed:
            self._notify_settle(code, ended=True)

    def _on_call(self, code: CodeType, offset: int, called: object, arg0: object) -> Any:
        # A call after the handler ended, on the same line (the ``__exit__`` of a span
        # entered in the same ``with`` statement): settle before it ends the span.
        key = id(code)
        waiting = self._waiting.get(key)
        if waiting:
            self._settle_in(code, waiting)
        if key in self._observed:
            self._notify_settle(code, ended=False)
        entry = self._call_watchers.get(key)
        if (
            entry is not None
            and not self._call_matters(entry[1], code, called)
            and key not in self._armed
            and key not in self._observed
        ):
            return _monitoring.DISABLE
        return None

    def _call_matters(self, watcher: CallWatcher, code: CodeType, called: object) -> bool:
        try:
            return watcher.on_call(code, called)
        except Exception:
            _internal_error("call watcher")
            return True

    def _notify_settle(self, code: CodeType, *, ended: bool) -> None:
        frame = sys._getframe(2)
        for observer in self._observers:
            try:
                observer.on_settle(code, frame, ended=ended)
            except Exception:
                _internal_error("handler observer")

    def _settle_in(self, code: CodeType, waiting: list[_Followed]) -> None:
        try:
            frame = sys._getframe(2)
            for record in list(waiting):
                if record.waiter is not frame:
                    continue
                if frame.f_lasti == record.handler_offset or _handling(record.current):
                    continue  # the handler has not started, or is still running
                fate: Fate = "inside" if id(code) in self._watched else "caught"
                self._resolve(record, fate, code)
        except Exception:
            _internal_error("sys.monitoring settle")


def _deliver(record: _Followed, fate: Fate, catcher: CodeType | None) -> None:
    try:
        record.client.on_outcome(
            Outcome(record.original, fate, record.boundary, catcher, record.current)
        )
    except Exception:
        _internal_error("on_outcome")


def _handling(exc: BaseException) -> bool:
    """True while ``exc`` is the exception being handled, or chained to it."""
    return _in_chain(sys.exception(), exc)  # type: ignore[attr-defined,unused-ignore]


def _in_chain(start: BaseException | None, exc: BaseException) -> bool:
    current = start
    for _ in range(_CHAIN):
        if current is None:
            return False
        if current is exc:
            return True
        current = current.__context__
    return False


def _recorded(exc: BaseException) -> bool:
    from faultlens._recorder import already_recorded

    return already_recorded(exc) is not None


def _internal_error(where: str) -> None:
    from faultlens._internal_errors import report_internal_error

    report_internal_error(where)


class _Engine:
    """The process's engine, if it holds a tool id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current: Monitor | None = None
        self.exit_hook = False


_engine = _Engine()


def acquire() -> Monitor | None:
    """The process's engine, taking a tool id if needed, its global events on; None when
    unavailable.

    Unavailable: Python < 3.12, or tool ids 4, 3 and 5 all held by other tools.
    """
    if _monitoring is None:
        return None
    with _engine.lock:
        monitor = _engine.current or _take_tool_id()
        if monitor is not None:
            monitor.use_global_events()
        return monitor


def watch_calls(code: CodeType, watcher: CallWatcher) -> Monitor | None:
    """Hand the calls ``code`` makes to ``watcher`` (:meth:`Monitor.watch_calls`), taking
    the tool id if needed but no global event; None when unavailable (as :func:`acquire`).

    One step, so that the engine cannot free the tool id between taking and watching.
    """
    if _monitoring is None:
        return None
    with _engine.lock:
        monitor = _engine.current or _take_tool_id()
        if monitor is not None:
            monitor.watch_calls(code, watcher)
        return monitor


def _take_tool_id() -> Monitor | None:
    for tool in TOOL_IDS:
        if _monitoring.get_tool(tool) is not None:
            continue
        try:
            _monitoring.use_tool_id(tool, TOOL_NAME)
        except ValueError:
            continue
        _engine.current = Monitor(tool)
        if not _engine.exit_hook:
            _engine.exit_hook = True
            atexit.register(_at_exit)
        return _engine.current
    return None


def current() -> Monitor | None:
    """The engine if it holds a tool id now (never takes one)."""
    return _engine.current


def _at_exit() -> None:
    monitor = _engine.current
    if monitor is not None:
        monitor.resolve_all("unresolved")
