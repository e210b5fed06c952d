"""The console's ASGI application: pages, static assets, the JSON API, security headers.

Pages are one HTML shell (``static/page.html``) that names the page and, for the
groups list, carries its first page as JSON (so the list paints without waiting for
another request); ``static/console.js`` renders everything else from the JSON API,
putting text from the wire only into text nodes. Every response carries a strict
Content-Security-Policy (scripts, styles and connections from this origin only, no
inline script, no framing), ``nosniff`` and ``no-referrer``. Requests whose ``Host``
is not this console's (DNS rebinding) are refused with 421 unless the console listens
on a wildcard address.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template
from typing import Any, Final
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from faultlens import __version__
from starlette.types import ASGIApp, Receive, Scope, Send

from faultlens_collector.console import _api
from faultlens_collector.console._api import caller, group_page, login
from faultlens_collector.console._calls import Caller, Console
from faultlens_collector.console._search import TABS
from faultlens_collector.console._sessions import Sessions
from faultlens_collector.console._settings import ConsoleSettings, host_port, is_loopback
from faultlens_collector.console._upstream import LiveHub, Upstream

STATIC: Final = Path(__file__).with_name("static")
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_SECURITY_HEADERS: Final = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_PAGES: Final = {"groups", "group", "dashboard", "login"}
#: Rows per page the list offers.
_PAGE_SIZES: Final = {"10", "25", "50", "100", "200"}


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The console application for ``settings`` (its upstream clients are made lazily)."""
    upstream = Upstream(settings)
    console = Console(settings, upstream, LiveHub(upstream), Sessions())
    app = FastAPI(
        title="faultlens console API",
        version=__version__,
        description=(
            "The JSON API behind the faultlens web console: failure groups, bulk triage, "
            "halts, alerts, dashboard data. Authenticate with the console's session cookie "
            "(plus X-CSRF-Token on changes) or Authorization: Bearer <processor token>."
        ),
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.console = console
    app.include_router(_api.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    shell = Template((STATIC / "page.html").read_text())

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return JSONResponse(
            {"detail": f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"},
            status_code=422,
        )

    _add_pages(app, console, shell)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    return _Guard(app, settings)  # type: ignore[return-value]


_NO_STORE: Final = {"cache-control": "no-store"}


def _add_pages(app: FastAPI, console: Console, shell: Template) -> None:
    """The HTML pages: the shell, named and (for the list) with its first rows."""
    settings, upstream = console.settings, console.upstream

    def page(name: str, who: Caller | None, initial: Any = None) -> Response:
        assert name in _PAGES
        session = who.session if who is not None else None
        body = shell.substitute(
            title=html.escape(settings.title),
            page=name,
            actor=html.escape(who.actor if who else ""),
            csrf=html.escape(session.csrf if session else ""),
            initial=_script_json(initial),
            version=html.escape(__version__),
        )
        return Response(body, media_type="text/html; charset=utf-8", headers=_NO_STORE)

    def operator(request: Request) -> Caller | None:
        try:
            return caller(request)
        except HTTPException:
            return None

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.get("/", include_in_schema=False)
    def groups_page(
        request: Request,
        *,
        q: str = "",
        tab: str = "open",
        sort: str = "last_seen",
        order: str = "desc",
        limit: str = "50",
    ) -> Response:
        who = operator(request)
        if who is None:
            return to_login(request)
        initial: Any = None
        size = int(limit) if limit in _PAGE_SIZES else 50
        if tab in TABS and sort in _api._SORTS and order in ("asc", "desc") and len(q) <= 1000:
            try:
                initial = group_page(
                    who, q=q, tab=tab, sort=sort, order=order, limit=size
                ).model_dump()
            except HTTPException as exc:
                initial = {"error": exc.detail}
        return page("groups", who, initial)

    @app.get("/groups/{fingerprint}", include_in_schema=False)
    def group_view(request: Request, fingerprint: str) -> Response:
        who = operator(request)
        return to_login(request) if who is None else page("group", who)

    @app.get("/dashboard", include_in_schema=False)
    def dashboard_page(request: Request) -> Response:
        who = operator(request)
        return to_login(request) if who is None else page("dashboard", who)

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request) -> Response:
        return page(
            "login",
            None,
            {"needs_token": upstream.needs_token(), "title": settings.title},
        )

    @app.post("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        _api.check_origin(request)
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=8)
        next_path = _local_path(form.get("next", ["/"])[0])
        redirect = RedirectResponse(next_path, status_code=303)
        try:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(
                login,
                console,
                form.get("actor", [""])[0],
                form.get("token", [""])[0],
                redirect,
            )
        except HTTPException as exc:
            return RedirectResponse(
                f"/login?error={quote(str(exc.detail))}&next={quote(next_path, safe='')}",
                status_code=303,
            )
        return redirect

    @app.post("/logout", include_in_schema=False)
    async def logout_form(request: Request) -> Response:
        _api.check_origin(request)
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
        session = console.sessions.get(request.cookies.get(console.cookie))
        if session is not None and session.csrf_ok(form.get("csrf", [None])[0]):
            console.sessions.drop(session.id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(console.cookie, path="/")
        return response


def _script_json(value: Any) -> str:
    """``value`` as JSON safe inside ``<script type="application/json">``."""
    text = json.dumps(value, separators=(",", ":"))
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def _local_path(text: str) -> str:
    """A redirect target on this console (anything else: ``/``)."""
    if text.startswith("/") and not text.startswith(("//", "/\\")):
        return text
    return "/"


class _Guard:
    """ASGI middleware: the ``Host`` check and the security headers (see the module
    docstring). Plain ASGI so server-sent event streams pass through unbuffered."""

    def __init__(self, app: FastAPI, settings: ConsoleSettings) -> None:
        self.app = app
        host, _ = host_port(settings.listen)
        self.any_host = host in ("0.0.0.0", "::", "")
        self.hosts = {host.lower(), *(name.lower() for name in settings.allowed_hosts)}
        if is_loopback(host) or self.any_host:
            self.hosts |= {"localhost", "127.0.0.1", "::1"}

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.any_host and not self._host_ok(scope):
            response = JSONResponse({"detail": "unknown Host"}, status_code=421)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _host_ok(self, scope: Scope) -> bool:
        for key, value in scope.get("headers", ()):
            if key == b"host":
                host = value.decode("latin-1").lower()
                if host.startswith("["):
                    host = host[1:].split("]", 1)[0]
                else:
                    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
                return host in self.hosts
        return False


__all__ = ["ASGIApp", "create_app"]
