"""Alert once (causes/alerting.py): held new-group alerts, cascade alerts, the alert window."""

from __future__ import annotations

from faultlens_collector.causes.alerting import Cascade, CascadeAlerts
from faultlens_collector.causes.window import TraceWindow, WindowSettings

from tests.causes_support import Failure, at, span
from tests.test_causes_linking import cascade


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, object]] = []
        self.dropped: list[str] = []  # held alerts forgotten (told by a cascade alert)

    def new_failure(self, fingerprint: str) -> None:
        self.sent.append(("new_failure", fingerprint))

    def cascade(self, cascade: Cascade) -> None:
        self.sent.append(("cascade", cascade))

    def drop(self, fingerprint: str) -> None:
        self.dropped.append(fingerprint)


def setup() -> tuple[Clock, TraceWindow, CascadeAlerts, Sink]:
    clock = Clock()
    window = TraceWindow(WindowSettings(settle_seconds=5, window_seconds=30), clock=clock)
    sink = Sink()
    return clock, window, CascadeAlerts(window, sink, alert_window_seconds=600, clock=clock), sink


def trace(number: int) -> bytes:
    return number.to_bytes(16, "big")


def settle(clock: Clock, window: TraceWindow, alerts: CascadeAlerts) -> None:
    clock.now += 6
    alerts.on_decisions(window.collect())


def test_a_cascade_alerts_once_for_its_root() -> None:
    clock, window, alerts, sink = setup()
    for fingerprint in ("checkout", "cart", "pricing"):  # all three new, in any order
        alerts.hold(fingerprint, trace(1))
        assert alerts.held(fingerprint)
    window.add(trace(1), cascade())
    assert sink.sent == []  # held until the trace settles
    settle(clock, window, alerts)
    ((kind, sent),) = sink.sent
    assert kind == "cascade"
    assert sent == Cascade(
        root="pricing",
        root_service="pricing",
        symptoms=("cart", "checkout"),
        services=("cart", "checkout"),
        new=("cart", "checkout"),
    )
    assert not alerts.held("cart")
    assert sorted(sink.dropped) == ["cart", "checkout", "pricing"]  # the cascade told


def test_a_new_symptom_of_a_root_that_alerted_stays_quiet_within_the_window() -> None:
    clock, window, alerts, sink = setup()
    alerts.hold("pricing", trace(1))
    alerts.hold("cart", trace(1))
    window.add(trace(1), cascade())
    settle(clock, window, alerts)
    assert [kind for kind, _ in sink.sent] == ["cascade"]
    # A new symptom group (checkout's failure seen for the first time) in a later trace.
    alerts.hold("checkout", trace(2))
    window.add(trace(2), cascade())
    settle(clock, window, alerts)
    assert [kind for kind, _ in sink.sent] == ["cascade"]
    assert sink.dropped[-1] == "checkout"  # its held new_failure alert is forgotten
    # After the alert window, the root alerts again when it takes down something new.
    clock.now += 600
    alerts.hold("checkout-2", trace(3))
    spans = cascade()
    spans[0] = span(1, None, 0, 100, Failure("checkout-2", at(80), service="checkout"))
    window.add(trace(3), spans)
    settle(clock, window, alerts)
    assert [kind for kind, _ in sink.sent] == ["cascade", "cascade"]
    assert sink.sent[-1][1].new == ("checkout-2",)  # type: ignore[union-attr]


def test_an_old_root_alerts_for_a_new_symptom_instead_of_the_symptom() -> None:
    clock, window, alerts, sink = setup()
    alerts.hold("checkout", trace(1))  # pricing and cart are old groups
    window.add(trace(1), cascade())
    settle(clock, window, alerts)
    ((kind, sent),) = sink.sent
    assert kind == "cascade"
    assert sent.root == "pricing"  # type: ignore[attr-defined]
    assert sent.new == ("checkout",)  # type: ignore[attr-defined]


def test_a_lone_failure_alerts_as_a_new_failure_once_settled() -> None:
    clock, window, alerts, sink = setup()
    alerts.hold("alone", trace(1))
    window.add(trace(1), [span(1, None, 0, 10, Failure("alone", at(5)))])
    clock.now += 4
    alerts.on_decisions(window.collect())
    assert sink.sent == []
    settle(clock, window, alerts)
    assert sink.sent == [("new_failure", "alone")]


def test_held_alerts_go_out_at_shutdown() -> None:
    _, window, alerts, sink = setup()
    alerts.hold("alone", trace(1))
    alerts.hold("spanless", trace(2))  # its spans never arrived
    window.add(trace(1), [span(1, None, 0, 10, Failure("alone", at(5)))])
    alerts.on_decisions(window.collect(everything=True))
    assert sorted(sink.sent) == [("new_failure", "alone"), ("new_failure", "spanless")]
