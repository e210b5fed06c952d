"""The console's JSON API under ``/api/v1/`` (described at ``/api/v1/openapi.json``).

Every call is authenticated: a session cookie (from the login form, ``POST
/api/v1/session``) or ``Authorization: Bearer <processor token>`` for scripts (any
value when the processor needs no token; ``X-Faultlens-Actor`` names the actor).
State-changing calls of a session also need its CSRF token in ``X-CSRF-Token``.
Control-API failures map to HTTP statuses: INVALID_ARGUMENT 400, UNAUTHENTICATED
401, NOT_FOUND 404, FAILED_PRECONDITION 409, RESOURCE_EXHAUSTED 429, UNAVAILABLE
503, DEADLINE_EXCEEDED 504, anything else 502 — each with a one-line ``detail``.
"""

from __future__ import annotations

import hmac
import math
import time
from datetime import datetime, timezone
from typing import Annotated, Any, Final, Literal

import grpc
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.console import _models as models
from faultlens_collector.console._calls import (
    Caller,
    Console,
    http_error,
    problem,
    rows,
    rpc,
    spark,
)
from faultlens_collector.console._live import event_stream
from faultlens_collector.console._search import SearchError, parse_search
from faultlens_collector.console._sessions import (
    CSRF_HEADER,
    Session,
    clean_actor,
)
from faultlens_collector.control.client import ControlError
from faultlens_collector.control.messages import key_items
from faultlens_collector.control.methods import MAX_INT64
from faultlens_collector.control.paging import MAX_TOKEN_CHARS
from faultlens_collector.groups.model import HOUR_NANOS

_SORTS: Final = {
    "last_seen": control_pb2.SORT_KEY_LAST_SEEN,
    "first_seen": control_pb2.SORT_KEY_FIRST_SEEN,
    "count": control_pb2.SORT_KEY_COUNT,
    "severity": control_pb2.SORT_KEY_SEVERITY,
}
_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": models.Problem} for code in (400, 401, 403, 404, 409, 422, 429, 502, 503, 504)
}
Tab = Literal["open", "regressed", "dismissed", "resolved", "all"]
Sort = Literal["last_seen", "first_seen", "count", "severity"]
Fingerprint = Annotated[str, Field(pattern=r"^[0-9a-f]{4,16}$")]
#: The 24 hours of a list row's sparkline.
SPARK_HOURS: Final = 24


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def caller(request: Request) -> Caller:
    """Authenticate the request (see the module docstring); 401 otherwise."""
    console = console_of(request)
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise problem(401, "use Authorization: Bearer <token>")
        token = token.strip()
        if not token_shaped(token):
            raise problem(401, "wrong token")
        expected = console.settings.token
        if expected and not hmac.compare_digest(token.encode(), expected.encode()):
            raise problem(401, "wrong token")
        actor = clean_actor(request.headers.get("x-faultlens-actor", "")) or "api"
        return Caller(actor, token, None, console.upstream.client(token))
    session = console.sessions.get(request.cookies.get(console.cookie))
    if session is None:
        raise problem(401, "log in first")
    return Caller(session.actor, session.token, session, console.upstream.client(session.token))


def changing_caller(request: Request, who: Annotated[Caller, Depends(caller)]) -> Caller:
    """:func:`caller` for a state-changing call: a session must send its CSRF token, and a
    browser's ``Origin`` must be this console's."""
    if who.session is not None:
        if not who.session.csrf_ok(request.headers.get(CSRF_HEADER)):
            raise problem(403, "missing or wrong CSRF token; reload the page")
        check_origin(request)
    return who


def token_shaped(token: str) -> bool:
    """Whether ``token`` can travel as gRPC metadata (visible ASCII): anything else cannot
    be any processor's token."""
    return all(0x20 < ord(char) < 0x7F for char in token)


def check_origin(request: Request) -> None:
    """403 when the request names an ``Origin`` (or, without one, a ``Referer``) that is
    not this console's own."""
    origin = request.headers.get("origin") or _origin_of(request.headers.get("referer", ""))
    if origin and origin not in (None, "null") and origin != _own_origin(request):
        raise problem(403, "cross-origin request refused")


def _origin_of(url: str) -> str | None:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def search_filter(q: str, tab: str) -> Any:
    try:
        return parse_search(q).group_filter(tab)
    except SearchError as exc:
        raise problem(400, str(exc)) from None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


router = APIRouter(prefix="/api/v1", responses=_PROBLEMS)
Who = Annotated[Caller, Depends(caller)]
Changer = Annotated[Caller, Depends(changing_caller)]


# session
class Login(BaseModel):
    actor: str = Field(min_length=1, max_length=200, description="your name, for the audit log")
    token: str | None = Field(None, max_length=4096, description="the processor's token")


@router.get("/login-state", response_model=models.LoginState, tags=["session"])
def login_state(request: Request) -> models.LoginState:
    """Whether logging in needs the processor's token."""
    console = console_of(request)
    return models.LoginState(
        needs_token=console.upstream.needs_token(), title=console.settings.title
    )


@router.post("/session", response_model=models.Session, tags=["session"])
def log_in(request: Request, response: Response, body: Login) -> models.Session:
    """Log in: sets the session cookie (HttpOnly, SameSite=Strict)."""
    check_origin(request)
    session = login(console_of(request), body.actor, body.token, response)
    return session_model(console_of(request), session)


def login(console: Console, actor_text: str, token: str | None, response: Response) -> Session:
    """Check the name and token, start a session and set its cookie; HTTPException
    otherwise (a wrong token waits a little, against guessing)."""
    actor = clean_actor(actor_text)
    if not actor:
        raise problem(400, "give your name (it goes into the audit log)")
    token = (token or "").strip() or None
    if token is not None and not token_shaped(token):
        time.sleep(0.5)
        raise problem(401, "wrong token")
    expected = console.settings.token
    if expected is not None:
        if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
            time.sleep(0.5)
            raise problem(401, "wrong token")
    else:
        try:
            console.upstream.check_token(token)
        except ControlError as exc:
            if exc.code == grpc.StatusCode.UNAUTHENTICATED:
                time.sleep(0.5)
                raise problem(401, "the processor refused this token") from None
            raise http_error(exc) from None
    session = console.sessions.create(actor, token)
    response.set_cookie(
        console.cookie,
        session.id,
        httponly=True,
        samesite="strict",
        secure=console.settings.secure,
        path="/",
    )
    return session


def session_model(console: Console, session: Session) -> models.Session:
    return models.Session(
        actor=session.actor,
        csrf=session.csrf,
        title=console.settings.title,
        trace_url=bool(console.settings.trace_url),
    )


@router.get("/session", response_model=models.Session, tags=["session"])
def current_session(request: Request, who: Who) -> models.Session:
    """The logged-in operator and the CSRF token for their changes."""
    if who.session is None:
        raise problem(400, "bearer-token callers have no session")
    return session_model(console_of(request), who.session)


@router.delete("/session", status_code=204, tags=["session"])
def log_out(request: Request, response: Response, who: Changer) -> Response:
    """Log out (ends the session)."""
    console = console_of(request)
    if who.session is not None:
        console.sessions.drop(who.session.id)
    response = Response(status_code=204)
    response.delete_cookie(console.cookie, path="/")
    return response


# groups
@router.get("/groups", response_model=models.GroupPage, tags=["groups"])
def list_groups(
    *,
    who: Who,
    q: Annotated[str, Query(max_length=1000, description="search: key:value terms and text")] = "",
    tab: Tab = "open",
    sort: Sort = "last_seen",
    order: Literal["desc", "asc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=rf"^[A-Za-z0-9_-]{{1,{MAX_TOKEN_CHARS}}}$",
            description="a next_cursor of a previous page of the same search, tab and sort",
        ),
    ] = None,
    sparkline: bool = True,
    count: Annotated[bool, Query(description="count every match (false: total is null)")] = True,
) -> models.GroupPage:
    """One page of failure groups; ``next_cursor`` continues it: a keyset cursor (the
    next page starts right after this page's last group, however the list moved), good
    only with the same search, tab and sort (400 otherwise)."""
    return group_page(
        who,
        q=q,
        tab=tab,
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
        sparkline=sparkline,
        count=count,
    )


@router.get("/groups-count", response_model=models.GroupCount, tags=["groups"])
def count_groups(
    who: Who,
    q: Annotated[str, Query(max_length=1000)] = "",
    tab: Tab = "open",
) -> models.GroupCount:
    """How many groups the search selects (the list asks apart from its rows)."""
    reply = rpc(
        who, "ListGroups", control_pb2.ListGroupsRequest(filter=search_filter(q, tab), limit=1)
    )
    return models.GroupCount(total=reply.total)


def group_page(
    who: Caller,
    *,
    q: str = "",
    tab: str = "open",
    sort: str = "last_seen",
    order: str = "desc",
    limit: int = 50,
    cursor: str | None = None,
    sparkline: bool = True,
    count: bool = True,
) -> models.GroupPage:
    """The list's page (also embedded in the list page's HTML)."""
    read = now_ms()
    reply = rpc(
        who,
        "ListGroups",
        control_pb2.ListGroupsRequest(
            filter=search_filter(q, tab),
            sort=_SORTS[sort],
            ascending=order == "asc",
            limit=limit,
            page_token=cursor or "",
            skip_total=not count,
        ),
    )
    return models.GroupPage(
        groups=rows(who, reply.groups, sparkline),
        total=reply.total if count else None,
        next_cursor=reply.next_page_token or None,
        read_ms=read,
    )


@router.get("/groups/{fingerprint}", response_model=models.GroupDetail, tags=["groups"])
def group_detail(
    request: Request,
    who: Who,
    fingerprint: Annotated[str, Path(pattern=r"^[0-9a-fA-F]{4,16}$")],
    hours: Annotated[int, Query(ge=1, le=720)] = 168,
) -> models.GroupDetail:
    """Everything about one group: stack trace, attributes, occurrences over time,
    services, sample traces (linked through the trace-URL template), hook runs, the
    audit trail, and its root causes across services (what caused it, what it caused)."""
    group = rpc(who, "GetGroup", control_pb2.GetGroupRequest(fingerprint=fingerprint))
    bucket_hours = max(1, -(-hours // 168))
    series = rpc(
        who,
        "GetSeries",
        control_pb2.SeriesRequest(
            fingerprints=[group.fingerprint],
            start_unix_nano=max(time.time_ns() - hours * HOUR_NANOS, 1),
            bucket_seconds=bucket_hours * 3600,
        ),
    )
    runs = rpc(
        who,
        "ListHookRuns",
        control_pb2.ListHookRunsRequest(fingerprint=group.fingerprint, limit=50),
    )
    audit = rpc(
        who, "ListAudit", control_pb2.ListAuditRequest(fingerprint=group.fingerprint, limit=50)
    )
    day = spark(who, [group.fingerprint]).get(group.fingerprint)
    linked = linked_groups(who, group)
    return models.GroupDetail(
        group=models.group_row(group, day),
        stacktrace=group.stacktrace,
        span_names=list(group.span_names),
        samples=models.samples(group, console_of(request).settings.trace_url),
        series=models.series_set(series),
        hook_runs=[models.hook_run(run) for run in runs.runs],
        audit=[models.audit_entry(action) for action in audit.actions],
        root_cause=models.root_cause(group, linked),
    )


#: Groups at the other end of a group's links whose type and service a group page shows.
MAX_LINKED: Final = 100


def linked_groups(who: Caller, group: Any) -> dict[str, Any]:
    """The groups ``group`` is linked to (its root, causes and symptoms; at most
    :data:`MAX_LINKED`), read in one call, by fingerprint."""
    wanted = [group.root_fingerprint] if group.root_fingerprint else []
    wanted += [link.fingerprint for link in (*group.caused_by, *group.causes)]
    wanted = list(dict.fromkeys(wanted))[:MAX_LINKED]
    if not wanted:
        return {}
    reply = rpc(
        who,
        "ListGroups",
        control_pb2.ListGroupsRequest(
            filter=control_pb2.GroupFilter(fingerprints=wanted),
            limit=len(wanted),
            skip_total=True,
        ),
    )
    return {other.fingerprint: other for other in reply.groups}


# bulk actions
class Selection(BaseModel):
    """The groups to act on: ``fingerprints``, or ``match`` = everything the search
    ``query`` selects in ``tab`` (the list's "select all matching"); with
    ``with_symptoms``, also the groups marked as symptoms of those (resolving or
    dismissing a root cause takes its symptoms along)."""

    fingerprints: list[Fingerprint] = Field(default_factory=list, max_length=10_000)
    match: bool = False
    query: str = Field("", max_length=1000)
    tab: Tab = "all"
    with_symptoms: bool = False

    def message(self) -> Any:
        if self.match:
            group_filter = search_filter(self.query, self.tab)
            everything = group_filter == control_pb2.GroupFilter()
            return control_pb2.GroupSelection(
                filter=group_filter, all=everything, with_symptoms=self.with_symptoms
            )
        if not self.fingerprints:
            raise problem(400, "select groups: give fingerprints, or match the search")
        return control_pb2.GroupSelection(
            fingerprints=self.fingerprints, with_symptoms=self.with_symptoms
        )


class BulkBase(BaseModel):
    selection: Selection
    dry_run: bool = Field(False, description="only count the groups")


class DismissBody(BulkBase):
    reason: str = Field(min_length=1, max_length=1000)
    until: datetime | None = Field(None, description="open again from this time on")
    reopen_above_per_hour: int = Field(
        0, ge=0, le=1_000_000_000, description="open again above this many per hour (0: never)"
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a dismissal needs a reason")
        return value

    @field_validator("until")
    @classmethod
    def _until(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        if not 0 < value.timestamp() * 1e9 < MAX_INT64:
            raise ValueError("give a time between 1970 and 2262")
        return value


class CategorizeBody(BulkBase):
    category: str | None = Field(None, max_length=256)
    severity: Literal["low", "medium", "high", "critical"] | None = None
    add_tags: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=32
    )
    remove_tags: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=32
    )


class FixBody(BulkBase):
    hook: str = Field(min_length=1, max_length=256, description="a hook the processor defines")


class StatusBody(BulkBase):
    reason: str = Field("", max_length=1000)


def bulk(who: Caller, action: str, name: str, request: Any) -> models.BulkResult:
    at = now_ms()
    reply = rpc(who, name, request)
    return models.BulkResult(
        action=action,
        matched=reply.matched,
        dry_run=reply.dry_run,
        action_id=reply.action_id,
        queued=reply.queued,
        dropped=reply.dropped,
        results=[
            models.GroupResult(fingerprint=r.fingerprint, outcome=r.outcome) for r in reply.results
        ],
        results_truncated=reply.results_truncated,
        at_ms=at,
    )


@router.post("/groups/dismiss", response_model=models.BulkResult, tags=["bulk"])
def dismiss(who: Changer, body: DismissBody) -> models.BulkResult:
    """Dismiss the selected groups with a reason, optionally until a time or until their
    rate passes a limit."""
    return bulk(
        who,
        "dismiss",
        "Dismiss",
        control_pb2.DismissRequest(
            selection=body.selection.message(),
            reason=body.reason.strip(),
            until_unix_nano=int(body.until.timestamp() * 1e9) if body.until else 0,
            reopen_above_per_hour=body.reopen_above_per_hour,
            actor=who.actor,
            dry_run=body.dry_run,
        ),
    )


@router.post("/groups/categorize", response_model=models.BulkResult, tags=["bulk"])
def categorize(who: Changer, body: CategorizeBody) -> models.BulkResult:
    """Set (and lock) the category and/or severity, add or remove tags."""
    return bulk(
        who,
        "categorize",
        "Categorize",
        control_pb2.CategorizeRequest(
            selection=body.selection.message(),
            category=(body.category or "").strip(),
            severity=body.severity or "",
            add_tags=body.add_tags,
            remove_tags=body.remove_tags,
            actor=who.actor,
            dry_run=body.dry_run,
        ),
    )


@router.post("/groups/fix", response_model=models.BulkResult, tags=["bulk"])
def fix(who: Changer, body: FixBody) -> models.BulkResult:
    """Run a configured fix hook for every selected group (verified like any fix)."""
    return bulk(
        who,
        "fix",
        "Fix",
        control_pb2.FixRequest(
            selection=body.selection.message(),
            hook=body.hook,
            actor=who.actor,
            dry_run=body.dry_run,
        ),
    )


@router.post("/groups/resolve", response_model=models.BulkResult, tags=["bulk"])
def resolve(who: Changer, body: StatusBody) -> models.BulkResult:
    """Resolve: the groups regress when they occur again."""
    return bulk(who, "resolve", "Resolve", _status(who, body))


@router.post("/groups/reopen", response_model=models.BulkResult, tags=["bulk"])
def reopen(who: Changer, body: StatusBody) -> models.BulkResult:
    """Reopen: ends a dismissal or a resolution."""
    return bulk(who, "reopen", "Reopen", _status(who, body))


def _status(who: Caller, body: StatusBody) -> Any:
    return control_pb2.SetStatusRequest(
        selection=body.selection.message(),
        reason=body.reason.strip(),
        actor=who.actor,
        dry_run=body.dry_run,
    )


# records
@router.get("/hook-runs", response_model=list[models.HookRun], tags=["hooks"])
def hook_runs(
    who: Who,
    fingerprint: Annotated[str, Query(pattern=r"^([0-9a-f]{16})?$")] = "",
    hook: Annotated[str, Query(max_length=256)] = "",
    since_ms: Annotated[int, Query(ge=0, le=MAX_INT64 // 1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[models.HookRun]:
    """Hook executions, newest first."""
    reply = rpc(
        who,
        "ListHookRuns",
        control_pb2.ListHookRunsRequest(
            fingerprint=fingerprint, hook=hook, since_unix_nano=since_ms * 1_000_000, limit=limit
        ),
    )
    return [models.hook_run(run) for run in reply.runs]


@router.get("/hooks", response_model=list[models.HookHealth], tags=["hooks"])
def hooks(who: Who) -> list[models.HookHealth]:
    """The processor's fix hooks and their recent record."""
    return hook_health(who)


def hook_health(who: Caller) -> list[models.HookHealth]:
    reply = rpc(who, "GetEffectiveness", control_pb2.GetEffectivenessRequest())
    thresholds = models.Thresholds()
    return [models.hook_health(report, thresholds) for report in reply.hooks]


@router.get("/audit", response_model=list[models.AuditEntry], tags=["audit"])
def audit(
    who: Who,
    fingerprint: Annotated[str, Query(pattern=r"^([0-9a-f]{16})?$")] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[models.AuditEntry]:
    """The operator log, newest first."""
    reply = rpc(
        who,
        "ListAudit",
        control_pb2.ListAuditRequest(fingerprint=fingerprint, action=action, limit=limit),
    )
    return [models.audit_entry(entry) for entry in reply.actions]


# halts
@router.get("/halts", response_model=list[models.Halt], tags=["halts"])
def halts(who: Who, history: bool = False) -> list[models.Halt]:
    """Halts in force (oldest first), or with ``history`` the recent ones (newest first)."""
    reply = rpc(who, "ListHalts", control_pb2.ListHaltsRequest(include_resumed=history))
    return [models.halt(item) for item in reply.halts]


class StartHaltBody(BaseModel):
    key: dict[
        Annotated[str, Field(min_length=1, max_length=256)],
        Annotated[str, Field(max_length=1024)] | bool | int | float,
    ] = Field(min_length=1, max_length=16, description="attributes; work matching all is refused")
    reason: str = Field(min_length=1, max_length=1000)

    @field_validator("key")
    @classmethod
    def _key(cls, value: dict[str, Any]) -> dict[str, Any]:
        for item in value.values():
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_INT64:
                raise ValueError("integer key values must fit in 64 bits")
            if isinstance(item, float) and math.isnan(item):
                raise ValueError("a key value must not be NaN")
        return value


@router.post("/halts", response_model=models.Halt, tags=["halts"])
def start_halt(who: Changer, body: StartHaltBody) -> models.Halt:
    """Halt a key by hand."""
    if not body.reason.strip():
        raise problem(400, "a halt needs a reason")
    reply = rpc(
        who,
        "StartHalt",
        control_pb2.StartHaltRequest(
            key=key_items(body.key), reason=body.reason.strip(), actor=who.actor
        ),
    )
    return models.halt(reply)


@router.post("/halts/{halt_id}/resume", response_model=list[models.Halt], tags=["halts"])
def resume_halt(
    who: Changer, halt_id: Annotated[str, Path(min_length=1, max_length=256)]
) -> list[models.Halt]:
    """Lift a halt."""
    reply = rpc(who, "ResumeHalt", control_pb2.ResumeHaltRequest(id=halt_id, actor=who.actor))
    return [models.halt(item) for item in reply.resumed]


# alerts and the dashboard
@router.get("/alerts", response_model=list[models.Alert], tags=["alerts"])
def alerts(who: Who, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[models.Alert]:
    """The most recent alerts, newest first."""
    reply = rpc(who, "ListAlerts", control_pb2.ListAlertsRequest(limit=limit))
    return [models.alert(item) for item in reply.alerts]


@router.get("/dashboard", response_model=models.Dashboard, tags=["dashboard"])
def dashboard(who: Who, hours: Annotated[int, Query(ge=1, le=720)] = 24) -> models.Dashboard:
    """Failures over time by category, severity and service; new groups and regressions;
    top groups; fix-hook effectiveness against the thresholds; halts; recent alerts."""
    now = time.time_ns()
    since = max(now - hours * HOUR_NANOS, 1)
    bucket = max(1, -(-hours // 48)) * 3600

    def by(dimension: str, limit: int = 100) -> models.SeriesSet:
        return models.series_set(
            rpc(
                who,
                "GetSeries",
                control_pb2.SeriesRequest(
                    group_by=dimension, start_unix_nano=since, bucket_seconds=bucket, limit=limit
                ),
            )
        )

    def newest(**fields: Any) -> models.GroupList:
        reply = rpc(
            who,
            "ListGroups",
            control_pb2.ListGroupsRequest(
                filter=control_pb2.GroupFilter(**fields),
                sort=control_pb2.SORT_KEY_LAST_SEEN,
                limit=10,
            ),
        )
        return models.GroupList(total=reply.total, groups=rows(who, reply.groups))

    top = by("fingerprint", 10)
    top_groups: list[models.GroupRow] = []
    if top.series:
        reply = rpc(
            who,
            "ListGroups",
            control_pb2.ListGroupsRequest(
                filter=control_pb2.GroupFilter(fingerprints=[s.key for s in top.series]),
                limit=len(top.series),
            ),
        )
        found = {group.fingerprint: group for group in reply.groups}
        top_groups = [
            models.group_row(found[s.key], s.counts) for s in top.series if s.key in found
        ]
    halts_reply = rpc(who, "ListHalts", control_pb2.ListHaltsRequest())
    alerts_reply = rpc(who, "ListAlerts", control_pb2.ListAlertsRequest(limit=50))
    return models.Dashboard(
        hours=hours,
        by_category=by("category"),
        by_severity=by("severity"),
        by_service=by("service", 8),
        new_groups=newest(first_seen_since_unix_nano=since),
        regressions=newest(regressed_since_unix_nano=since),
        top_groups=top_groups,
        hooks=hook_health(who),
        thresholds=models.Thresholds(),
        halts=[models.halt(item) for item in halts_reply.halts],
        alerts=[models.alert(item) for item in alerts_reply.alerts],
    )


# live events (server-sent events; not in the OpenAPI document: a stream, not JSON)
@router.get("/events", include_in_schema=False)
async def events(
    request: Request,
    who: Who,
    q: Annotated[str, Query(max_length=1000)] = "",
    tab: Tab = "open",
) -> StreamingResponse:
    """Server-sent events: ``groups`` (changes matching the list's search), ``alert``,
    ``halts``, ``resync`` (re-read what you show), ``unauthenticated``."""
    group_filter = search_filter(q, tab)
    return StreamingResponse(
        event_stream(request, console_of(request), who, group_filter),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
