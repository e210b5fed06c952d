"""A client of the processor's ``faultlens.v1.Control`` API (used by the command line).

Every gRPC failure becomes a :class:`ControlError` with one readable line: an
unreachable processor, a refused token, an unknown fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import grpc

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.channels import DEFAULT_ADDRESS, channel_for
from faultlens_collector.control.methods import REPLIES, STREAMS, method

DEFAULT_TARGET: Final = DEFAULT_ADDRESS


class ControlError(RuntimeError):
    """A control call failed; ``code`` is the gRPC status (None when not a gRPC error)."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class ControlClient:
    """Calls to one processor. ``target`` is ``host:port`` or ``https://host:port``."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        token: str | None = None,
        ca_file: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.target = target
        self.timeout = timeout
        try:
            root = ca_file.read_bytes() if ca_file else None
        except OSError as exc:
            raise ControlError(f"cannot read the CA file: {exc}") from exc
        try:
            self._channel = channel_for(target, root)
        except ValueError as exc:
            raise ControlError(f"--target: {exc}") from exc
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def list_groups(self, request: Any) -> Any:
        """``ListGroups`` (a ``ListGroupsRequest``) → ``ListGroupsResponse``."""
        return self.call("ListGroups", request)

    def get_group(self, fingerprint: str) -> Any:
        """``GetGroup`` → ``FailureGroup``."""
        return self.call("GetGroup", control_pb2.GetGroupRequest(fingerprint=fingerprint))

    def export_groups(self, request: Any) -> Iterator[Any]:
        """``ExportGroups``: every matching ``FailureGroup``."""
        return self.stream("ExportGroups", request)

    def call(self, name: str, request: Any) -> Any:
        """The unary Control RPC ``name`` (see :data:`REPLIES`) with ``request``."""
        return self.call_method(method(name), request, REPLIES[name])

    def call_method(
        self, path: str, request: Any, reply_type: Any, *, timeout: float | None = None
    ) -> Any:
        """Any unary RPC on the processor's port (``/package.Service/Method``), with the
        token; ``timeout`` defaults to the client's."""
        call = self._channel.unary_unary(
            path,
            request_serializer=type(request).SerializeToString,
            response_deserializer=reply_type.FromString,
        )
        try:
            return call(
                request,
                metadata=self._metadata,
                timeout=self.timeout if timeout is None else timeout,
            )
        except grpc.RpcError as error:
            raise self._error(error) from None

    def stream(self, name: str, request: Any, *, timeout: float | None = None) -> Iterator[Any]:
        """The streaming Control RPC ``name`` (see :data:`STREAMS`): its items, until the
        server ends it or ``timeout`` seconds pass (None: no deadline). The call starts
        at once; errors surface while iterating."""
        call = self._channel.unary_stream(
            method(name),
            request_serializer=type(request).SerializeToString,
            response_deserializer=STREAMS[name].FromString,
        )
        return self._items(call(request, metadata=self._metadata, timeout=timeout))

    def open_stream(self, name: str, request: Any, *, timeout: float | None = None) -> Any:
        """The streaming Control RPC ``name`` as the gRPC call itself: iterate it for the
        items (it raises ``grpc.RpcError``, see :meth:`error`), ``cancel()`` it from
        another thread to end it."""
        call = self._channel.unary_stream(
            method(name),
            request_serializer=type(request).SerializeToString,
            response_deserializer=STREAMS[name].FromString,
        )
        return call(request, metadata=self._metadata, timeout=timeout)

    def error(self, error: Any) -> ControlError:
        """A ``grpc.RpcError`` of this client's calls as a one-line :class:`ControlError`."""
        return self._error(error)

    def _items(self, responses: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from responses
        except grpc.RpcError as error:
            raise self._error(error) from None

    def _error(self, error: Any) -> ControlError:
        code = error.code() if isinstance(error, grpc.Call) else None
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        if code == grpc.StatusCode.UNAVAILABLE:
            return ControlError(
                f"cannot reach the faultlens processor at {self.target}: {details}", code
            )
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return ControlError(
                f"the processor at {self.target} refused the token ({details}); "
                "pass --token or set FAULTLENS_TOKEN",
                code,
            )
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return ControlError(
                f"{self.target} does not serve the faultlens control API (is it a faultlens "
                "processor, and the same version?)",
                code,
            )
        return ControlError(str(details), code)


def filter_message(
    *,
    statuses: Sequence[str] = (),
    services: Sequence[str] = (),
    categories: Sequence[str] = (),
    severities: Sequence[str] = (),
    since_unix_nano: int = 0,
    tags: Sequence[str] = (),
) -> Any:
    """A ``GroupFilter`` message."""
    return control_pb2.GroupFilter(
        statuses=statuses,
        services=services,
        categories=categories,
        severities=severities,
        since_unix_nano=since_unix_nano,
        tags=tags,
    )
