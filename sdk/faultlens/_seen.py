"""Exceptions already recorded, by identity: one exception, one occurrence.

The same exception object may reach several recording layers — nested
``capture`` wrappers, the logging capture when a caller logs it, the
excepthooks, the asyncio hook, and ``Span.record_exception`` calls of the
OpenTelemetry contrib instrumentations. :class:`Seen` remembers the exceptions
recorded lately so that each is counted once, without touching them:

* nothing is set on the exception (its ``__dict__``, ``vars()``, pickles and
  ``__reduce__`` stay as they were), and nothing keeps it alive — its frames and
  their locals are freed exactly when they would be without faultlens;
* an entry is keyed by ``id(exc)`` and checked against a *token* that only this
  exception can match, so an address reused by a later exception never matches:
  a weak reference where the type allows one (every exception class written in
  Python), else the exception's own ``args`` tuple when nothing but the
  exception holds it (built-in types raised the usual way: ``ValueError("x")``,
  ``KeyError`` from a dict, ``OSError`` from a system call). Holding that tuple
  keeps its few small items alive, never the exception or its traceback. An
  exception with neither (a built-in type raised with no arguments, or with a
  tuple shared with other code) is not remembered; the span-level check of
  :func:`faultlens._recorder.record_span_exception` and the processor's merge of
  duplicate events on one span cover it;
* the table is bounded (:data:`CAPACITY` entries, least recently added first
  out), so its memory is too; an exception recorded again after that many
  others counts again.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from opentelemetry.util.types import AttributeValue

#: Exceptions remembered at most.
CAPACITY: Final = 4096
#: ``sys.getrefcount`` of an ``args`` tuple only its exception holds, seen from :func:`token`.
_OWNED_ARGS_REFS: Final = 3

SpanKey = tuple[int, int]


@dataclass(slots=True)
class Recorded:
    """What is known about an exception recorded once.

    ``span`` is the span (``(trace_id, span_id)``) whose event counted it, None
    when no event did (storm control counted it for a later aggregate, or it went
    out as a log record). ``attributes`` are a few of its attributes in the
    recorder's compact form (type, category, severity, fingerprint, handled,
    source), for events that refer to it: an entry stays a couple of hundred bytes.
    """

    token: object
    fingerprint: str
    span: SpanKey | None
    attributes: tuple[AttributeValue | None, ...]


def token(exc: BaseException) -> object | None:
    """A token only ``exc`` matches while it lives (see the module docstring), or None."""
    try:
        return weakref.ref(exc)
    except TypeError:
        pass
    args = exc.args
    if type(args) is tuple and args and sys.getrefcount(args) <= _OWNED_ARGS_REFS:
        return args
    return None


def _matches(held: object, exc: BaseException) -> bool:
    if isinstance(held, weakref.ref):
        return held() is exc
    return exc.args is held


class Seen:
    """A bounded table of recorded exceptions; thread-safe."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[int, Recorded] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, exc: BaseException) -> Recorded | None:
        """The entry of ``exc`` if it was recorded (and is still remembered)."""
        entry = self._entries.get(id(exc))
        if entry is None or not _matches(entry.token, exc):
            return None
        return entry

    def add(
        self,
        exc: BaseException,
        fingerprint: str,
        attributes: tuple[AttributeValue | None, ...],
    ) -> Recorded | None:
        """Remember ``exc``; returns its entry, or None when it cannot be told apart safely."""
        held = token(exc)
        if held is None:
            return None
        entry = Recorded(held, fingerprint, None, attributes)
        with self._lock:
            self._entries[id(exc)] = entry
            self._entries.move_to_end(id(exc))
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return entry

    def clear(self) -> None:
        """Forget everything (tests: :func:`faultlens.set_testing`)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class EscapedOnSpan:
    """``(type, message)`` of the escaped failures recorded per span, for exceptions
    :class:`Seen` cannot remember; bounded like it."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._spans: OrderedDict[SpanKey, set[tuple[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, span: SpanKey, type_name: str, message: str) -> None:
        with self._lock:
            self._spans.setdefault(span, set()).add((type_name, message))
            self._spans.move_to_end(span)
            while len(self._spans) > self.capacity:
                self._spans.popitem(last=False)

    def has(self, span: SpanKey, type_name: str, message: str) -> bool:
        return (type_name, message) in self._spans.get(span, ())

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()
