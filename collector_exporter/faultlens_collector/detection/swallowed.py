"""Swallowed exceptions (Python 3.12+): caught in the project's code, neither re-raised nor logged.

The detector's stricter policy, for ``faultlens run``: an exception that code of
the watched packages catches and then neither raises again (bare ``raise``,
``raise Other(...) from exc``, or any exception leaving the handler) nor logs
with its exception info (``logger.exception``, ``exc_info=True``: faultlens'
logging capture records those) is a *swallowed* failure. Each is recorded with
:func:`faultlens.record_failure` (``handled``, fingerprinted and aggregated like
any failure: ``except Exception: pass`` around a division by zero that fires 500
times is one group of 500), with a severity that says how broad the handler was:

=====================================  ==========
handler                                severity
=====================================  ==========
bare ``except:``, ``BaseException``    critical
``Exception``                          high
anything narrower (``KeyError`` …)     low
=====================================  ==========

How (PEP 669, ``sys.monitoring``): the detector is a handler observer of
faultlens' capture engine (``faultlens.shared.monitoring``), so a process that
runs both uses one tool id. The engine's ``EXCEPTION_HANDLED`` — which cannot
be enabled per code object — is on for the whole program; the detector's
callback answers from a per-code cache whether the catching code is the
project's (its module under one of the watched prefixes) and returns at once
when not. In the project's code it records a candidate and has the engine turn
on its settle events (``LINE``, ``PY_RETURN``, ``PY_YIELD``, ``CALL``) for
that code object only; at the first of them where the frame
no longer handles the exception (``sys.exception()`` and its ``__context__``
chain) — or returns from inside the handler — the handler is over and the
candidate is decided: logged (faultlens recorded it meanwhile) or swallowed.
A handler left by an exception (re-raised, translated) produces neither event
in that frame; its candidate is dropped when that exception (or one chained to
it) is caught again, or at exit. The local events go off again once the code
has no candidate left.

A handler found swallowing :data:`SETTLED_AFTER` times in a row is *settled*: its
later catches are counted as swallowed at once, without line events, and one in
:data:`RECHECK_EVERY` is followed fully again (a logged or re-raised one unsettles
it). So a hot ``except ...: pass`` costs one callback and one ``record_failure``
per exception; a handler that logs only sometimes can have an occurrence counted
as swallowed instead of logged (still counted once).

Python 3.10 and 3.11 have no ``sys.monitoring``: :func:`start` does nothing
there, and ``faultlens run`` reports escaped and logged failures only; nor does
it when every tool id the engine may take is held by other tools.
"""

from __future__ import annotations

import atexit
import builtins
import dis
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Final

from faultlens.shared import monitoring

#: Attributes on every swallowed failure.
SWALLOWED: Final = "faultlens.swallowed"
HANDLER: Final = "faultlens.handler"
#: Candidates kept at most (the oldest are dropped beyond).
MAX_PENDING: Final = 10_000
#: A handler found swallowing this many times in a row is decided at once afterwards
#: (no line events), and followed fully again one time in :data:`RECHECK_EVERY`.
SETTLED_AFTER: Final = 4
RECHECK_EVERY: Final = 64
_CONTROL_FLOW: Final = (StopIteration, StopAsyncIteration, GeneratorExit, KeyboardInterrupt)
_CHAIN: Final = 16


@dataclass(eq=False, slots=True)
class _Candidate:
    exc: BaseException
    code: CodeType
    offset: int
    frame: FrameType
    module: str


def supported() -> bool:
    return monitoring.supported()


class Detector:
    """Watches the code of modules under ``prefixes`` (see the module docstring)."""

    def __init__(self, prefixes: Iterable[str]) -> None:
        self.prefixes = tuple(prefixes)
        self.monitor: monitoring.Monitor | None = None
        self._ours: dict[CodeType, str | None] = {}
        self._pending: dict[FrameType, _Candidate] = {}
        self._by_code: dict[CodeType, int] = {}
        self._breadth: dict[tuple[CodeType, int], str] = {}
        #: Per handler: swallowed verdicts in a row (>= SETTLED_AFTER: settled), and
        #: occurrences since it was last followed fully.
        self._streak: dict[tuple[CodeType, int], int] = {}
        self._since_check: dict[tuple[CodeType, int], int] = {}
        self._lock = threading.RLock()
        self.swallowed = 0

    # lifecycle
    @property
    def tool(self) -> int | None:
        """The ``sys.monitoring`` tool id in use (the capture engine's), None when stopped."""
        return self.monitor.tool if self.monitor is not None else None

    def start(self) -> bool:
        """Observe the engine's handlers; False when the engine has no tool id."""
        monitor = monitoring.acquire()
        if monitor is None:
            return False
        self.monitor = monitor
        monitor.observe(self)
        return True

    def stop(self) -> None:
        """Decide nothing more; the engine frees the tool id if nothing else uses it."""
        monitor = self.monitor
        if monitor is None:
            return
        self.monitor = None
        with self._lock:
            for code, count in list(self._by_code.items()):
                for _ in range(count):
                    monitor.disarm(code)
            self._pending.clear()
            self._by_code.clear()
        monitor.unobserve(self)

    # callbacks
    def _module_of(self, code: CodeType, frame: FrameType) -> str | None:
        module = self._ours.get(code, "")
        if module != "":
            return module
        name = str(frame.f_globals.get("__name__") or "")
        spec = frame.f_globals.get("__spec__")
        if name == "__main__" and spec is not None:  # python -m package.module
            name = str(getattr(spec, "name", name))
        ours = any(name == p or name.startswith(p + ".") for p in self.prefixes)
        self._ours[code] = name if ours else None
        return name if ours else None

    def on_handled(self, code: CodeType, offset: int, exc: BaseException, frame: FrameType) -> None:
        """The engine's ``EXCEPTION_HANDLED``: ``frame`` entered a handler for ``exc``."""
        if code in self._ours and self._ours[code] is None and not self._pending:
            return  # the usual case: a library catching its own exception
        try:
            self._handled(code, offset, exc, frame)
        except Exception:
            _internal_error()

    def _handled(self, code: CodeType, offset: int, exc: BaseException, frame: FrameType) -> None:
        with self._lock:
            if self._pending:
                self._drop_caught_again(exc)
            if isinstance(exc, _CONTROL_FLOW) or self.monitor is None:
                return
            module = self._module_of(code, frame)
            if module is None:
                return
            previous = self._pending.pop(frame, None)
            if previous is not None:  # the same frame caught again: the last handler ended
                self._decide(previous, ended=True)
            site = (code, offset)
            if self._streak.get(site, 0) >= SETTLED_AFTER:
                seen = self._since_check.get(site, 0) + 1
                if seen < RECHECK_EVERY:
                    self._since_check[site] = seen
                    self._swallowed(_Candidate(exc, code, offset, frame, module))
                    return
                self._since_check[site] = 0  # follow this one fully again
            if len(self._pending) >= MAX_PENDING:
                self._forget(next(iter(self._pending.values())))
            self._pending[frame] = _Candidate(exc, code, offset, frame, module)
            self.monitor.arm(code)
            self._by_code[code] = self._by_code.get(code, 0) + 1

    def on_settle(self, code: CodeType, frame: FrameType, *, ended: bool) -> None:
        """The engine's settle event in armed ``code``: a handler may be over."""
        try:
            self._check(frame, ended=ended)
        except Exception:
            _internal_error()

    def _check(self, frame: FrameType, *, ended: bool) -> None:
        with self._lock:
            candidate = self._pending.get(frame)
            if candidate is None:
                return
            if not ended and _handling(candidate.exc):
                return  # still inside the handler
            del self._pending[frame]
            self._decide(candidate, ended=True)

    # decisions
    def _drop_caught_again(self, exc: BaseException) -> None:
        """An exception caught again: the candidates it carries (itself, or chained)
        left their handlers by being raised again or translated."""
        chain = set()
        current: BaseException | None = exc
        for _ in range(_CHAIN):
            if current is None:
                break
            chain.add(id(current))
            current = current.__cause__ or current.__context__
        for candidate in [c for c in self._pending.values() if id(c.exc) in chain]:
            del self._pending[candidate.frame]
            self._streak.pop((candidate.code, candidate.offset), None)
            self._release(candidate.code)

    def _decide(self, candidate: _Candidate, *, ended: bool) -> None:
        self._release(candidate.code)
        from faultlens.shared import already_recorded

        site = (candidate.code, candidate.offset)
        if not ended or already_recorded(candidate.exc) is not None:
            self._streak.pop(site, None)  # logged (or recorded some other way)
            return
        self._streak[site] = self._streak.get(site, 0) + 1
        self._swallowed(candidate)

    def _swallowed(self, candidate: _Candidate) -> None:
        from faultlens import record_failure

        self.swallowed += 1
        record_failure(
            candidate.exc,
            handled=True,
            severity=self._severity(candidate),
            attributes={
                SWALLOWED: True,
                HANDLER: f"{candidate.module}:{candidate.code.co_name}",
            },
        )

    def _forget(self, candidate: _Candidate) -> None:
        self._pending.pop(candidate.frame, None)
        self._release(candidate.code)

    def _release(self, code: CodeType) -> None:
        left = self._by_code.get(code, 0) - 1
        if left > 0:
            self._by_code[code] = left
        else:
            self._by_code.pop(code, None)
        if self.monitor is not None:
            self.monitor.disarm(code)

    def _severity(self, candidate: _Candidate) -> str:
        key = (candidate.code, candidate.offset)
        breadth = self._breadth.get(key)
        if breadth is None:
            try:
                breadth = handler_breadth(
                    candidate.code, candidate.offset, candidate.exc, candidate.frame
                )
            finally:
                self._breadth[key] = breadth if breadth is not None else "narrow"
        return {"bare": "critical", "base": "critical", "exception": "high"}.get(breadth, "low")

    def finish(self) -> None:
        """At exit: candidates still open left their handlers by an exception; drop them."""
        with self._lock:
            self._pending.clear()


def handler_breadth(code: CodeType, offset: int, exc: BaseException, frame: FrameType) -> str:
    """How broad the ``except`` clause that caught ``exc`` is: ``bare``, ``base``
    (``BaseException``), ``exception`` (``Exception``) or ``narrow``, read from the
    bytecode of the handler starting at ``offset`` (clause by clause, following each
    clause's jump to the next when it does not match; names are looked up in the
    catching frame). ``narrow`` when the clause cannot be told."""
    instructions = list(dis.get_instructions(code))
    index = {ins.offset: i for i, ins in enumerate(instructions)}
    position = index.get(offset)
    names: list[str] = []
    checked = False
    steps = 0
    while position is not None and position < len(instructions) and steps < 500:
        steps += 1
        ins = instructions[position]
        position += 1
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_FAST"):
            names.append(str(ins.argval))
        elif ins.opname == "LOAD_ATTR" and names:
            names[-1] = f"{names[-1]}.{ins.argval}"
        elif ins.opname == "CHECK_EXC_MATCH":
            checked = True
            matched = [t for name in names for t in _types(_resolve(name, frame))]
            matched = [t for t in matched if isinstance(exc, t)]
            if matched:
                return _breadth_of(matched)
            names.clear()
            jump = instructions[position] if position < len(instructions) else None
            position = index.get(jump.argval) if jump is not None else None  # next clause
        elif ins.opname in ("PUSH_EXC_INFO", "BUILD_TUPLE", "NOP", "CACHE"):
            continue
        elif not names:
            # The handler body starts with no type check: ``except:`` (unless an earlier
            # clause was checked and nothing matched as far as we can tell).
            return "narrow" if checked else "bare"
    return "narrow"


def _types(value: object) -> list[type]:
    if isinstance(value, type):
        return [value]
    if isinstance(value, tuple):
        return [item for item in value if isinstance(item, type)]
    return []


def _breadth_of(types: list[type]) -> str:
    if BaseException in types:
        return "base"
    if Exception in types:
        return "exception"
    return "narrow"


def _resolve(name: str, frame: FrameType) -> object:
    head, *rest = name.split(".")
    local = frame.f_locals
    if head in local:
        value = local[head]
    elif head in frame.f_globals:
        value = frame.f_globals[head]
    else:
        value = getattr(builtins, head, None)
    for attribute in rest:
        value = getattr(value, attribute, None)
    return value


def _handling(exc: BaseException) -> bool:
    current: BaseException | None = sys.exception()  # type: ignore[attr-defined, unused-ignore]
    for _ in range(_CHAIN):
        if current is None:
            return False
        if current is exc:
            return True
        current = current.__context__
    return False


_warned: list[bool] = []


def _internal_error() -> None:
    if not _warned:
        _warned.append(True)
        from faultlens.shared import report_internal_error

        report_internal_error("swallowed-exception detector")


_detector: list[Detector] = []


def start(prefixes: Iterable[str]) -> Detector | None:
    """Start the detector for modules under ``prefixes`` (once per process); None on
    Python < 3.12 or when the capture engine has no tool id."""
    if not supported() or _detector:
        return _detector[0] if _detector else None
    detector = Detector(prefixes)
    if not detector.start():
        return None
    _detector.append(detector)
    atexit.register(detector.finish)
    return detector
