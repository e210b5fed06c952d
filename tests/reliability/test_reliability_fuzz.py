"""Malformed input on every service of a real ``faultlens serve``: no crash, no hang,
every reply a proper status, and the server still answers normally afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control.client import ControlClient, ControlError
from faultlens_collector.groups.model import MAX_GROUP_COUNT, Change, Occurrence
from faultlens_collector.groups.writer import BatchWriter
from faultlens_collector.ingest.extract import MAX_COUNT, attributes_of
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.processor_support import (
    TRACE_EXPORT,
    ServeProcess,
    failure_attributes,
    occurrence,
    raw_call,
    running_processor,
    span,
    sqlite_group_store,
    trace_request,
)
from tests.reliability import fuzz, wire
from tests.reliability.harness import report, server_output

MAX_REQUEST_MIB = 4
ROUNDS = 25


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    store = tmp_path_factory.mktemp("fuzz") / "store.db"
    with ServeProcess(store, "--max-request-mib", str(MAX_REQUEST_MIB)) as process:
        yield process


def _answers_normally(serve: ServeProcess, fingerprint: str) -> None:
    request = trace_request([span(events=[failure_attributes(fingerprint, failure_count=2)])])
    body, error = raw_call(serve.address, TRACE_EXPORT, request.SerializeToString())
    assert error is None, error
    assert not ExportTraceServiceResponse.FromString(body).HasField("partial_success")
    with ControlClient(serve.address, timeout=10) as client:
        assert client.get_group(fingerprint).count >= 2
    assert serve.process is not None
    assert serve.process.poll() is None


@pytest.mark.slow
def test_fuzzed_requests_get_proper_statuses_and_the_server_keeps_serving(
    serve: ServeProcess,
) -> None:
    result = fuzz.fuzz(serve.address, fuzz.cases(seed=20261123, rounds=ROUNDS), timeout=10)
    report("fuzz", result.figures())
    assert result.unexpected == []
    assert result.calls >= ROUNDS * 70
    assert result.slowest_seconds < 5
    _answers_normally(serve, "00000000000fa22e")
    assert "Traceback" not in server_output(serve)


def test_a_hundred_thousand_attributes_on_one_event(serve: ServeProcess) -> None:
    body = fuzz.huge_attributes(100_000)
    with grpc.insecure_channel(serve.address) as channel:
        code, problem = fuzz.call(channel, TRACE_EXPORT, body, timeout=30)
    assert (code, problem) == (grpc.StatusCode.OK, "")
    with ControlClient(serve.address, timeout=10) as client:
        # Every group of the service, not a page: the fuzzing before stores many (its event
        # time, 1 ns, sorts it last).
        request = control_pb2.ExportGroupsRequest(filter=control_pb2.GroupFilter(services=["fuzz"]))
        groups = list(client.export_groups(request))
    assert any(group.exception_type == "Wide" for group in groups)
    _answers_normally(serve, "00000000000a771b")


def test_requests_just_under_and_just_over_the_size_limit(serve: ServeProcess) -> None:
    limit = MAX_REQUEST_MIB * 1024 * 1024
    options = [("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(serve.address, options=options) as channel:
        under = fuzz.call(channel, TRACE_EXPORT, fuzz.sized(limit), timeout=30)
        over = fuzz.call(channel, TRACE_EXPORT, fuzz.sized(limit + 64), timeout=30)
    assert under == (grpc.StatusCode.OK, "")
    assert over == (grpc.StatusCode.RESOURCE_EXHAUSTED, "")
    _answers_normally(serve, "0000000000051ze0".replace("z", "e"))
    assert "Traceback" not in server_output(serve)


# Defects the fuzzer found, one test each.


@pytest.mark.parametrize("path", fuzz.CONTROL_METHODS)
def test_a_control_request_that_does_not_decode_is_invalid_argument(
    serve: ServeProcess, path: str
) -> None:
    with grpc.insecure_channel(serve.address) as channel:
        for body in (b"\xff\xff\xff", b"\x0a\x05ab", wire.field_bytes(1, b"\xc3(")):
            assert fuzz.call(channel, path, body, timeout=5) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "",
            )


def test_control_arguments_beyond_64_bits_are_answered_not_crashed(serve: ServeProcess) -> None:
    with ControlClient(serve.address, timeout=10) as client:
        for token in ("9" * 19, "9" * 40, "\u00b2", "\u0663"):
            with pytest.raises(ControlError) as caught:
                client.list_groups(control_pb2.ListGroupsRequest(page_token=token))
            assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        far = control_pb2.GroupFilter(since_unix_nano=(1 << 64) - 1)
        listed = client.list_groups(control_pb2.ListGroupsRequest(filter=far)).groups
        exported = list(client.export_groups(control_pb2.ExportGroupsRequest(filter=far)))
    # Only groups seen at the very last representable time can match.
    for group in (*listed, *exported):
        assert group.last_seen_unix_nano == fuzz.INT64_MAX


def test_failure_times_beyond_64_bits_fall_back_instead_of_failing_the_commit(
    tmp_path: Path,
) -> None:
    now = time.time_ns()
    far = (1 << 64) - 1
    request = trace_request(
        [span(events=[failure_attributes("00000000000071e0")], time_unix_nano=10_000)]
    )
    request.resource_spans[0].scope_spans[0].spans[0].events[0].time_unix_nano = far
    request.resource_spans[0].scope_spans[0].spans[0].end_time_unix_nano = far
    with running_processor(tmp_path) as processor:
        _, error = raw_call(processor.address, TRACE_EXPORT, request.SerializeToString())
        assert error is None
        with ControlClient(processor.address) as client:
            group = client.get_group("00000000000071e0")
    assert group.count == 1
    assert now <= group.first_seen_unix_nano <= time.time_ns()


def test_a_failure_whose_type_and_message_are_not_strings_is_rejected(tmp_path: Path) -> None:
    request = trace_request([span(events=[{"exception.type": 7, "exception.message": True}])])
    with running_processor(tmp_path) as processor:
        body, error = raw_call(processor.address, TRACE_EXPORT, request.SerializeToString())
        assert error is None
        assert ExportTraceServiceResponse.FromString(body).partial_success.rejected_spans == 1
        assert processor.store is not None
        assert processor.store.group_count == 0


def test_one_request_the_store_cannot_take_fails_alone_not_its_whole_batch() -> None:
    first_commit = threading.Event()
    release = threading.Event()
    batches: list[list[str]] = []

    def apply(occurrences: Sequence[Occurrence]) -> list[Change]:
        batches.append([occurrence.fingerprint for occurrence in occurrences])
        if not first_commit.is_set():
            first_commit.set()
            release.wait(5)  # the next three requests queue behind this commit
        if any(occurrence.fingerprint == "poison" for occurrence in occurrences):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return []

    writer = BatchWriter(apply)
    results: dict[str, BaseException | None] = {}

    def write(fingerprint: str) -> None:
        try:
            writer.write([occurrence(fingerprint)], timeout=5)
            results[fingerprint] = None
        except Exception as exc:
            results[fingerprint] = exc

    leader = threading.Thread(target=write, args=("first",))
    leader.start()
    assert first_commit.wait(5)
    followers = [threading.Thread(target=write, args=(name,)) for name in ("a", "poison", "b")]
    for thread in followers:
        thread.start()
    while writer.pending < 4:
        time.sleep(0.005)
    release.set()
    for thread in [leader, *followers]:
        thread.join(5)
    # The three queued requests formed one batch; it failed and each was tried alone.
    assert sorted(batches[1]) == ["a", "b", "poison"]
    assert sorted(map(sorted, batches[2:])) == [["a"], ["b"], ["poison"]]
    assert results == {"first": None, "a": None, "b": None, "poison": results["poison"]}
    assert isinstance(results["poison"], OverflowError)
    assert writer.pending == 0


def test_group_counts_stop_at_the_largest_value_the_store_holds(tmp_path: Path) -> None:
    huge = occurrence("00000000000c0417", count=MAX_COUNT, handled=True, service="svc")
    store = sqlite_group_store(tmp_path / "db")
    store.apply([huge])
    store.connection.execute(
        "UPDATE failure_groups SET count = ?, handled_count = ?, service_counts = ?",
        (MAX_GROUP_COUNT - 5, MAX_GROUP_COUNT - 5, f'{{"svc":{MAX_GROUP_COUNT - 5}}}'),
    )
    store.close()
    store = sqlite_group_store(tmp_path / "db")  # reads the rows again
    try:
        store.apply([huge, huge])
        group = store.get_group("00000000000c0417")
    finally:
        store.close()
    assert group.count == MAX_GROUP_COUNT
    assert group.handled_count == MAX_GROUP_COUNT
    assert group.service_counts == {"svc": MAX_GROUP_COUNT}


def test_attribute_values_nested_past_any_parser_limit_are_read_without_recursion() -> None:
    deep = KeyValue(key="deep")
    value = deep.value
    for _ in range(5_000):  # far past the recursion limit, built in memory
        value = value.kvlist_value.values.add(key="k").value
    value.string_value = "bottom"
    flat = KeyValue(key="flat", value=AnyValue(int_value=3))
    assert attributes_of([deep, flat]) == {"flat": 3}
