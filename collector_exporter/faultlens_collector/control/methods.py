"""The ``faultlens.v1.Control`` service's methods and their message types — what a
client and the service agree on (proto/faultlens/v1/control.proto)."""

from __future__ import annotations

from typing import Final

from faultlens_collector._proto.faultlens.v1 import control_pb2

SERVICE: Final = "faultlens.v1.Control"
#: The largest time (Unix ns), count or offset a store holds: a signed 64-bit integer.
#: Fields are ``uint64`` on the wire; larger values are refused (or, for a filter's
#: ``since``, read as this).
MAX_INT64: Final = (1 << 63) - 1
#: :data:`MAX_INT64` nanoseconds as a date, for messages.
LATEST_TIME: Final = "2262-04-11T23:47:16Z"
#: The largest ``limit`` of a list request (``uint32`` on the wire; services cap it lower).
MAX_LIMIT: Final = (1 << 32) - 1

#: The reply type of each unary Control RPC.
REPLIES: Final = {
    "ListGroups": control_pb2.ListGroupsResponse,
    "GetGroup": control_pb2.FailureGroup,
    "Dismiss": control_pb2.BulkResponse,
    "Categorize": control_pb2.BulkResponse,
    "Resolve": control_pb2.BulkResponse,
    "Reopen": control_pb2.BulkResponse,
    "Fix": control_pb2.BulkResponse,
    "ListHalts": control_pb2.ListHaltsResponse,
    "ResumeHalt": control_pb2.ResumeHaltResponse,
    "StartHalt": control_pb2.Halt,
    "ListAudit": control_pb2.ListAuditResponse,
    "ListHookRuns": control_pb2.ListHookRunsResponse,
    "GetEffectiveness": control_pb2.GetEffectivenessResponse,
    "GetSeries": control_pb2.SeriesResponse,
    "ListAlerts": control_pb2.ListAlertsResponse,
}
#: The item type of each streaming Control RPC.
STREAMS: Final = {
    "ExportGroups": control_pb2.FailureGroup,
    "WatchHalts": control_pb2.HaltEvent,
    "StreamAlerts": control_pb2.Alert,
    "WatchGroups": control_pb2.GroupsChanged,
}


def method(name: str) -> str:
    """The full gRPC method path of a Control RPC."""
    return f"/{SERVICE}/{name}"
