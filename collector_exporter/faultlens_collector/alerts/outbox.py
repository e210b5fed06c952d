"""The durable alert outbox, as the sender sees it: :class:`AlertOutbox`.

Alerts are written to the outbox before anything tries to send them and stay there,
in order, until the next hop acknowledged them; the action store implements it
(:class:`~faultlens_collector.actions.store.ActionStore`). An alert may be written
**held** (root-cause linking waits to know whether a new group is a symptom): it is
durable at once but not sent before its time, unless released or forgotten first — a
processor killed while it held alerts loses none of them.
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

    def hold_alert(self, alert: Alert, until: float) -> bool:
        """Queue ``alert`` held: not sent before ``until`` (epoch seconds) unless
        :meth:`settle_held_alert` releases it first; False when its id is known."""
        ...

    def settle_held_alert(self, alert_id: str, *, send: bool) -> bool:
        """Release the held alert ``alert_id`` to be sent now (``send``) or forget it;
        False when no alert of that id is held."""
        ...

    def release_held_alerts(self) -> int:
        """Release every held alert (a store only this processor writes, at start: what
        a run before held is sent); how many."""
        ...
