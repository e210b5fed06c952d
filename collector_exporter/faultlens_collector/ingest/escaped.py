"""Whether a failure from a plain OpenTelemetry SDK escaped: read from its span.

The faultlens SDK says it in ``failure.handled``. Other SDKs send the deprecated
``exception.escaped`` at best, and not reliably: the OpenTelemetry Python SDK writes
it as the *string* ``"False"`` even for an exception that left
``start_as_current_span`` (``use_span`` calls ``record_exception`` without
``escaped=True``). The current semantic conventions say what to look at instead: an
exception is recorded on a span "if and only if it remains unhandled when the span ends
and causes the span status to be set to ERROR", with ``error.type`` naming it. So an
``exception`` event escaped when its span ended with status ERROR and

* the span's ``error.type`` names the event's ``exception.type`` (the same name, or one
  is the other's last dotted components: ``ValueError`` and ``builtins.ValueError``;
  ``$`` and ``+`` of nested Java and .NET classes count as dots), or
* the status description names the exception: its type (``ValueError``,
  ``app.PaymentDeclined``), its type's last component and a colon first
  (``ValueError: bad amount``, what the Python SDK writes), or its message
  (``span.setStatus(ERROR, e.getMessage())``, what Node's instrumentations write, whose
  ``error.type`` is ``err.name`` while ``exception.type`` may be ``err.code``), or
* the span has neither ``error.type`` nor a description: a bare ERROR (the Java agent's
  ``@WithSpan``), which the exceptions recorded on it caused.

Anything else — an ERROR span whose ``error.type`` is another type or an HTTP status
code (``500``) and whose description is about something else, a span without status
ERROR — leaves the event as it was (``exception.escaped`` when sent, else unknown).
:func:`escaped_on` answers for a failure on a span: :func:`span_error` reads what
it needs from the span, :func:`escaped_by_status` decides. They run for each failure without
``failure.handled`` (plain OpenTelemetry), so both remember their recent answers
(bounded): a repeated status is not decoded again, a repeated question not answered
again, and ``error.type`` is looked for in the span's attributes only when the span's
bytes hold that key.
"""

from __future__ import annotations

import re
from typing import Any, Final

from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

#: ``KeyValue.key`` (field 1) = "error.type", as encoded on the wire.
_ERROR_TYPE_KEY: Final = b"\x0a\x0aerror.type"
_ERROR: Final = Status.STATUS_CODE_ERROR
#: Separators of nested type names that count as dots.
_NESTING: Final = re.compile(r"[$+]")
#: Answers remembered per cache (a full cache is emptied).
_REMEMBERED: Final = 4096
#: Not remembered yet (None is an answer: "not ERROR").
_UNKNOWN: Final = "\x00unknown"
#: Serialized status -> its description when its code is ERROR, else None.
_DESCRIPTIONS: dict[bytes, str | None] = {}
#: (exception type, message, error.type, description) -> escaped.
_VERDICTS: dict[tuple[str, str, str, str], bool] = {}


def escaped_on(span: Any, raw: bytes, exception_type: str, message: str) -> bool:
    """Whether the exception (type, message) escaped ``span`` — a span frame with its
    serialized ``status`` and ``attributes``, whose bytes are ``raw``."""
    status = span.status
    if not status:  # the usual span: no status at all
        return False
    error = span_error(status, raw, span, _key_value)
    return error is not None and escaped_by_status(exception_type, message, *error)


def _key_value(raw: bytes) -> tuple[str, Any]:
    item = KeyValue.FromString(raw)
    value = item.value
    return item.key, value.string_value if value.WhichOneof("value") == "string_value" else None


def span_error(status: bytes, raw: bytes, span: Any, key_value: Any) -> tuple[str, str] | None:
    """``(error.type, status description)`` of a span that ended with status ERROR, from
    its serialized ``status``, its bytes ``raw`` and its frame ``span`` (whose
    ``attributes`` are serialized ``KeyValue``s; ``error.type`` is empty when the span has
    none that is a string); None for any other status, or one that does not decode.
    ``key_value`` decodes one serialized ``KeyValue`` into ``(key, value)``."""
    if not status:
        return None
    description = _DESCRIPTIONS.get(status, _UNKNOWN)
    if description is _UNKNOWN:
        description = _error_description(status)
        if len(_DESCRIPTIONS) >= _REMEMBERED:
            _DESCRIPTIONS.clear()
        _DESCRIPTIONS[status] = description
    if description is None:
        return None
    error_type = ""
    if _ERROR_TYPE_KEY not in raw:  # the usual case: no attribute to look for
        return error_type, description
    for attribute in span.attributes:
        if attribute.startswith(_ERROR_TYPE_KEY):
            try:
                key, value = key_value(attribute)
            except DecodeError:
                break
            if key == "error.type" and isinstance(value, str):
                error_type = value
                break
    return error_type, description


def _error_description(status: bytes) -> str | None:
    """The description of a serialized ``Status`` whose code is ERROR, else None."""
    try:
        decoded = Status.FromString(status)
    except DecodeError:
        return None
    return decoded.message if decoded.code == _ERROR else None


def escaped_by_status(exception_type: str, message: str, error_type: str, description: str) -> bool:
    """Whether an exception (its type and message) escaped a span that ended with status
    ERROR, ``error_type`` and ``description`` (see the module docstring)."""
    question = (exception_type, message, error_type, description)
    verdict = _VERDICTS.get(question)
    if verdict is None:
        verdict = _escaped(*question)
        if len(_VERDICTS) >= _REMEMBERED:
            _VERDICTS.clear()
        _VERDICTS[question] = verdict
    return verdict


def _escaped(exception_type: str, message: str, error_type: str, description: str) -> bool:
    if error_type and same_type(error_type, exception_type):
        return True
    if not description:
        return not error_type  # a bare ERROR: the exception recorded on it ended the span
    if bool(message) and description == message:
        return True
    if not exception_type:
        return False
    short = last_component(exception_type)
    return description.startswith((f"{short}:", f"{exception_type}:")) or same_type(
        description, exception_type
    )


def same_type(one: str, other: str) -> bool:
    """Whether two type names name the same type: equal, or one is the other's last
    dotted components (``$`` and ``+`` count as dots)."""
    one, other = _dotted(one.strip()), _dotted(other.strip())
    if not one or not other:
        return False
    if one == other:
        return True
    shorter, longer = sorted((one, other), key=len)
    return longer.endswith(f".{shorter}")


def last_component(type_name: str) -> str:
    """``PaymentDeclined`` of ``app.errors.PaymentDeclined`` (``$``/``+`` nesting too)."""
    return _dotted(type_name).rsplit(".", 1)[-1]


def _dotted(type_name: str) -> str:
    return _NESTING.sub(".", type_name) if "$" in type_name or "+" in type_name else type_name
