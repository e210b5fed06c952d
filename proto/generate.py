"""Regenerate the Python code for proto/faultlens/v1/*.proto.

Run from anywhere::

    python proto/generate.py

It needs ``grpcio-tools``. The committed code was generated with
``grpcio-tools==1.64.1`` (protobuf 5.26 gencode), the oldest protobuf runtime
faultlens supports: newer runtimes read older gencode, not the reverse. Only
message classes are generated; the gRPC service wiring is written by hand in
``faultlens_collector.control`` so no grpcio version check is baked in.
tests/test_proto.py checks that the committed code matches the .proto files.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUTPUT = ROOT / "collector_exporter" / "faultlens_collector" / "_proto"


def proto_files() -> list[Path]:
    """Every .proto file of the faultlens API, in a stable order."""
    return sorted((PROTO_ROOT / "faultlens").rglob("*.proto"))


def main() -> int:
    """Generate ``*_pb2.py`` into ``faultlens_collector/_proto``."""
    from grpc_tools import protoc

    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={OUTPUT}",
        *(str(path) for path in proto_files()),
    ]
    if protoc.main(args) != 0:
        print("protoc failed", file=sys.stderr)
        return 1
    for leaf in {OUTPUT, *(path.parent for path in OUTPUT.rglob("*_pb2.py"))}:
        for package in (leaf, *leaf.relative_to(OUTPUT).parents):
            (OUTPUT / package / "__init__.py").touch()
    for generated in OUTPUT.rglob("*_pb2.py*"):
        text = generated.read_text()
        # Generated modules import each other as top-level `faultlens.v1`; here they live
        # inside faultlens_collector._proto (the name `faultlens` is the SDK package).
        text = text.replace(
            "from faultlens.v1 import", "from faultlens_collector._proto.faultlens.v1 import"
        )
        generated.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
