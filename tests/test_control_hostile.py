"""Hostile control input: integers past what a store holds, too many values, numbers
that are not finite, unknown names — each a proper status and one readable line, never
``UNKNOWN``, ``INTERNAL`` or a traceback; and a property test sending generated
requests to every control RPC."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.cli import CommandError, main
from faultlens_collector.cli.connect import parse_since, parse_until
from faultlens_collector.control.client import ControlClient, ControlError
from faultlens_collector.control.methods import MAX_INT64, REPLIES, STREAMS
from faultlens_collector.processor.server import Processor
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.processor_support import (
    TRACE_EXPORT,
    failure_attributes,
    raw_call,
    running_processor,
    span,
    trace_request,
)

A, B = "aaaa000000000001", "bbbb000000000002"
UINT64_MAX = (1 << 64) - 1
#: What a control call may answer, whatever it is sent.
PROPER = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
HOOK_CONFIG = {
    "hooks": {"noop": {"command": ["true"], "timeout": "5s", "cooldown": "1h"}},
}


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processor]:
    from faultlens_collector.actions import parse_config

    directory = tmp_path_factory.mktemp("hostile")
    with running_processor(directory, actions=parse_config(HOOK_CONFIG)) as running:
        spans = [
            span("charge", index=1, events=[failure_attributes(A)]),
            span("lookup", index=2, events=[failure_attributes(B)]),
        ]
        body = trace_request(spans).SerializeToString()
        assert raw_call(running.address, TRACE_EXPORT, body)[1] is None
        yield running


@pytest.fixture
def client(processor: Processor) -> Iterator[ControlClient]:
    with ControlClient(processor.address, timeout=10) as connected:
        yield connected


def refused(client: ControlClient, name: str, request: Any) -> ControlError:
    with pytest.raises(ControlError) as caught:
        client.call(name, request)
    return caught.value


def dismiss(until: int = 0, reopen_above: int = 0) -> Any:
    return control_pb2.DismissRequest(
        selection=control_pb2.GroupSelection(fingerprints=[A]),
        reason="noise",
        until_unix_nano=until,
        reopen_above_per_hour=reopen_above,
        dry_run=True,
    )


@pytest.mark.parametrize("until", [1 << 63, UINT64_MAX, 10_413_792_000 * 10**9])
def test_a_dismissal_past_the_latest_storable_time_is_invalid_argument(
    client: ControlClient, until: int
) -> None:
    error = refused(client, "Dismiss", dismiss(until=until))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(error) == (
        f"the dismissal's end time {until} ns is past the latest time faultlens stores "
        "(2262-04-11T23:47:16Z)"
    )


def test_the_latest_storable_time_itself_is_accepted(client: ControlClient) -> None:
    request = dismiss(until=MAX_INT64)
    request.dry_run = False
    request.selection.fingerprints[:] = [B]
    assert client.call("Dismiss", request).matched == 1
    assert client.get_group(B).dismissal.until_unix_nano == MAX_INT64


def test_a_reopen_rate_past_64_signed_bits_is_invalid_argument(client: ControlClient) -> None:
    error = refused(client, "Dismiss", dismiss(reopen_above=1 << 63))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "reopen_above_per_hour is at most 9223372036854775807" in str(error)


@pytest.mark.parametrize(
    ("until", "message"),
    [
        ("2300-01-01", "--until '2300-01-01' is past the latest time faultlens can store"),
        ("9999-12-31", "--until '9999-12-31' is past the latest time faultlens can store"),
        ("1e400w".replace("e400", "9" * 400), "is past the latest time faultlens can store"),
        ("1900-01-01", "--until '1900-01-01' is in the past"),
    ],
)
def test_the_cli_refuses_an_until_it_cannot_send_in_one_line(
    processor: Processor, capsys: pytest.CaptureFixture[str], until: str, message: str
) -> None:
    argv = ["failures", "dismiss", A, "--reason", "x", "--until", until]
    code = main([*argv, "--target", processor.address])
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["halts", "start", "--key", "n=99999999999999999999", "--reason", "x"], "2^63 - 1"),
        (["halts", "start", "--key", "n=NaN", "--reason", "x"], "not a finite number"),
        (["halts", "start", "--key", "n=1e999", "--reason", "x"], "not a finite number"),
        (["failures", "dismiss", A, "--reason", "x", "--reopen-above", "9" * 20], "at most"),
    ],
)
def test_the_cli_refuses_numbers_it_cannot_send_in_one_line(
    processor: Processor, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = main([*argv, "--target", processor.address])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err.strip().splitlines()[-1]
    assert "Traceback" not in err


def test_a_since_before_1970_or_past_2262_is_clamped_not_a_traceback(
    processor: Processor, capsys: pytest.CaptureFixture[str]
) -> None:
    for since in ("1900-01-01", "9999-12-31", "9" * 400 + "w"):
        code = main(["failures", "list", "--since", since, "--json", "--target", processor.address])
        assert code == 0
        assert "Traceback" not in capsys.readouterr().err
    assert parse_since("1900-01-01") == 0
    assert parse_since("9999-12-31") == MAX_INT64


@given(st.text(max_size=40) | st.from_regex(r"\A[0-9]{1,400}(\.[0-9]{1,9})?[smhdw]\Z"))
@settings(max_examples=100, deadline=None)
def test_parsing_a_time_either_fits_a_store_or_is_one_command_error(text: str) -> None:
    for parse in (parse_since, parse_until):
        value, error = _outcome(parse, text)
        if error is None:
            assert 0 <= value <= MAX_INT64
        else:
            assert "\n" not in error


def _outcome(parse: Any, text: str) -> tuple[int, str | None]:
    try:
        return parse(text), None
    except CommandError as error:
        return -1, str(error)


@pytest.mark.parametrize(
    ("name", "request_", "message"),
    [
        (
            "ListGroups",
            control_pb2.ListGroupsRequest(
                filter=control_pb2.GroupFilter(services=[f"s{n}" for n in range(300_000)])
            ),
            "the number of services in a filter is at most 256",
        ),
        (
            "Resolve",
            control_pb2.SetStatusRequest(
                selection=control_pb2.GroupSelection(fingerprints=["abcd"] * 20_000)
            ),
            "the number of fingerprints in one call (use a filter for more) is at most 10000",
        ),
        (
            "StartHalt",
            control_pb2.StartHaltRequest(
                key=[control_pb2.KeyItem(name="x", double_value=math.nan)], reason="r"
            ),
            "key item 'x': nan is not a finite number",
        ),
        (
            "ResumeHalt",
            control_pb2.ResumeHaltRequest(
                key=[control_pb2.KeyItem(name=f"k{n}", int_value=n) for n in range(100)]
            ),
            "a key has at most 64 items, not 100",
        ),
    ],
)
def test_sizes_and_numbers_past_the_bounds_are_invalid_argument(
    client: ControlClient, name: str, request_: Any, message: str
) -> None:
    error = refused(client, name, request_)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in str(error)


def test_an_unknown_alert_kind_is_invalid_argument(client: ControlClient) -> None:
    stream = client.stream("StreamAlerts", control_pb2.StreamAlertsRequest(kinds=["nope"]))
    with pytest.raises(ControlError) as caught:
        next(stream)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown alert kind 'nope'; use any of new_failure," in str(caught.value)


def test_a_long_reason_is_kept_cut(client: ControlClient) -> None:
    request = control_pb2.SetStatusRequest(
        selection=control_pb2.GroupSelection(fingerprints=[A]), reason="r" * 100_000
    )
    reply = client.call("Reopen", request)
    (logged,) = [
        action
        for action in client.call("ListAudit", control_pb2.ListAuditRequest()).actions
        if action.id == reply.action_id
    ]
    assert '"reason":"' + "r" * 1024 + '"' in logged.detail_json.replace(" ", "")
    assert "r" * 1025 not in logged.detail_json


def test_a_handler_that_fails_unexpectedly_answers_internal_in_one_line(
    processor: Processor, client: ControlClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the disk fell off")

    assert processor.store is not None
    monkeypatch.setattr(processor.store, "list_groups", broken)
    monkeypatch.setattr(processor.store, "iter_groups", broken)
    error = refused(client, "ListGroups", control_pb2.ListGroupsRequest())
    assert error.code == grpc.StatusCode.INTERNAL
    assert str(error) == "faultlens could not serve ListGroups: RuntimeError: the disk fell off"
    with pytest.raises(ControlError) as streamed:
        list(client.export_groups(control_pb2.ExportGroupsRequest()))
    assert streamed.value.code == grpc.StatusCode.INTERNAL
    monkeypatch.undo()
    assert client.call("ListGroups", control_pb2.ListGroupsRequest()).total == 2


# --- every RPC, generated requests -----------------------------------------------------

_SERVICE = control_pb2.DESCRIPTOR.services_by_name["Control"]
_INTEGERS = {
    FieldDescriptor.TYPE_UINT64: (0, UINT64_MAX, (0, 1, MAX_INT64, 1 << 63, UINT64_MAX)),
    FieldDescriptor.TYPE_UINT32: (0, (1 << 32) - 1, (0, 1, 1000, 1001, (1 << 32) - 1)),
    FieldDescriptor.TYPE_INT64: (-(1 << 63), MAX_INT64, (-(1 << 63), -1, 0, 1, MAX_INT64)),
    FieldDescriptor.TYPE_SINT32: (-(1 << 31), (1 << 31) - 1, (-(1 << 31), -1, 0)),
    FieldDescriptor.TYPE_INT32: (-(1 << 31), (1 << 31) - 1, (-(1 << 31), -1, 0, 5)),
    FieldDescriptor.TYPE_ENUM: (-(1 << 31), (1 << 31) - 1, (-1, 0, 1, 2, 3, 4, 99)),
}
_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            "abcd",
            A,
            "aaaa",
            "open",
            "dismissed",
            "high",
            "noop",
            "service.name",
            "halt",
            "x" * 5000,
            "\u0000\ud7ff\U0010ffff",
            "' OR 1=1 --",
        ]
    ),
)


def _repeated(field: FieldDescriptor) -> bool:
    if hasattr(field, "is_repeated"):  # protobuf 6 and later
        return bool(field.is_repeated)
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


#: Values that get a request past the first checks, by field name, mixed with anything.
_LIKELY: dict[str, st.SearchStrategy[Any]] = {
    "fingerprints": st.sampled_from([A, B, "aaaa", "bbbb", "ffff"]),
    "fingerprint": st.sampled_from([A, B, "aaaa", "ffff"]),
    "statuses": st.sampled_from(["open", "dismissed", "resolved", "regressed"]),
    "severities": st.sampled_from(["low", "medium", "high", "critical"]),
    "hook": st.just("noop"),
    "reason": st.sampled_from(["noise", "flaky upstream"]),
    "name": st.just("service.name"),
    "kinds": st.sampled_from(["halt", "new_failure", "rule_match"]),
    "dry_run": st.just(False),
    "all": st.just(True),
}


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    likely = _LIKELY.get(field.name)
    anything = _any_value(field, depth)
    return anything if likely is None else st.one_of(likely, likely, likely, anything)


def _any_value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type in _INTEGERS:
        low, high, edges = _INTEGERS[field.type]
        return st.sampled_from(edges) | st.integers(low, high)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if field.type == FieldDescriptor.TYPE_STRING:
        return _TEXT
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _message(field.message_type, depth + 1)
    raise AssertionError(f"no strategy for {field.full_name}")


def _message(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Field values for a message: each field left unset or given an edge or random value;
    of a oneof, at most one."""
    fields = {}
    for field in descriptor.fields:
        if depth > 2 and field.type == FieldDescriptor.TYPE_MESSAGE:
            continue
        value = _value(field, depth)
        if _repeated(field):
            value = st.just([]) | st.lists(value, min_size=1, max_size=3)
        fields[field.name] = value | value | value | st.none()
    generated = st.fixed_dictionaries(fields).map(lambda values: _one_per_oneof(descriptor, values))
    # Nested messages (a filter, a selection) are often empty: the request then reaches
    # the store instead of stopping at a filter that matches nothing.
    return generated if depth == 0 else st.just({}) | generated


def _one_per_oneof(descriptor: Descriptor, values: dict[str, Any]) -> dict[str, Any]:
    kept = {name: value for name, value in values.items() if value is not None}
    for oneof in descriptor.oneofs:
        members = [field.name for field in oneof.fields if field.name in kept]
        for name in members[1:]:
            del kept[name]
    return kept


def _build(message_type: Any, values: dict[str, Any]) -> Any:
    message = message_type()
    for name, value in values.items():
        field = message_type.DESCRIPTOR.fields_by_name[name]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            child_type = type(getattr(message, name))
            if _repeated(field):
                item_type = getattr(message, name).add().__class__
                del getattr(message, name)[:]
                getattr(message, name).extend(_build(item_type, item) for item in value)
            else:
                getattr(message, name).CopyFrom(_build(child_type, value))
        elif _repeated(field):
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    return message


def requests_for(method: str) -> st.SearchStrategy[Any]:
    descriptor = _SERVICE.methods_by_name[method].input_type
    request_type = getattr(control_pb2, descriptor.name)
    return _message(descriptor).map(lambda values: _build(request_type, values))


def test_the_generated_calls_cover_every_rpc() -> None:
    assert set(_SERVICE.methods_by_name) == set(REPLIES) | set(STREAMS)


@pytest.mark.parametrize("method", sorted(_SERVICE.methods_by_name))
@given(data=st.data())
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_control_call_gets_a_proper_status(
    client: ControlClient, method: str, data: st.DataObject
) -> None:
    request = data.draw(requests_for(method))
    code, message = _answer(client, method, request)
    if method in STREAMS and code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return  # a stream with nothing to send yet
    assert code in PROPER, (method, request, code, message)
    assert "\n" not in message


def _answer(client: ControlClient, method: str, request: Any) -> tuple[Any, str]:
    """The status a call ends with, and its message."""
    try:
        if method in STREAMS:
            for _ in client.stream(method, request, timeout=0.3):
                break
        else:
            client.call(method, request)
    except ControlError as error:
        return error.code, str(error)
    return grpc.StatusCode.OK, ""


def test_the_processor_still_serves_after_the_hostile_calls(client: ControlClient) -> None:
    time.sleep(0.1)
    assert client.call("ListGroups", control_pb2.ListGroupsRequest()).total >= 2
