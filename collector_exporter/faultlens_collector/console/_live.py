"""Live pages: the processor's changes as server-sent events, matched to each page's search.

A page opens ``/api/v1/events?q=…&tab=…``; the console subscribes it to the
:class:`~faultlens_collector.console._upstream.LiveHub` and, for each
``GroupsChanged`` the processor streams, reads back which of the changed groups match
the page's search (``ListGroups`` with the page's filter and the changed fingerprints)
and sends them as rows — created ones and updated ones apart — so the page can
announce "N new" and refresh the rows it shows in place without reordering them.
Alerts and halt changes are passed on as they come. A comment line every
:data:`PING_SECONDS` keeps proxies from closing a quiet stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Final

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.console import _models as models
from faultlens_collector.console._calls import Caller, Console, rows, rpc

PING_SECONDS: Final = 15.0
#: Changed groups read back per event at most (more: the page is told to re-read).
MAX_ROWS: Final = 500


def sse(kind: str, data: Any) -> str:
    """One server-sent event (``data`` as JSON on one line)."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def event_stream(
    request: Request, console: Console, who: Caller, group_filter: Any
) -> AsyncIterator[str]:
    """The events of one page (see the module docstring)."""
    listener = console.hub.subscribe(who.token)
    try:
        yield "retry: 2000\n\n"
        yield sse("hello", {"actor": who.actor})
        while True:
            try:
                kind, payload = await asyncio.wait_for(listener.queue.get(), PING_SECONDS)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    return
                yield ": ping\n\n"
                continue
            if kind == "closed":
                return
            if kind == "unauthenticated":
                if who.session is not None:
                    console.sessions.drop(who.session.id)
                yield sse("unauthenticated", {})
                return
            if kind == "groups":
                if payload.heartbeat:
                    continue
                try:
                    data = await run_in_threadpool(groups_event, who, group_filter, payload)
                except HTTPException:
                    data = {"resync": True}
                yield sse("groups", data)
            elif kind == "alert":
                yield sse("alert", models.alert(payload).model_dump())
            elif kind == "halts":
                if payload.kind != control_pb2.HALT_EVENT_KIND_HEARTBEAT:
                    yield sse("halts", {"version": payload.version})
            elif kind == "resync":
                yield sse("groups", {"resync": True})
    finally:
        console.hub.unsubscribe(listener)


def groups_event(who: Caller, group_filter: Any, changed: Any) -> dict[str, Any]:
    """What a ``GroupsChanged`` means to a page with this filter."""
    created = list(changed.created)
    updated = list(changed.updated)
    actions = [models.audit_entry(action).model_dump() for action in changed.actions]
    names = created + updated
    if changed.overflowed or len(names) > MAX_ROWS:
        return {"resync": True, "actions": actions}
    matching: list[models.GroupRow] = []
    if names:
        narrowed = control_pb2.GroupFilter()
        narrowed.CopyFrom(group_filter)
        narrowed.fingerprints[:] = names
        reply = rpc(
            who, "ListGroups", control_pb2.ListGroupsRequest(filter=narrowed, limit=len(names))
        )
        matching = rows(who, reply.groups)
    new = set(created)
    return {
        "created": [row.model_dump() for row in matching if row.fingerprint in new],
        "updated": [row.model_dump() for row in matching if row.fingerprint not in new],
        "regressed": list(changed.regressed),
        "actions": actions,
    }
