"""Alert once per occurrence: a persisted set of raised conditions.

A condition is a string key such as ``rule_match:db-timeouts:<fingerprint>``
or ``breaker_open:payments/instance-1/db``. :meth:`ConditionLatch.raise_` returns
True only when the condition was not raised yet — that is the moment to alert —
and :meth:`ConditionLatch.clear` re-arms it when the condition ends. The set is
kept in memory for the ingest path and written through to the store on every
change (rare by construction), so a restart neither forgets a raised condition
(which would alert again for the same occurrence) nor remembers a cleared one. With a
store shared by several processors, the store says which processor raised a
condition first (only that one alerts), and :meth:`ConditionLatch.reload` follows
the others' changes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from faultlens_collector.actions.store import ConditionStore


class ConditionLatch:
    """The raised conditions, loaded from ``store`` at construction."""

    def __init__(self, store: ConditionStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._raised: set[str] = store.conditions()

    def is_raised(self, key: str) -> bool:
        return key in self._raised

    def raise_(self, key: str, now: float) -> bool:
        """Raise ``key``; True when it was not raised before (then alert)."""
        if key in self._raised:  # the common case needs no lock
            return False
        with self._lock:
            if key in self._raised:
                return False
            raised = self._store.raise_condition(key, now)  # False: another processor did
            self._raised.add(key)
            return raised

    def reload(self) -> None:
        """Read the raised conditions again (another processor raised or cleared some)."""
        raised = self._store.conditions()
        with self._lock:
            self._raised = raised

    def clear(self, keys: Iterable[str]) -> None:
        """Clear every raised key among ``keys`` (unknown ones are ignored)."""
        with self._lock:
            raised = [key for key in keys if key in self._raised]
            if raised:
                self._store.clear_conditions(raised)
                self._raised.difference_update(raised)

    def raised_with_prefix(self, prefix: str) -> list[str]:
        with self._lock:
            return [key for key in self._raised if key.startswith(prefix)]
