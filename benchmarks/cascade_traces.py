"""Multi-service traces with known root causes, as OTLP export requests.

A simulated shop of ten services (Python with the faultlens SDK, Python with plain
OpenTelemetry, Node.js with plain OpenTelemetry) serves requests through a call graph
with fan-out, retries and timeouts::

    gateway (node) ─► checkout (py) ─┬─► cart (py) ─► pricing (py)        retries x3, 300 ms timeout
                                     ├─► inventory (node) ─► warehouse (py, plain OTel)
                                     ├─► recommendations (py)             in parallel with cart
                                     ├─► payments (py) ─► fraud (py)
                                     └─► shipping (node)

Each trace draws a scenario: no failure, or a fault in one place that travels up the
call path as other exception types until a caller absorbs it (catches it, logs it as a
handled failure or not at all, answers anyway) or it reaches the gateway. Faults: a
pricing query timeout (504, retried three times by cart), pricing too slow (cart's
client times out: the timeout surfaces as ``UpstreamError`` raised ``from`` it), a
deadlock in the warehouse (a service not instrumented by faultlens: plain
``record_exception``, no ``failure.*`` attributes), bad data in fraud scoring, a
``TypeError`` in shipping (Node), an ``AttributeError`` in checkout itself.

**Noise** — about 10% of all failures — is unrelated to the cascades: handled lookups
in recommendations (in parallel with the cascade, on a span that ends OK), a feature
flag lookup checkout logs before it calls anything, and an escaped cache miss inside
checkout that an enclosing span catches (the only kind that needs the OK span to be
seen: when that span is not sent it looks like a cause); plus traces with nothing but
noise.

**What the processor receives.** Per trace and service, either every span (an OTLP
exporter to the processor, or a collector forwarding everything) or only the spans
that carry failures (the ``faultlens`` exporter: intermediate spans missing). Every
service batches its ended spans like the SDK's ``BatchSpanProcessor`` and flushes on
its own schedule, so one trace's spans arrive in several requests, out of order, the
root often after its symptoms.

The truth (:class:`Truth`) records, per trace, the root failure's kind and for every
symptom the kind of the root that caused it; noise has no cause. Kinds are groups:
each has its own fingerprint (sent by the faultlens SDK, computed by the processor
from the stack trace for the others).
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from bench_processor import _kv
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

MS = 1_000_000
#: Simulated time 0, as Unix ns (the times spans report are from here on).
EPOCH = 1_700_000_000 * 1_000_000_000
FAULTLENS, PLAIN_PYTHON, NODE = "faultlens", "python", "node"
LANGUAGES = {
    "gateway": NODE,
    "checkout": FAULTLENS,
    "cart": FAULTLENS,
    "pricing": FAULTLENS,
    "inventory": NODE,
    "warehouse": PLAIN_PYTHON,
    "recommendations": FAULTLENS,
    "payments": FAULTLENS,
    "fraud": FAULTLENS,
    "shipping": NODE,
}


@dataclass(frozen=True)
class Kind:
    """One defect: a failure group."""

    name: str
    service: str
    exception_type: str
    message: str
    category: str
    frames: tuple[tuple[str, str], ...]
    cause: Kind | None = None  # the exception it is raised from (same service)

    @property
    def language(self) -> str:
        return LANGUAGES[self.service]

    @property
    def fingerprint(self) -> str:
        """What the faultlens SDK would send (other SDKs send none)."""
        return hashlib.sha256(self.name.encode()).hexdigest()[:16]

    def stacktrace(self) -> str:
        if self.language == NODE:
            lines = [f"{self.exception_type}: {self.message}"]
            lines += [
                f"    at {function} (/srv/{self.service}/src/{module}.js:{10 + i}:{5 + i})"
                for i, (module, function) in enumerate(self.frames)
            ]
            return "\n".join(lines) + "\n"
        text = ""
        if self.cause is not None:
            text = self.cause.stacktrace() + (
                "\nThe above exception was the direct cause of the following exception:\n\n"
            )
        lines = ["Traceback (most recent call last):"]
        for i, (module, function) in enumerate(self.frames):
            lines.append(f'  File "/srv/{self.service}/{module}.py", line {20 + i}, in {function}')
            lines.append(f"    {function}(request)")
        lines.append(f"{self.exception_type}: {self.message}")
        return text + "\n".join(lines) + "\n"


def _kind(
    name: str,
    service: str,
    exception_type: str,
    message: str,
    category: str,
    *frames: str,
    cause: Kind | None = None,
) -> Kind:
    pairs = tuple(tuple(frame.split(":")) for frame in frames)
    return Kind(name, service, exception_type, message, category, pairs, cause)  # type: ignore[arg-type]


# --- the defects -------------------------------------------------------------------------
PRICING_TIMEOUT = _kind(
    "pricing.QueryTimeout",
    "pricing",
    "pricing.db.QueryTimeout",
    "canceling statement due to statement timeout",
    "timeout",
    "api:quote",
    "db:fetch_rates",
    "db:execute",
)
CART_HTTP = _kind(
    "cart.HTTPError",
    "cart",
    "requests.exceptions.HTTPError",
    "504 Server Error: Gateway Timeout for url: http://pricing/quote",
    "dependency",
    "api:add_item",
    "pricing_client:quote",
    "pricing_client:raise_for_status",
)
CART_UPSTREAM_HTTP = _kind(
    "cart.UpstreamError/http",
    "cart",
    "cart.errors.UpstreamError",
    "pricing unavailable",
    "dependency",
    "api:add_item",
    "pricing_client:quote_with_retries",
    cause=CART_HTTP,
)
CART_READ_TIMEOUT = _kind(
    "cart.ReadTimeout",
    "cart",
    "requests.exceptions.ReadTimeout",
    "HTTPConnectionPool(host='pricing', port=80): Read timed out.",
    "timeout",
    "api:add_item",
    "pricing_client:quote",
    "pricing_client:send",
)
CART_UPSTREAM_TIMEOUT = _kind(
    "cart.UpstreamError/timeout",
    "cart",
    "cart.errors.UpstreamError",
    "pricing unavailable",
    "dependency",
    "api:add_item",
    "pricing_client:quote_with_retries",
    cause=CART_READ_TIMEOUT,
)
CART_STALE_PRICE = {
    cause.name: _kind(
        f"cart.StalePrice/{cause.name}",
        "cart",
        "cart.errors.StalePrice",
        "using a cached price",
        "dependency",
        "api:add_item",
        "prices:fallback",
        cause=cause,
    )
    for cause in (CART_HTTP, CART_READ_TIMEOUT)
}
WAREHOUSE_DEADLOCK = _kind(
    "warehouse.Deadlock",
    "warehouse",
    "psycopg.errors.DeadlockDetected",
    "deadlock detected",
    "unknown",
    "stock:reserve",
    "db:update_rows",
)
INVENTORY_ERROR = _kind(
    "inventory.Error",
    "inventory",
    "Error",
    "warehouse unavailable",
    "dependency",
    "routes/stock:reserve",
    "clients/warehouse:post",
)
FRAUD_VALUE = _kind(
    "fraud.ValueError",
    "fraud",
    "ValueError",
    "could not convert string to float: 'n/a'",
    "value",
    "api:score",
    "model:features",
    "model:parse_amount",
)
PAYMENTS_ERROR = _kind(
    "payments.PaymentError",
    "payments",
    "payments.errors.PaymentError",
    "fraud check failed",
    "dependency",
    "api:charge",
    "fraud_client:score",
)
SHIPPING_TYPE = _kind(
    "shipping.TypeError",
    "shipping",
    "TypeError",
    "Cannot read properties of undefined (reading 'zip')",
    "type",
    "routes/quote:handler",
    "rates:forAddress",
)
CHECKOUT_ATTRIBUTE = _kind(
    "checkout.AttributeError",
    "checkout",
    "AttributeError",
    "'NoneType' object has no attribute 'items'",
    "attribute",
    "api:place_order",
    "orders:total",
)
CHECKOUT_FAILED = {
    dependency: _kind(
        f"checkout.Failed@{dependency}",
        "checkout",
        "checkout.errors.CheckoutFailed",
        f"{dependency} failed",
        "dependency",
        "api:place_order",
        f"orders:call_{dependency}",
    )
    for dependency in ("cart", "inventory", "payments", "shipping")
}
CHECKOUT_DEGRADED = _kind(
    "checkout.Degraded",
    "checkout",
    "checkout.errors.Degraded",
    "shipping quote unavailable, using the flat rate",
    "dependency",
    "api:place_order",
    "orders:shipping_fallback",
)
GATEWAY_ERROR = _kind(
    "gateway.AxiosError",
    "gateway",
    "AxiosError",
    "Request failed with status code 500",
    "dependency",
    "routes/checkout:post",
    "node_modules/axios/lib/core/settle:settle",
)
# Noise.
RECOMMENDATIONS_KEY = _kind(
    "recommendations.KeyError",
    "recommendations",
    "KeyError",
    "'user-segment'",
    "lookup",
    "api:recommend",
    "segments:lookup",
)
RECOMMENDATIONS_TIMEOUT = _kind(
    "recommendations.Timeout",
    "recommendations",
    "recommendations.model.ModelTimeout",
    "model did not answer",
    "timeout",
    "api:recommend",
    "model:predict",
)
CHECKOUT_NO_RECOMMENDATIONS = _kind(
    "checkout.NoRecommendations",
    "checkout",
    "checkout.errors.NoRecommendations",
    "recommendations unavailable, showing none",
    "dependency",
    "api:place_order",
    "orders:recommendations_fallback",
)
CHECKOUT_FLAG = _kind(
    "checkout.FlagLookupError",
    "checkout",
    "checkout.flags.FlagLookupError",
    "flag new-tax-rules not found",
    "lookup",
    "api:place_order",
    "flags:get",
)
CHECKOUT_CACHE_MISS = _kind(
    "checkout.CacheMiss",
    "checkout",
    "checkout.cache.CacheMiss",
    "profile not cached",
    "lookup",
    "profiles:load",
    "cache:get",
)
NOISE_KINDS = frozenset(
    {
        RECOMMENDATIONS_KEY.name,
        RECOMMENDATIONS_TIMEOUT.name,
        CHECKOUT_NO_RECOMMENDATIONS.name,
        CHECKOUT_FLAG.name,
        CHECKOUT_CACHE_MISS.name,
    }
)


@dataclass
class SimFailure:
    kind: Kind
    time: int
    handled: bool | None
    root: SimFailure | None = None  # the root cause (None for a root and for noise)
    noise: bool = False


@dataclass
class SimSpan:
    span_id: bytes
    parent: bytes
    service: str
    name: str
    kind: int
    start: int
    end: int = 0
    error: bool = False
    failures: list[SimFailure] = field(default_factory=list)


@dataclass
class Truth:
    """What really happened in one trace."""

    trace_id: bytes
    scenario: str
    root: str | None  # the kind of the root of the cascade (None: no cascade)
    #: (root kind, symptom kind) per symptom failure.
    symptoms: list[tuple[str, str]] = field(default_factory=list)
    failures: list[SimFailure] = field(default_factory=list)


class _Outcome:
    """What a call returned to its caller."""

    def __init__(
        self, ok: bool, end: int, cause: SimFailure | None = None, timed_out: bool = False
    ) -> None:
        self.ok, self.end, self.cause, self.timed_out = ok, end, cause, timed_out


class _Trace:
    """Simulates one request through the shop."""

    def __init__(
        self, rng: random.Random, start: int, scenario: str, absorb: float, noise: float
    ) -> None:
        self.rng = rng
        self.trace_id = rng.randbytes(16)
        self.spans: list[SimSpan] = []
        self.scenario = scenario
        self.absorb = absorb
        self.noise = noise
        self.start = start

    def span(
        self, parent: SimSpan | None, service: str, name: str, kind: int, start: int
    ) -> SimSpan:
        span = SimSpan(
            self.rng.randbytes(8), parent.span_id if parent else b"", service, name, kind, start
        )
        self.spans.append(span)
        return span

    def fail(
        self,
        span: SimSpan,
        kind: Kind,
        when: int,
        *,
        escaped: bool,
        root: SimFailure | None = None,
        noise: bool = False,
    ) -> SimFailure:
        """Record a failure; an escaped one makes its span ERROR. Only the faultlens SDK
        says whether the program handled it."""
        handled = (not escaped) if kind.language == FAULTLENS else None
        failure = SimFailure(kind, when, handled, root, noise)
        span.failures.append(failure)
        span.error = span.error or escaped
        return failure

    def ms(self, low: float, high: float) -> int:
        return int(self.rng.uniform(low, high) * MS)

    # --- the call graph -------------------------------------------------------------------
    def call(self, parent: SimSpan, service: str, start: int, timeout: int = 0) -> _Outcome:
        """A client span in the caller, the callee's server span, the callee's work."""
        client = self.span(parent, parent.service, f"POST {service}", Span.SPAN_KIND_CLIENT, start)
        server = self.span(
            client, service, f"POST /{service}", Span.SPAN_KIND_SERVER, start + self.ms(0.2, 1)
        )
        outcome = getattr(self, f"serve_{service}")(server)
        server.end = outcome.end
        if timeout and server.end - start > timeout:
            client.end = start + timeout
            client.error = True
            return _Outcome(False, client.end, None, timed_out=True)
        client.end = server.end + self.ms(0.2, 1)
        client.error = not outcome.ok
        return _Outcome(outcome.ok, client.end, outcome.cause)

    def root_span(self) -> None:
        gateway = self.span(None, "gateway", "POST /checkout", Span.SPAN_KIND_SERVER, self.start)
        if self.scenario == "noise-only":
            outcome = self.call(gateway, "recommendations", self.start + self.ms(1, 2))
            gateway.end = outcome.end + self.ms(1, 2)
            return
        outcome = self.call(gateway, "checkout", self.start + self.ms(1, 2))
        gateway.end = outcome.end + self.ms(1, 3)
        if not outcome.ok:
            self.fail(
                gateway,
                GATEWAY_ERROR,
                gateway.end - self.ms(0.3, 0.8),
                escaped=True,
                root=outcome.cause,
            )

    def serve_checkout(self, span: SimSpan) -> _Outcome:
        now = span.start + self.ms(1, 3)
        if self.rng.random() < self.noise:
            self.fail(span, CHECKOUT_FLAG, now, escaped=False, noise=True)
            now += self.ms(0.5, 1)
        if self.rng.random() < self.noise / 2:
            # An escaped cache miss in an internal span that an enclosing span catches.
            enrich = self.span(span, "checkout", "enrich", Span.SPAN_KIND_INTERNAL, now)
            load = self.span(
                enrich, "checkout", "load_profile", Span.SPAN_KIND_INTERNAL, now + self.ms(0.1, 0.3)
            )
            load.end = load.start + self.ms(1, 3)
            self.fail(
                load, CHECKOUT_CACHE_MISS, load.end - self.ms(0.1, 0.2), escaped=True, noise=True
            )
            enrich.end = load.end + self.ms(0.2, 0.5)
            now = enrich.end + self.ms(0.2, 0.5)
        # cart and inventory in parallel, recommendations beside them.
        cart = self.call(span, "cart", now + self.ms(0.1, 0.5))
        inventory = self.call(span, "inventory", now + self.ms(0.1, 0.5))
        if self.rng.random() < 0.5 or self.scenario == "noise-only":
            recommendations = self.call(span, "recommendations", now + self.ms(0.1, 0.5))
            if not recommendations.ok:  # checkout's fallback: no recommendations, logged
                self.fail(
                    span,
                    CHECKOUT_NO_RECOMMENDATIONS,
                    recommendations.end + self.ms(0.1, 0.3),
                    escaped=False,
                    root=recommendations.cause,
                    noise=True,
                )
        now = max(cart.end, inventory.end) + self.ms(0.5, 2)
        for name, outcome in (("cart", cart), ("inventory", inventory)):
            if not outcome.ok:
                return self.escalate(span, name, outcome, now)
        if self.scenario == "checkout":
            self.fail(span, CHECKOUT_ATTRIBUTE, now, escaped=True)
            return _Outcome(False, now + self.ms(0.5, 1), span.failures[-1])
        payments = self.call(span, "payments", now)
        now = payments.end + self.ms(0.5, 1)
        if not payments.ok:
            return self.escalate(span, "payments", payments, now)
        shipping = self.call(span, "shipping", now)
        now = shipping.end + self.ms(0.5, 1)
        if not shipping.ok:
            if self.rng.random() < self.absorb:  # the flat rate will do: logged and absorbed
                self.fail(span, CHECKOUT_DEGRADED, now, escaped=False, root=shipping.cause)
                return _Outcome(True, now + self.ms(1, 2))
            return self.escalate(span, "shipping", shipping, now)
        return _Outcome(True, now + self.ms(1, 2))

    def escalate(self, span: SimSpan, dependency: str, outcome: _Outcome, now: int) -> _Outcome:
        failure = self.fail(
            span, CHECKOUT_FAILED[dependency], now, escaped=True, root=outcome.cause
        )
        return _Outcome(False, now + self.ms(0.5, 1), failure.root)

    def serve_cart(self, span: SimSpan) -> _Outcome:
        now = span.start + self.ms(0.5, 1)
        root: SimFailure | None = None
        attempt_kind = None
        for _ in range(3):
            outcome = self.call(span, "pricing", now, timeout=300 * MS)
            now = outcome.end + self.ms(0.2, 0.5)
            if outcome.ok:
                return _Outcome(True, now + self.ms(1, 2))
            if outcome.timed_out:
                attempt_kind = CART_READ_TIMEOUT
                failure = self.fail(span, CART_READ_TIMEOUT, now, escaped=False, root=root)
                root = root or failure
            else:
                attempt_kind = CART_HTTP
                self.fail(span, CART_HTTP, now, escaped=False, root=outcome.cause)
                root = root or outcome.cause
            now += self.ms(5, 15)  # backoff
        if self.rng.random() < self.absorb:  # a cached price, raised and logged: absorbed
            assert attempt_kind is not None
            self.fail(span, CART_STALE_PRICE[attempt_kind.name], now, escaped=False, root=root)
            return _Outcome(True, now + self.ms(1, 2))
        upstream = (
            CART_UPSTREAM_TIMEOUT if attempt_kind is CART_READ_TIMEOUT else CART_UPSTREAM_HTTP
        )
        self.fail(span, upstream, now, escaped=True, root=root)
        return _Outcome(False, now + self.ms(0.5, 1), root)

    def serve_pricing(self, span: SimSpan) -> _Outcome:
        if self.scenario == "pricing-slow":
            return _Outcome(True, span.start + self.ms(320, 400))
        if self.scenario == "pricing":
            when = span.start + self.ms(20, 40)
            failure = self.fail(span, PRICING_TIMEOUT, when, escaped=True)
            return _Outcome(False, when + self.ms(0.3, 1), failure)
        return _Outcome(True, span.start + self.ms(2, 8))

    def serve_inventory(self, span: SimSpan) -> _Outcome:
        # cached stock when the warehouse fails: Node's code swallows it silently
        return self.relay(span, "warehouse", INVENTORY_ERROR, absorb=self.absorb)

    def serve_warehouse(self, span: SimSpan) -> _Outcome:
        return self.leaf(span, "warehouse", WAREHOUSE_DEADLOCK, (5, 15), (3, 10))

    def leaf(
        self,
        span: SimSpan,
        scenario: str,
        kind: Kind,
        failing_ms: tuple[float, float],
        working_ms: tuple[float, float],
    ) -> _Outcome:
        """A service that calls nothing: it fails (escaped) in its own scenario."""
        if self.scenario == scenario:
            when = span.start + self.ms(*failing_ms)
            failure = self.fail(span, kind, when, escaped=True)
            return _Outcome(False, when + self.ms(0.2, 1), failure)
        return _Outcome(True, span.start + self.ms(*working_ms))

    def relay(self, span: SimSpan, dependency: str, kind: Kind, *, absorb: float) -> _Outcome:
        """A service that calls one other and raises ``kind`` when it fails (or, with
        probability ``absorb``, answers anyway and records nothing)."""
        outcome = self.call(span, dependency, span.start + self.ms(0.5, 2))
        now = outcome.end + self.ms(0.5, 1)
        if outcome.ok or self.rng.random() < absorb:
            return _Outcome(True, now + self.ms(0.5, 3))
        self.fail(span, kind, now, escaped=True, root=outcome.cause)
        return _Outcome(False, now + self.ms(0.3, 1), outcome.cause)

    def serve_recommendations(self, span: SimSpan) -> _Outcome:
        now = span.start + self.ms(1, 5)
        if self.scenario == "noise-only" or self.rng.random() < self.noise:
            self.fail(span, RECOMMENDATIONS_KEY, now, escaped=False, noise=True)
        elif self.rng.random() < self.noise:
            # Escaped (a 500) — checkout does without recommendations: tolerated.
            failure = self.fail(span, RECOMMENDATIONS_TIMEOUT, now, escaped=True, noise=True)
            return _Outcome(False, now + self.ms(0.2, 0.5), failure)
        return _Outcome(True, now + self.ms(1, 3))

    def serve_payments(self, span: SimSpan) -> _Outcome:
        return self.relay(span, "fraud", PAYMENTS_ERROR, absorb=0.0)

    def serve_fraud(self, span: SimSpan) -> _Outcome:
        return self.leaf(span, "fraud", FRAUD_VALUE, (2, 6), (2, 6))

    def serve_shipping(self, span: SimSpan) -> _Outcome:
        return self.leaf(span, "shipping", SHIPPING_TYPE, (1, 4), (1, 4))


SCENARIOS = {
    "clean": 0.30,
    "pricing": 0.15,
    "pricing-slow": 0.10,
    "warehouse": 0.12,
    "fraud": 0.10,
    "shipping": 0.10,
    "checkout": 0.08,
    "noise-only": 0.05,
}


def _truth(trace: _Trace) -> Truth:
    """The trace's root: the root of the symptom highest up the call tree (what took the
    request down), then of the most symptoms, then the earliest."""
    failures = [failure for span in trace.spans for failure in span.failures]
    symptoms = [
        (failure.root.kind.name, failure.kind.name)
        for failure in failures
        if failure.root is not None and failure.root.kind.name != failure.kind.name
    ]
    depth: dict[bytes, int] = {}
    for span in trace.spans:  # parents come before their children
        depth[span.span_id] = depth.get(span.parent, -1) + 1
    reach: dict[int, tuple[int, int, int, SimFailure]] = {}
    for span in trace.spans:
        for failure in span.failures:
            root = failure.root
            if root is None or root.kind.name == failure.kind.name:
                continue
            best, count, _, _ = reach.get(id(root), (depth[span.span_id], 0, root.time, root))
            reach[id(root)] = (min(best, depth[span.span_id]), count - 1, root.time, root)
    top = min(reach.values(), key=lambda item: item[:3])[3] if reach else None
    return Truth(trace.trace_id, trace.scenario, top.kind.name if top else None, symptoms, failures)


@dataclass
class Workload:
    """Generated traces, their truth, and the requests that carry them."""

    truths: list[Truth]
    #: (send time in ns since the start, serialized ExportTraceServiceRequest).
    requests: list[tuple[int, bytes]]
    spans: int
    failures: int

    @property
    def noise_share(self) -> float:
        noise = sum(1 for truth in self.truths for failure in truth.failures if failure.noise)
        return noise / max(self.failures, 1)


def generate(
    traces: int,
    *,
    seed: int = 16,
    rate: float = 200.0,
    absorb: float = 0.15,
    noise: float = 0.12,
    failing_only: float = 0.5,
    flush_ms: tuple[float, float] = (100.0, 1500.0),
    skew_ms: float = 0.5,
) -> Workload:
    """``traces`` traces starting ``rate`` per second (simulated time).

    ``absorb``: chance a caller absorbs a failure where it can; ``noise``: chance of
    each noise failure (the default makes about 10% of all failures noise);
    ``failing_only``: chance a service sends a trace's failing spans only (the
    ``faultlens`` exporter); ``flush_ms``: range of each service's export interval (its
    ``BatchSpanProcessor`` schedule delay); ``skew_ms``: each service's clock is off by
    up to this much (the times it reports are shifted).
    """
    rng = random.Random(seed)
    offsets = {service: int(rng.uniform(-skew_ms, skew_ms) * MS) for service in LANGUAGES}
    names, weights = zip(*SCENARIOS.items(), strict=True)
    truths: list[Truth] = []
    ended: dict[str, list[tuple[int, bytes, SimSpan]]] = defaultdict(list)
    spans = failures = 0
    for number in range(traces):
        start = int(number / rate * 1e9) + rng.randrange(0, int(1e9 / rate))
        trace = _Trace(rng, start, rng.choices(names, weights)[0], absorb, noise)
        trace.root_span()
        truths.append(_truth(trace))
        sparse = {service: rng.random() < failing_only for service in LANGUAGES}
        for span in trace.spans:
            if sparse[span.service] and not span.failures:
                continue
            spans += 1
            failures += len(span.failures)
            ended[span.service].append((span.end, trace.trace_id, span))
    requests = [
        request
        for service, queue in ended.items()
        for request in _batches(
            rng, service, sorted(queue, key=lambda item: item[0]), flush_ms, offsets[service]
        )
    ]
    requests.sort(key=lambda item: item[0])
    return Workload(truths, requests, spans, failures)


def _batches(
    rng: random.Random,
    service: str,
    queue: list[tuple[int, bytes, SimSpan]],
    flush_ms: tuple[float, float],
    offset: int,
) -> Iterator[tuple[int, bytes]]:
    """The service's export requests: what ended before each flush, at most 512 spans."""
    interval = int(rng.uniform(*flush_ms) * MS)
    flush = rng.randrange(interval)
    batch: list[tuple[bytes, SimSpan]] = []
    for end, trace_id, span in queue:
        while end > flush:
            if batch:
                yield flush, _request(service, batch, offset)
                batch = []
            flush += interval
        batch.append((trace_id, span))
        if len(batch) >= 512:
            yield end, _request(service, batch, offset)
            batch = []
    if batch:
        yield flush, _request(service, batch, offset)


def _event(failure: SimFailure, offset: int) -> Span.Event:
    kind = failure.kind
    attributes = {
        "exception.type": kind.exception_type,
        "exception.message": kind.message,
        "exception.stacktrace": kind.stacktrace(),
    }
    if kind.language == FAULTLENS:
        attributes.update(
            {
                "failure.fingerprint": kind.fingerprint,
                "failure.category": kind.category,
                "failure.severity": "medium" if failure.handled else "high",
                "failure.handled": bool(failure.handled),
                "failure.count": 1,
                "failure.source": "auto",
            }
        )
    return Span.Event(
        name="exception",
        time_unix_nano=EPOCH + failure.time + offset,
        attributes=[_kv(key, value) for key, value in attributes.items()],
    )


def _request(service: str, batch: list[tuple[bytes, SimSpan]], offset: int) -> bytes:
    language = {NODE: "nodejs", FAULTLENS: "python", PLAIN_PYTHON: "python"}[LANGUAGES[service]]
    resource = Resource(
        attributes=[
            _kv("service.name", service),
            _kv("telemetry.sdk.language", language),
            _kv("telemetry.sdk.name", "opentelemetry"),
        ]
    )
    spans = [
        Span(
            trace_id=trace_id,
            span_id=span.span_id,
            parent_span_id=span.parent,
            name=span.name,
            kind=span.kind,  # type: ignore[arg-type]
            start_time_unix_nano=EPOCH + span.start + offset,
            end_time_unix_nano=EPOCH + span.end + offset,
            attributes=[_kv("http.request.method", "POST")],
            events=[_event(failure, offset) for failure in span.failures],
            status=Status(
                code=Status.STATUS_CODE_ERROR if span.error else Status.STATUS_CODE_UNSET
            ),
        )
        for trace_id, span in batch
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )
    return request.SerializeToString()
