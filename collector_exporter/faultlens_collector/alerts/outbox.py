"""The durable alert outbox, as the sender sees it: :class:`AlertOutbox`.

Alerts are written to the outbox before anything tries to send them and stay there,
in order, until the next hop acknowledged them; the action store implements it
(:class:`~faultlens_collector.actions.store.ActionStore`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from faultlens_collector.alerts.records import Alert, StoredAlert


class AlertOutbox(Protocol):
    def add_alert(self, alert: Alert) -> bool:
        """Queue ``alert``; False (and nothing stored) when its id is already known."""
        ...

    def pending_alerts(self, limit: int) -> list[StoredAlert]:
        """Unsent alerts in the order they were added (a store shared by several
        processors: those no other processor holds, now held by this one for a while)."""
        ...

    def mark_alerts_sent(self, seqs: Sequence[int], sent_at: float) -> None:
        """Record that the next hop acknowledged these alerts."""
        ...

    def release_alerts(self) -> None:
        """Give back the unsent alerts :meth:`pending_alerts` handed to this processor
        (a store shared by several processors hands them to another at once)."""
        ...

    def prune_sent_alerts(self, before: float) -> int:
        """Forget alerts sent before ``before`` (their ids become reusable)."""
        ...
