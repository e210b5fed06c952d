"""What every console request does with the processor: who calls (:class:`Caller`,
with the control-API client for their token), the call itself with its errors turned
into HTTP errors (:func:`rpc`), and groups read back as list rows with sparklines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import grpc
from fastapi import HTTPException

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.console import _models as models
from faultlens_collector.console._sessions import COOKIE, SECURE_COOKIE, Session, Sessions
from faultlens_collector.console._settings import ConsoleSettings
from faultlens_collector.console._upstream import LiveHub, Upstream
from faultlens_collector.control.client import ControlClient, ControlError

_HTTP_STATUS: Final = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


@dataclass
class Console:
    """What every request handler shares."""

    settings: ConsoleSettings
    upstream: Upstream
    hub: LiveHub
    sessions: Sessions

    @property
    def cookie(self) -> str:
        return SECURE_COOKIE if self.settings.secure else COOKIE


@dataclass
class Caller:
    """Who calls: an operator's session, or a script with a bearer token."""

    actor: str
    token: str | None
    session: Session | None
    client: ControlClient


def problem(status: int, detail: str) -> HTTPException:
    return HTTPException(status_code=status, detail=detail)


def rpc(who: Caller, name: str, request: Any) -> Any:
    """Call the processor; its errors become HTTP errors (see the module docstring)."""
    try:
        return who.client.call(name, request)
    except ControlError as exc:
        raise http_error(exc) from None


def http_error(exc: ControlError) -> HTTPException:
    status = _HTTP_STATUS.get(exc.code, 502) if exc.code is not None else 502
    return problem(status, str(exc).splitlines()[0] if str(exc) else "the processor failed")


def spark(who: Caller, fingerprints: list[str]) -> dict[str, list[int]]:
    """Hourly counts over the last day for each group."""
    if not fingerprints:
        return {}
    reply = rpc(who, "GetSeries", control_pb2.SeriesRequest(fingerprints=fingerprints))
    return {series.key: list(series.counts) for series in reply.series}


def rows(who: Caller, groups: Any, with_spark: bool = True) -> list[models.GroupRow]:
    groups = list(groups)
    sparks = spark(who, [group.fingerprint for group in groups]) if with_spark else {}
    return [models.group_row(group, sparks.get(group.fingerprint)) for group in groups]
