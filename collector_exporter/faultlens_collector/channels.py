"""gRPC channels to a target written the faultlens way (``--forward``, ``--target``), and
where a processor is found by default."""

from __future__ import annotations

from typing import Final

import grpc
from faultlens.shared import parse_endpoint

#: Where ``faultlens serve`` listens, and clients look, unless told otherwise.
DEFAULT_ADDRESS: Final = "127.0.0.1:4317"


def channel_for(target: str, root_certificates: bytes | None = None) -> grpc.Channel:
    """A channel to ``target`` as :func:`faultlens.shared.parse_endpoint` reads it: TLS for
    ``https://`` (or when ``root_certificates`` are given), plaintext for ``http://`` or
    ``host:port``. Raises ``ValueError`` naming the problem for a malformed target."""
    address, secure = parse_endpoint(target)
    if secure or root_certificates is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
        return grpc.secure_channel(address, credentials)
    return grpc.insecure_channel(address)
