"""The ``faultlens.v1.Control`` service's methods and their message types — what a
client and the service agree on (proto/faultlens/v1/control.proto)."""

from __future__ import annotations

from typing import Final

from faultlens_collector._proto.faultlens.v1 import control_pb2

SERVICE: Final = "faultlens.v1.Control"

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
}
#: The item type of each streaming Control RPC.
STREAMS: Final = {
    "ExportGroups": control_pb2.FailureGroup,
    "WatchHalts": control_pb2.HaltEvent,
    "StreamAlerts": control_pb2.Alert,
}


def method(name: str) -> str:
    """The full gRPC method path of a Control RPC."""
    return f"/{SERVICE}/{name}"
