"""Where the faultlens processor is: ``FAULTLENS_ENDPOINT`` and ``FAULTLENS_HEADERS``.

Shared by everything in an application that talks to the processor — the
``faultlens`` traces exporter and the fleet-wide halt guard
(:class:`faultlens.resilience.RemoteHalts`):

``FAULTLENS_ENDPOINT`` (default ``localhost:4317``)
    ``host:port``, ``http://host:port`` (both plaintext) or ``https://host:port``
    (TLS). A missing port means 4317.
``FAULTLENS_HEADERS``
    gRPC metadata as ``key=value,key=value``; values are URL-decoded and keys
    lower-cased, as for ``OTEL_EXPORTER_OTLP_HEADERS`` (e.g.
    ``authorization=Bearer%20s3cret``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Final

from opentelemetry.util.re import parse_env_headers

_log = logging.getLogger("faultlens")

ENDPOINT_ENV: Final = "FAULTLENS_ENDPOINT"
HEADERS_ENV: Final = "FAULTLENS_HEADERS"
DEFAULT_ENDPOINT: Final = "localhost:4317"
DEFAULT_PORT: Final = 4317

Headers = Mapping[str, str] | Sequence[tuple[str, str]] | str


def parse_endpoint(value: str) -> tuple[str, bool]:
    """Split an endpoint into (``host:port``, uses TLS).

    Accepts ``host:port``, ``http://host:port`` and ``https://host:port`` (IPv6
    hosts in brackets, a trailing ``/``); a missing port means 4317. Raises
    ``ValueError`` naming the problem for anything else.
    """
    text = value.strip()
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "", text
    scheme = scheme.lower()
    if scheme not in ("", "http", "https"):
        raise ValueError(f"endpoint {value!r}: scheme must be http or https, not {scheme!r}")
    rest = rest.rstrip("/")
    if not rest or "/" in rest or "@" in rest or "?" in rest:
        raise ValueError(f"endpoint {value!r}: expected host:port or http(s)://host:port")
    if rest.startswith("["):  # [::1]:4317
        close = rest.find("]")
        host, port = rest[: close + 1], rest[close + 1 :]
        if close < 0 or (port and not port.startswith(":")):
            raise ValueError(f"endpoint {value!r}: malformed IPv6 address")
        port = port[1:]
    else:
        host, _, port = rest.partition(":")
    if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(f"endpoint {value!r}: expected host:port with a port in 1-65535")
    return f"{host}:{port or DEFAULT_PORT}", scheme == "https"


def endpoint_from_env(raw: str | None) -> tuple[str, bool]:
    """:func:`parse_endpoint` of ``FAULTLENS_ENDPOINT``'s value; the default when it is
    unset, and — logged once through the ``faultlens`` logger — when it is malformed
    (configuration trouble never stops the application)."""
    if raw is None or not raw.strip():
        return parse_endpoint(DEFAULT_ENDPOINT)
    try:
        return parse_endpoint(raw)
    except ValueError as exc:
        _log.warning("faultlens: %s: %s; using %s", ENDPOINT_ENV, exc, DEFAULT_ENDPOINT)
        return parse_endpoint(DEFAULT_ENDPOINT)


def parse_headers(headers: Headers) -> tuple[tuple[str, str], ...]:
    """gRPC metadata from ``key=value,…`` text (as ``FAULTLENS_HEADERS``), a mapping or
    pairs; keys lower-cased."""
    if isinstance(headers, str):
        return tuple(parse_env_headers(headers, liberal=True).items())
    items = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((str(key).lower(), str(item)) for key, item in items)


def resolve(
    endpoint: str | None, headers: Headers | None, environ: Mapping[str, str] | None = None
) -> tuple[str, bool, tuple[tuple[str, str], ...]]:
    """(``host:port``, uses TLS, metadata): the arguments given, else ``FAULTLENS_ENDPOINT``
    and ``FAULTLENS_HEADERS`` from ``environ`` (default ``os.environ``). A malformed
    ``endpoint`` argument raises ``ValueError``; a malformed variable is logged and the
    default used."""
    env = os.environ if environ is None else environ
    if endpoint is not None:
        target, secure = parse_endpoint(endpoint)
    else:
        target, secure = endpoint_from_env(env.get(ENDPOINT_ENV))
    return (
        target,
        secure,
        parse_headers(headers if headers is not None else env.get(HEADERS_ENV, "")),
    )
