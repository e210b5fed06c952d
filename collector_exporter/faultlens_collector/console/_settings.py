"""What a console is told at start: where the processor is, where to listen, TLS, links."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

DEFAULT_LISTEN: Final = "127.0.0.1:8080"


class ConsoleSetupError(RuntimeError):
    """The console cannot start as configured (missing extra, bad option, port taken)."""


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """Everything ``faultlens console`` (and ``serve --console``) can set.

    ``token`` is the processor's bearer token when the console is told it; browsers
    must then log in with the same token. Without it the console asks the processor
    whether a token is needed and checks the one a browser offers against it.
    ``trace_url`` is a template with ``{trace_id}`` (and optionally ``{span_id}``),
    e.g. ``http://jaeger:16686/trace/{trace_id}``. ``allowed_hosts`` are extra
    ``Host`` header values to accept besides the listen address and loopback names
    (a console bound to a wildcard address accepts any).
    """

    target: str
    listen: str = DEFAULT_LISTEN
    token: str | None = None
    ca_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trace_url: str | None = None
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    #: Title shown in the page header (e.g. the environment).
    title: str = "faultlens"

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConsoleSetupError("the console's TLS certificate and key go together")
        if self.trace_url and not self.trace_url.startswith(("http://", "https://")):
            raise ConsoleSetupError(
                f"--trace-url {self.trace_url!r}: give an http:// or https:// URL template "
                "with {trace_id}"
            )
        host_port(self.listen)

    @property
    def secure(self) -> bool:
        """Whether the console serves HTTPS."""
        return self.tls_cert is not None


def host_port(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) → (host, port); ConsoleSetupError otherwise."""
    host, sep, port_text = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConsoleSetupError(f"--listen {listen!r}: expected HOST:PORT")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
