"""In-process broadcasts: halt changes (and alerts) pushed to subscribers.

A :class:`Broadcast` fans published items out to every :class:`Subscription`. Each
subscription has its own bounded queue, so a slow subscriber (say, a control
API stream to a stalled client) never blocks the publisher nor other
subscribers. When a subscription's queue overflows it is marked ``overflowed``
and its queue is dropped; what that means is up to the broadcast's owner (the halt
broadcast answers it with a fresh snapshot, so a subscriber always converges on the
current state).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Subscription(Generic[T]):
    """One subscriber's queue. Iterate with :meth:`get`; :meth:`close` to leave."""

    def __init__(self, broadcast: Broadcast[T], max_pending: int, initial: list[T]) -> None:
        self._broadcast = broadcast
        self._max_pending = max_pending
        self._items: deque[T] = deque(initial)
        self._ready = threading.Condition()
        self.overflowed = False
        self.closed = False
        #: Items dropped by overflows so far.
        self.lost = 0

    def _push(self, item: T) -> None:
        with self._ready:
            if len(self._items) >= self._max_pending:
                self.lost += len(self._items) + 1
                self._items.clear()
                self.overflowed = True
            else:
                self._items.append(item)
            self._ready.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        """The next item, waiting up to ``timeout`` seconds; None on timeout or once
        closed. After an overflow, returns what the broadcast's ``on_overflow`` gives."""
        with self._ready:
            if not self._ready.wait_for(
                lambda: self._items or self.overflowed or self.closed, timeout
            ):
                return None
            if self.closed:
                return None
            if not self.overflowed:
                return self._items.popleft()
            self.overflowed = False
        # Outside our lock: the broadcast takes its own lock, and publishers hold the
        # broadcast's lock while taking ours.
        return self._broadcast.on_overflow()

    def close(self) -> None:
        """Leave the broadcast; a waiting :meth:`get` returns None."""
        self._broadcast._remove(self)
        with self._ready:
            self.closed = True
            self._ready.notify_all()

    def __enter__(self) -> Subscription[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Broadcast(Generic[T]):
    """Publish items to every current subscriber."""

    def __init__(
        self,
        *,
        snapshot: Callable[[], T | None] | None = None,
        max_pending: int = 1024,
    ) -> None:
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription[T]] = []
        self._snapshot = snapshot
        self.max_pending = max_pending

    def subscribe(self) -> Subscription[T]:
        """A new subscription; it starts with the broadcast's snapshot when it has one.

        Subscribe and snapshot happen under the publish lock, so no item
        published in between is lost or seen twice.
        """
        with self._lock:
            first = self._snapshot() if self._snapshot is not None else None
            subscription = Subscription(self, self.max_pending, [] if first is None else [first])
            self._subscriptions.append(subscription)
        return subscription

    def publish(self, item: T) -> None:
        """Queue ``item`` for every subscriber; never blocks on them."""
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription._push(item)

    def locked(self) -> threading.Lock:
        """Hold this while changing the state the snapshot reads *and* publishing the
        change, so a new subscriber sees either the old state and the change, or the
        new state alone."""
        return self._lock

    def publish_locked(self, item: T) -> None:
        """:meth:`publish` for a caller already holding :meth:`locked`."""
        for subscription in list(self._subscriptions):
            subscription._push(item)

    def on_overflow(self) -> T | None:
        """What an overflowed subscription receives instead of the items it lost."""
        if self._snapshot is None:
            return None
        with self._lock:
            return self._snapshot()

    def _remove(self, subscription: Subscription[T]) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def __len__(self) -> int:
        with self._lock:
            return len(self._subscriptions)
