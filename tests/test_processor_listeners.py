"""The listener seam: what the processor hands its listeners, what it extracts for them,
fan-out in order, a failing listener isolated, shutdown once at stop."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from faultlens_collector.actions import ActionEngine, parse_config
from faultlens_collector.actions.listener import ActionListener
from faultlens_collector.causes.listener import RootCauseListener
from faultlens_collector.groups.model import Change
from faultlens_collector.processor.listeners import Interest, Listener, MultiListener
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from tests.processor_support import (
    METRICS_EXPORT,
    TRACE_EXPORT,
    failure_attributes,
    raw_call,
    running_processor,
    span,
    trace_request,
)


class Recorder(Listener):
    """Records every call."""

    def __init__(
        self, name: str, log: list[tuple[str, str]], interest: Interest | None = None
    ) -> None:
        self.name = name
        self.log = log
        self._interest = interest or Interest()
        self.commits: list[Sequence[Change]] = []
        self.successes: list[dict[str, Any]] = []
        self.metrics: list[Any] = []
        self.shutdowns = 0

    @property
    def interest(self) -> Interest:
        return self._interest

    def on_commit(self, changes: Sequence[Change]) -> None:
        self.log.append((self.name, "commit"))
        self.commits.append(changes)

    def on_success(self, key: Mapping[str, Any]) -> None:
        self.log.append((self.name, "success"))
        self.successes.append(dict(key))

    def on_metrics(self, request: Any) -> None:
        self.log.append((self.name, "metrics"))
        self.metrics.append(request)

    def shutdown(self) -> None:
        self.log.append((self.name, "shutdown"))
        self.shutdowns += 1


class Broken(Listener):
    def on_commit(self, changes: Sequence[Change]) -> None:
        raise RuntimeError("broken listener")

    def on_metrics(self, request: Any) -> None:
        raise RuntimeError("broken listener")

    def shutdown(self) -> None:
        raise RuntimeError("broken listener")


def test_interests_combine_into_what_any_listener_needs() -> None:
    log: list[tuple[str, str]] = []
    multi = MultiListener(
        [
            Recorder("a", log, Interest(success_keys=("span.name", "service.name"))),
            Recorder("b", log, Interest(attributes=True, success_keys=("tenant", "span.name"))),
            Recorder("c", log),
        ]
    )
    assert multi.interest == Interest(True, ("service.name", "span.name", "tenant"))
    assert MultiListener().interest == Interest()
    assert Listener.interest.fget(Recorder("d", log)) == Interest()  # type: ignore[attr-defined]


def test_fan_out_is_in_order_and_a_raising_listener_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[tuple[str, str]] = []
    first, last = Recorder("first", log), Recorder("last", log)
    multi = MultiListener([first, Broken(), last])
    with caplog.at_level(logging.ERROR):
        multi.on_commit([])
        multi.on_success({"service.name": "checkout"})
        multi.on_metrics("request")
        multi.shutdown()
    assert log == [
        ("first", "commit"),
        ("last", "commit"),
        ("first", "success"),
        ("last", "success"),
        ("first", "metrics"),
        ("last", "metrics"),
        ("first", "shutdown"),
        ("last", "shutdown"),
    ]
    failed = [record.getMessage() for record in caplog.records]
    assert any("failed on a commit" in text for text in failed)
    assert any("failed on shutdown" in text for text in failed)


def test_the_action_listener_takes_its_interest_from_the_rules() -> None:
    plain = ActionListener(ActionEngine())
    assert plain.interest == Interest()
    config = parse_config(
        {"halts": [{"name": "streak", "key": ["service.name", "tenant"], "consecutive": 3}]}
    )
    streaks = ActionListener(ActionEngine(config))
    assert streaks.interest == Interest(attributes=True, success_keys=("service.name", "tenant"))


def test_the_processor_hands_commits_successes_and_metrics_to_its_listeners(
    tmp_path: Path,
) -> None:
    log: list[tuple[str, str]] = []
    spy = Recorder(
        "spy", log, Interest(attributes=True, success_keys=("service.name", "span.name"))
    )
    failing = span(
        "charge",
        index=1,
        events=[failure_attributes("0123456789abcdef")],
        attributes={"tenant": "acme"},
    )
    request = trace_request([failing, span("lookup", index=2), span("lookup", index=3)])
    with running_processor(tmp_path, listeners=[spy]) as processor:
        assert processor.listeners is not None
        linking, engine_listener, watch, extra = processor.listeners.listeners
        assert isinstance(linking, RootCauseListener)  # before the engine: it holds alerts
        assert isinstance(engine_listener, ActionListener)
        assert watch is processor.group_watch  # WatchGroups follows commits too
        assert extra is spy
        assert raw_call(processor.address, TRACE_EXPORT, request.SerializeToString())[1] is None
        # Acknowledged after the listeners saw the commit: no waiting needed.
        ((change,),) = spy.commits
        assert change.group.fingerprint == "0123456789abcdef"
        assert change.created
        assert change.occurrences == 1
        # Attributes extracted because the spy asked (the engine, with no rules, did not).
        assert change.last.attributes["tenant"] == "acme"
        # One success key per distinct key of the request's successful spans.
        assert spy.successes == [{"service.name": "checkout", "span.name": "lookup"}]
        metrics = ExportMetricsServiceRequest()
        metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="m")
        assert raw_call(processor.address, METRICS_EXPORT, metrics.SerializeToString())[1] is None
        assert [
            request.resource_metrics[0].scope_metrics[0].metrics[0].name for request in spy.metrics
        ] == ["m"]
        assert spy.shutdowns == 0
    assert spy.shutdowns == 1
    assert log[-1] == ("spy", "shutdown")


def test_without_a_listener_asking_successes_and_attributes_are_not_read(tmp_path: Path) -> None:
    log: list[tuple[str, str]] = []
    spy = Recorder("spy", log)
    failing = span("charge", events=[failure_attributes()], attributes={"tenant": "acme"})
    request = trace_request([failing, span("lookup", index=2)])
    with running_processor(tmp_path, listeners=[spy]) as processor:
        assert raw_call(processor.address, TRACE_EXPORT, request.SerializeToString())[1] is None
    ((change,),) = spy.commits
    assert change.last.attributes == {}
    assert spy.successes == []


def test_a_raising_listener_never_fails_ingest_nor_the_action_engine(tmp_path: Path) -> None:
    request = trace_request([span(events=[failure_attributes()])])
    with running_processor(tmp_path, listeners=[Broken()]) as processor:
        assert raw_call(processor.address, TRACE_EXPORT, request.SerializeToString())[1] is None
        assert processor.store is not None
        assert processor.store.group_count == 1
