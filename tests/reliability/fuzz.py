"""Malformed-input fuzzing of a running processor: every OTLP service and the control API.

:func:`cases` yields seeded, reproducible ``(kind, method, body)`` cases:
random bytes, truncated, bit-flipped and spliced valid requests, wrong wire
types, lengths that lie, deeply nested ``AnyValue`` s (kvlist and array),
invalid UTF-8 in every string the processor reads, huge attribute counts,
values at the edges of their types, hostile text, and requests just under and
just over the size limit. :func:`fuzz` sends them with a deadline per call and
sorts every reply: an OK reply must parse as the method's response, an error
must carry one of the statuses the method may answer. Anything else — an
``UNKNOWN`` or ``INTERNAL`` status (a handler raised), a missed deadline (a
hang), an unparsable reply — is an *unexpected* outcome.

Used by ``tests/reliability/test_reliability_fuzz.py`` (a fixed number of
cases) and ``benchmarks/soak.py`` (for a duration).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from faultlens_collector._proto.faultlens.v1 import control_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.processor_support import (
    LOGS_EXPORT,
    METRICS_EXPORT,
    TRACE_EXPORT,
    failure_attributes,
    logs_request,
    span,
    trace_request,
)
from tests.reliability import wire
from tests.reliability.hostile import INJECTIONS, UNITS

LIST_GROUPS = "/faultlens.v1.Control/ListGroups"
GET_GROUP = "/faultlens.v1.Control/GetGroup"
EXPORT_GROUPS = "/faultlens.v1.Control/ExportGroups"

OK = grpc.StatusCode.OK
#: What each method may answer. OTLP: a decodable request is accepted (possibly
#: partially); an undecodable one is INVALID_ARGUMENT; one over the size limit
#: RESOURCE_EXHAUSTED. Control: bad arguments are INVALID_ARGUMENT, an unknown
#: fingerprint NOT_FOUND.
ALLOWED: dict[str, frozenset[grpc.StatusCode]] = {
    TRACE_EXPORT: frozenset(
        {OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
    ),
    LOGS_EXPORT: frozenset(
        {OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
    ),
    METRICS_EXPORT: frozenset(
        {OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
    ),
    LIST_GROUPS: frozenset(
        {OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
    ),
    GET_GROUP: frozenset(
        {
            OK,
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        }
    ),
    EXPORT_GROUPS: frozenset(
        {OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
    ),
}
RESPONSES: dict[str, Any] = {
    TRACE_EXPORT: trace_service_pb2.ExportTraceServiceResponse,
    LOGS_EXPORT: logs_service_pb2.ExportLogsServiceResponse,
    METRICS_EXPORT: metrics_service_pb2.ExportMetricsServiceResponse,
    LIST_GROUPS: control_pb2.ListGroupsResponse,
    GET_GROUP: control_pb2.FailureGroup,
    EXPORT_GROUPS: control_pb2.FailureGroup,
}
OTLP_METHODS = (TRACE_EXPORT, LOGS_EXPORT, METRICS_EXPORT)
CONTROL_METHODS = (LIST_GROUPS, GET_GROUP, EXPORT_GROUPS)
INVALID_UTF8 = (b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"a\x80b")
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1

Case = tuple[str, str, bytes]


def valid_bodies() -> dict[str, list[bytes]]:
    """Well-formed requests per method: the seeds every mutation starts from."""
    traces = [
        trace_request([span(events=[failure_attributes()])]).SerializeToString(),
        trace_request(
            [
                span(
                    "checkout",
                    index=7,
                    events=[
                        failure_attributes(None, exception_type="KeyError", message="'sku'"),
                        failure_attributes(failure_count=3, failure_handled=True),
                    ],
                    attributes={"http.route": "/orders", "peer.service": "psp"},
                )
            ]
        ).SerializeToString(),
    ]
    logs = [
        logs_request(
            [{"exception.type": "TimeoutError", "exception.message": "after 3s"}, {"x": 1}]
        ).SerializeToString()
    ]
    metrics = [
        wire.metrics_request(
            b"faultlens.breaker.status",
            [
                wire.key_value(b"breaker.name", wire.any_string(b"psp")),
                wire.key_value(b"breaker.state", wire.any_string(b"open")),
            ],
        )
    ]
    return {
        TRACE_EXPORT: traces,
        LOGS_EXPORT: logs,
        METRICS_EXPORT: metrics,
        LIST_GROUPS: [
            control_pb2.ListGroupsRequest(
                filter=control_pb2.GroupFilter(statuses=["open"], services=["checkout"]),
                sort=control_pb2.SORT_KEY_COUNT,
                limit=10,
                page_token="10",
            ).SerializeToString()
        ],
        GET_GROUP: [
            control_pb2.GetGroupRequest(fingerprint="0123456789abcdef").SerializeToString()
        ],
        EXPORT_GROUPS: [
            control_pb2.ExportGroupsRequest(
                filter=control_pb2.GroupFilter(severities=["high"], since_unix_nano=1)
            ).SerializeToString()
        ],
    }


def _exception(rng: random.Random, *extra: bytes) -> bytes:
    attributes = [
        wire.key_value(b"exception.type", wire.any_string(b"FuzzError")),
        wire.key_value(b"exception.message", wire.any_string(b"m%d" % rng.randrange(1000))),
        *extra,
    ]
    return wire.trace_request([wire.exception_event(attributes)])


def _mutations(rng: random.Random, body: bytes) -> Iterator[tuple[str, bytes]]:
    if body:
        yield "truncated", body[: rng.randrange(len(body))]
        flipped = bytearray(body)
        for _ in range(rng.randint(1, 8)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        yield "bit-flipped", bytes(flipped)
        at = rng.randrange(len(body))
        yield "spliced", body[:at] + rng.randbytes(rng.randint(1, 16)) + body[at:]
        # The first byte is a field tag: keep the field, change its wire type.
        first = body[0]
        yield (
            "wrong wire type",
            bytes([(first & ~7) | rng.choice((0, 1, 3, 4, 5, 6, 7))]) + body[1:],
        )
    yield "random bytes", rng.randbytes(rng.choice((1, 2, 5, 17, 100, 1000, 5000)))
    yield (
        "length that lies",
        wire.tag(1, wire.LEN)
        + wire.varint(rng.choice((1 << 31, 1 << 40, UINT64_MAX)))
        + rng.randbytes(8),
    )
    yield "empty", b""


def _otlp_specials(rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    """Decodable-or-nearly requests aimed at what the processor reads."""
    for kind in ("kvlist", "array"):
        depth = rng.choice((10, 30, 60, 100, 150, 250))
        deep = wire.key_value(b"deep", wire.nested_value(depth, kind))
        yield f"nested {kind} {depth}", TRACE_EXPORT, _exception(rng, deep)
        yield (
            f"nested {kind} {depth}",
            LOGS_EXPORT,
            wire.logs_request([wire.key_value(b"exception.type", wire.any_string(b"E")), deep]),
        )
        yield f"nested {kind} {depth}", METRICS_EXPORT, wire.metrics_request(b"m", [deep])
    bad = rng.choice(INVALID_UTF8)
    yield (
        "invalid utf-8 type",
        TRACE_EXPORT,
        wire.trace_request(
            [wire.exception_event([wire.key_value(b"exception.type", wire.any_string(b"E" + bad))])]
        ),
    )
    yield "invalid utf-8 key", TRACE_EXPORT, _exception(rng, wire.key_value(bad, wire.any_int(1)))
    yield (
        "invalid utf-8 service",
        TRACE_EXPORT,
        wire.trace_request(
            [wire.exception_event([wire.key_value(b"exception.type", wire.any_string(b"E"))])],
            service=b"svc" + bad,
        ),
    )
    yield (
        "invalid utf-8 span name",
        TRACE_EXPORT,
        wire.trace_request(
            [wire.exception_event([wire.key_value(b"exception.type", wire.any_string(b"E"))])],
            span_name=bad,
        ),
    )
    yield (
        "invalid utf-8 log",
        LOGS_EXPORT,
        wire.logs_request([wire.key_value(b"exception.message", wire.any_string(bad * 3))]),
    )
    yield "invalid utf-8 metric", METRICS_EXPORT, wire.metrics_request(bad, [])
    edge = rng.choice((0, 1, INT64_MAX, INT64_MAX + 1, UINT64_MAX))
    yield (
        "edge time",
        TRACE_EXPORT,
        wire.trace_request(
            [
                wire.exception_event(
                    [wire.key_value(b"exception.type", wire.any_string(b"EdgeTime"))],
                    time_unix_nano=edge,
                )
            ]
        ),
    )
    yield (
        "edge count",
        TRACE_EXPORT,
        _exception(
            rng,
            wire.key_value(
                b"failure.count", wire.any_int(rng.choice((-1, 0, INT64_MAX, -INT64_MAX)))
            ),
        ),
    )
    odd = rng.choice(
        (
            wire.any_int(7),
            wire.any_array(wire.any_string(b"x")),
            wire.any_kvlist(),
            wire.field_bytes(7, b"\x00\xff"),
            b"",
        )
    )
    name = rng.choice(
        (
            b"exception.type",
            b"exception.message",
            b"exception.stacktrace",
            b"failure.fingerprint",
            b"failure.severity",
            b"failure.category",
            b"failure.handled",
            b"failure.count",
            b"service.name",
        )
    )
    yield f"odd type for {name.decode()}", TRACE_EXPORT, _exception(rng, wire.key_value(name, odd))
    unit = rng.choice(UNITS).encode()
    text = rng.choice(INJECTIONS).encode() + unit * (8192 // len(unit))
    yield (
        "hostile text",
        TRACE_EXPORT,
        wire.trace_request(
            [
                wire.exception_event(
                    [
                        wire.key_value(b"exception.type", wire.any_string(b"Hostile" + unit[:8])),
                        wire.key_value(b"exception.message", wire.any_string(text)),
                        wire.key_value(b"exception.stacktrace", wire.any_string(text * 4)),
                    ]
                )
            ]
        ),
    )


def _control_specials(rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    too_big = rng.choice(("9" * 19, "9" * 40, str(INT64_MAX + 1), "\u00b2", "-1", " 1", "1e3"))
    yield (
        "huge page_token",
        LIST_GROUPS,
        control_pb2.ListGroupsRequest(page_token=too_big).SerializeToString(),
    )
    since = rng.choice((INT64_MAX, INT64_MAX + 1, UINT64_MAX))
    for path, message in (
        (LIST_GROUPS, control_pb2.ListGroupsRequest),
        (EXPORT_GROUPS, control_pb2.ExportGroupsRequest),
    ):
        yield (
            "edge since",
            path,
            message(filter=control_pb2.GroupFilter(since_unix_nano=since)).SerializeToString(),
        )
        yield "unknown sort", path, wire.field_varint(2, rng.choice((5, 99, INT64_MAX)))
        yield (
            "odd filter",
            path,
            message(
                filter=control_pb2.GroupFilter(
                    statuses=[rng.choice(("", "OPEN", "open\x00", "o" * 1000))],
                    services=["x" * 10_000, "'; DROP TABLE failure_groups; --"],
                    categories=["%", "_", "\x00"],
                )
            ).SerializeToString(),
        )
    yield (
        "huge limit",
        LIST_GROUPS,
        control_pb2.ListGroupsRequest(limit=(1 << 32) - 1).SerializeToString(),
    )
    for fingerprint in ("", "abc", "%%%%", "____", "\x00" * 8, "\uffff" * 5, "f" * 10_000):
        yield (
            "odd fingerprint",
            GET_GROUP,
            control_pb2.GetGroupRequest(fingerprint=fingerprint).SerializeToString(),
        )
    yield "invalid utf-8 fingerprint", GET_GROUP, wire.field_bytes(1, rng.choice(INVALID_UTF8))


def huge_attributes(count: int = 100_000) -> bytes:
    """One ``exception`` event with ``count`` attributes (about 17 bytes each)."""
    attributes = [wire.key_value(b"exception.type", wire.any_string(b"Wide"))]
    attributes += [wire.key_value(b"k%d" % index, wire.any_int(index)) for index in range(count)]
    return wire.trace_request([wire.exception_event(attributes)])


def sized(size: int) -> bytes:
    """A valid trace request of ``size`` bytes or a few less (at least 100): one long message."""

    def body(padding: int) -> bytes:
        return wire.trace_request(
            [
                wire.exception_event(
                    [
                        wire.key_value(b"exception.type", wire.any_string(b"Big")),
                        wire.key_value(b"exception.message", wire.any_string(b"x" * padding)),
                    ]
                )
            ]
        )

    padding = size - len(body(0))
    while padding > 0 and len(body(padding)) > size:
        padding -= len(body(padding)) - size
    return body(max(0, padding))


def cases(seed: int, *, rounds: int | None = None) -> Iterator[Case]:
    """Fuzz cases for every method, round after round (``rounds`` None: forever)."""
    rng = random.Random(seed)
    seeds = valid_bodies()
    round_ = 0
    while rounds is None or round_ < rounds:
        round_ += 1
        for path in (*OTLP_METHODS, *CONTROL_METHODS):
            for kind, body in _mutations(rng, rng.choice(seeds[path])):
                yield kind, path, body
        yield from _otlp_specials(rng)
        yield from _control_specials(rng)


@dataclass
class FuzzReport:
    """What the fuzzed server answered."""

    calls: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    slowest_seconds: float = 0.0
    slowest: str = ""
    seconds: float = 0.0

    def add(
        self, kind: str, path: str, code: grpc.StatusCode, seconds: float, problem: str
    ) -> None:
        self.calls += 1
        self.outcomes[code.name] += 1
        if seconds > self.slowest_seconds:
            self.slowest_seconds, self.slowest = seconds, f"{kind} → {path.rsplit('/', 2)[-2]}"
        if problem:
            self.unexpected.append(f"{kind} → {path}: {problem}")

    def figures(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "calls per second": round(self.calls / self.seconds, 1) if self.seconds else 0,
            "outcomes": dict(sorted(self.outcomes.items())),
            "unexpected": len(self.unexpected),
            "slowest call (s)": round(self.slowest_seconds, 3),
            "slowest case": self.slowest,
        }


def call(
    channel: grpc.Channel,
    path: str,
    body: bytes,
    *,
    timeout: float,
    metadata: Sequence[tuple[str, str]] = (),
) -> tuple[grpc.StatusCode, str]:
    """Send one raw request; (status, problem) where problem is "" when the reply is fine."""
    try:
        if path == EXPORT_GROUPS:
            replies = list(
                channel.unary_stream(path)(body, timeout=timeout, metadata=tuple(metadata))
            )
        else:
            replies = [channel.unary_unary(path)(body, timeout=timeout, metadata=tuple(metadata))]
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        if code not in ALLOWED[path]:
            return code, f"{code.name}: {details}"
        return code, ""
    try:
        for reply in replies:
            RESPONSES[path].FromString(reply)
    except Exception as exc:
        return OK, f"unparsable reply: {exc}"
    return OK, ""


def fuzz(
    address: str,
    case_source: Iterator[Case],
    *,
    timeout: float = 10.0,
    until: Callable[[FuzzReport], bool] | None = None,
    metadata: Sequence[tuple[str, str]] = (),
) -> FuzzReport:
    """Send every case (or until ``until(report)``) with a deadline of ``timeout`` per call."""
    report = FuzzReport()
    started = time.monotonic()
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(address, options=options) as channel:
        for kind, path, body in case_source:
            call_started = time.monotonic()
            code, problem = call(channel, path, body, timeout=timeout, metadata=metadata)
            report.add(kind, path, code, time.monotonic() - call_started, problem)
            if until is not None and until(report):
                break
    report.seconds = time.monotonic() - started
    return report
