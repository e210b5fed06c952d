"""Whether a failure from a plain OpenTelemetry SDK escaped: ``exception.escaped`` as a bool
or as text, and the span's ERROR status and ``error.type`` (docs/processor.md)."""

from __future__ import annotations

from typing import Any

import pytest
from faultlens_collector.ingest import extract
from faultlens_collector.ingest.escaped import escaped_by_status, same_type
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tests.processor_support import logs_request, span, trace_request
from tests.reliability import wire

PY_TYPE = "app.errors.PaymentDeclined"
MESSAGE = "card declined for order 7"


def plain_event(**extra: Any) -> dict[str, Any]:
    """What the OpenTelemetry Python SDK's ``record_exception`` writes (``escaped`` text)."""
    return {
        "exception.type": PY_TYPE,
        "exception.message": MESSAGE,
        "exception.stacktrace": 'Traceback (most recent call last):\n  File "/srv/app/x.py", '
        "line 3, in charge\napp.errors.PaymentDeclined: card declined for order 7\n",
        **extra,
    }


def on_span(
    event: dict[str, Any],
    *,
    code: int = Status.STATUS_CODE_UNSET,
    description: str = "",
    attributes: dict[str, Any] | None = None,
    index: int = 1,
) -> Any:
    made = span("charge", events=[event], attributes=attributes, index=index)
    made.status.code = code
    made.status.message = description
    return made


def handled_of(*spans: Any, **options: bool) -> list[bool | None]:
    request = trace_request(list(spans)).SerializeToString()
    return [item.handled for item in extract.extract_spans(request, **options).occurrences]


@pytest.mark.parametrize(
    ("escaped", "handled"),
    [
        (True, False),
        (False, True),
        ("True", False),
        ("true", False),
        (" TRUE ", False),
        ("False", True),
        ("false", True),
        ("yes", None),
        ("", None),
        (1, None),
    ],
)
def test_exception_escaped_is_read_as_a_bool_or_as_text(escaped: object, handled: object) -> None:
    assert handled_of(on_span(plain_event(**{"exception.escaped": escaped}))) == [handled]
    request = logs_request([plain_event(**{"exception.escaped": escaped})])
    (item,) = extract.extract_logs(request.SerializeToString()).occurrences
    assert item.handled is handled


def test_an_escaped_failure_is_high_unless_the_sdk_gave_a_severity() -> None:
    request = trace_request(
        [
            on_span(plain_event(**{"exception.escaped": "True"}), index=1),
            on_span(plain_event(**{"exception.escaped": "False"}), index=2),
            on_span(
                plain_event(**{"failure.severity": "low"}),
                code=Status.STATUS_CODE_ERROR,
                description=f"PaymentDeclined: {MESSAGE}",
                index=3,
            ),
        ]
    ).SerializeToString()
    found = extract.extract_spans(request).occurrences
    assert [(item.handled, item.severity) for item in found] == [
        (False, "high"),
        (True, "medium"),
        (False, "low"),
    ]


ERROR = Status.STATUS_CODE_ERROR


@pytest.mark.parametrize(
    ("code", "description", "attributes", "handled"),
    [
        # What the Python SDK's use_span writes for an exception leaving the span.
        (ERROR, f"PaymentDeclined: {MESSAGE}", {}, False),
        (ERROR, "", {}, False),  # the Java agent: ERROR without a description
        (ERROR, MESSAGE, {}, False),  # setStatus(ERROR, e.getMessage())
        (ERROR, PY_TYPE, {}, False),
        (ERROR, f"{PY_TYPE}: {MESSAGE}", {}, False),
        (ERROR, "upstream answered 503", {}, True),  # another reason: as sent
        (ERROR, "PaymentDeclinedLater: x", {}, True),
        (ERROR, "", {"error.type": PY_TYPE}, False),
        (ERROR, "", {"error.type": "PaymentDeclined"}, False),
        (ERROR, f"PaymentDeclined: {MESSAGE}", {"error.type": "500"}, False),
        (ERROR, "Internal Server Error", {"error.type": "500"}, True),
        (ERROR, "", {"error.type": "500"}, True),
        (ERROR, "", {"error.type": "app.errors.Other"}, True),
        (ERROR, MESSAGE, {"error.type": "Error"}, False),  # Node: err.name vs err.code
        (Status.STATUS_CODE_OK, f"PaymentDeclined: {MESSAGE}", {}, True),
        (Status.STATUS_CODE_UNSET, "", {"error.type": PY_TYPE}, True),
    ],
)
@pytest.mark.parametrize("with_attributes", [False, True])
def test_a_span_that_ended_in_error_for_this_exception_says_it_escaped(
    code: int, description: str, attributes: dict[str, Any], handled: bool, with_attributes: bool
) -> None:
    event = plain_event(**{"exception.escaped": "False"})
    made = on_span(event, code=code, description=description, attributes=attributes)
    assert handled_of(made, attributes=with_attributes) == [handled]
    # Without exception.escaped the status decides the same, and otherwise it is unknown.
    bare = on_span(plain_event(), code=code, description=description, attributes=attributes)
    assert handled_of(bare, attributes=with_attributes) == [False if not handled else None]


def test_failure_handled_is_never_overruled_by_the_span() -> None:
    made = on_span(
        plain_event(**{"failure.handled": True}),
        code=ERROR,
        description=f"PaymentDeclined: {MESSAGE}",
    )
    assert handled_of(made) == [True]


def test_the_same_event_on_two_spans_is_decided_per_span() -> None:
    """The verdict on an event is cached by its bytes; the span's part is not."""
    event = plain_event(**{"exception.escaped": "False"})
    failed = on_span(event, code=ERROR, description=f"PaymentDeclined: {MESSAGE}", index=1)
    fine = on_span(event, index=2)
    for _ in range(3):  # the second and third time from the cache
        assert handled_of(failed, fine, failed) == [False, True, False]


def test_a_span_with_a_handled_and_an_escaped_exception_tells_them_apart() -> None:
    made = span(
        "checkout",
        events=[
            {"exception.type": "KeyError", "exception.message": "'sku'"},
            plain_event(),
        ],
        attributes={"error.type": PY_TYPE},
    )
    made.status.code = ERROR
    assert handled_of(made) == [None, False]


def test_an_undecodable_status_leaves_the_failure_as_sent() -> None:
    attributes = [
        wire.key_value(b"exception.type", wire.any_string(PY_TYPE.encode())),
        wire.key_value(b"exception.escaped", wire.any_string(b"False")),
    ]
    # Status (field 15): code ERROR, a description that is not UTF-8.
    status = wire.field_bytes(2, b"PaymentDeclined: \xff") + wire.field_varint(3, ERROR)
    made = (
        wire.field_bytes(1, bytes(range(1, 17)))
        + wire.field_bytes(2, bytes(range(1, 9)))
        + wire.field_bytes(11, wire.exception_event(attributes))
        + wire.field_bytes(15, status)
    )
    resource = wire.field_bytes(1, wire.key_value(b"service.name", wire.any_string(b"svc")))
    scope = wire.field_bytes(2, wire.field_bytes(2, made))
    body = wire.field_bytes(1, wire.field_bytes(1, resource) + scope)
    (item,) = extract.extract_spans(body).occurrences
    assert item.handled is True


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("ValueError", "ValueError", True),
        ("ValueError", "builtins.ValueError", True),
        ("java.util.Map.Entry", "java.util.Map$Entry", True),
        ("Outer+Inner", "Ns.Outer.Inner", True),
        ("Error", "ValueError", False),
        ("app.Error", "other.Error", False),
        ("", "ValueError", False),
        ("500", "ValueError", False),
    ],
)
def test_type_names_match_by_their_last_components(one: str, other: str, same: bool) -> None:
    assert same_type(one, other) is same
    assert same_type(other, one) is same


def test_without_a_type_only_the_message_or_an_empty_description_matches() -> None:
    assert escaped_by_status("", "boom", "", "boom")
    assert escaped_by_status("", "boom", "", "")
    assert not escaped_by_status("", "boom", "", "something else")
