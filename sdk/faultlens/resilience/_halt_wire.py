"""The few ``faultlens.v1`` messages the halt guard reads, built at run time.

The generated code for ``proto/faultlens/v1/control.proto`` ships inside
``faultlens_collector`` (the processor side), and the SDK must work without it.
The guard needs only ``WatchHalts``: this module declares the subset of
``WatchHaltsRequest``, ``HaltEvent``, ``Halt`` and ``KeyItem`` it reads — same
names, field numbers and types as control.proto, so the bytes are the same;
fields it does not declare are skipped when parsing — and builds the message
classes from that declaration with the protobuf runtime (already a dependency
of OpenTelemetry's OTLP exporter) in a private descriptor pool. A test compares
it with the generated code, so the two cannot drift apart.

Built on first use (:func:`messages`), so importing the SDK costs nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

METHOD: Final = "/faultlens.v1.Control/WatchHalts"

#: message → fields: (name, number, type, label, type name, oneof index).
_OPTIONAL: Final = 1
_REPEATED: Final = 3
_FIELDS: Final[dict[str, tuple[tuple[str, int, str, int, str, int | None], ...]]] = {
    "WatchHaltsRequest": (("heartbeat_seconds", 1, "uint32", _OPTIONAL, "", None),),
    "KeyItem": (
        ("name", 1, "string", _OPTIONAL, "", None),
        ("string_value", 2, "string", _OPTIONAL, "", 0),
        ("bool_value", 3, "bool", _OPTIONAL, "", 0),
        ("int_value", 4, "int64", _OPTIONAL, "", 0),
        ("double_value", 5, "double", _OPTIONAL, "", 0),
    ),
    "Halt": (
        ("id", 1, "string", _OPTIONAL, "", None),
        ("rule", 2, "string", _OPTIONAL, "", None),
        ("key", 3, "message", _REPEATED, ".faultlens.v1.KeyItem", None),
        ("reason", 4, "string", _OPTIONAL, "", None),
        ("since_unix_nano", 5, "uint64", _OPTIONAL, "", None),
    ),
    "HaltEvent": (
        ("kind", 1, "enum", _OPTIONAL, ".faultlens.v1.HaltEventKind", None),
        ("version", 2, "uint64", _OPTIONAL, "", None),
        ("halts", 3, "message", _REPEATED, ".faultlens.v1.Halt", None),
    ),
}
_ONEOFS: Final = {"KeyItem": ("value",)}
EVENT_KINDS: Final = (
    "HALT_EVENT_KIND_UNSPECIFIED",
    "HALT_EVENT_KIND_SNAPSHOT",
    "HALT_EVENT_KIND_HALTED",
    "HALT_EVENT_KIND_RESUMED",
    "HALT_EVENT_KIND_HEARTBEAT",
)
SNAPSHOT: Final = 1
HALTED: Final = 2
RESUMED: Final = 3
HEARTBEAT: Final = 4


@dataclass(frozen=True, slots=True)
class Messages:
    """The message classes (protobuf ``Message`` subclasses)."""

    WatchHaltsRequest: Any
    HaltEvent: Any
    Halt: Any
    KeyItem: Any


def file_descriptor() -> Any:
    """The ``FileDescriptorProto`` declaring the messages (for the drift test)."""
    from google.protobuf import descriptor_pb2

    field_type = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="faultlens/v1/halt_watch.proto", package="faultlens.v1", syntax="proto3"
    )
    kinds = proto.enum_type.add(name="HaltEventKind")
    for number, name in enumerate(EVENT_KINDS):
        kinds.value.add(name=name, number=number)
    for message_name, fields in _FIELDS.items():
        message = proto.message_type.add(name=message_name)
        for oneof in _ONEOFS.get(message_name, ()):
            message.oneof_decl.add(name=oneof)
        for name, number, kind, label, type_name, oneof_index in fields:
            field = message.field.add(
                name=name,
                number=number,
                type=field_type.Type.Value(f"TYPE_{kind.upper()}"),
                label=label,
                json_name=_camel(name),
            )
            if type_name:
                field.type_name = type_name
            if oneof_index is not None:
                field.oneof_index = oneof_index
    return proto


@functools.cache
def messages() -> Messages:
    """The message classes, built once."""
    from google.protobuf import descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_descriptor())

    def cls(name: str) -> Any:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"faultlens.v1.{name}"))

    return Messages(cls("WatchHaltsRequest"), cls("HaltEvent"), cls("Halt"), cls("KeyItem"))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
