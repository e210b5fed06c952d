"""Malloc settings of `faultlens serve` (processor/heap.py), observed as page faults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: Allocate and free 20 MiB in 1 MiB blocks ten times; print the page faults of each round.
ROUNDS = """
import resource, sys
from faultlens_collector.processor.heap import keep_request_buffers
if sys.argv[1] == "tuned":
    assert keep_request_buffers()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds = []
for _ in range(10):
    before = faults()
    blocks = [bytearray(1 << 20) for _ in range(20)]
    del blocks
    rounds.append(faults() - before)
print(*rounds)
"""


def faults_per_round(mode: str) -> list[int]:
    output = subprocess.run(
        [sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True
    ).stdout
    return [int(value) for value in output.split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_request_sized_buffers_are_reused_instead_of_faulted_in_again() -> None:
    pages = 20 * (1 << 20) // 4096
    default = faults_per_round("default")
    tuned = faults_per_round("tuned")
    # glibc's defaults hand the 20 MiB back and fault every page in again each round;
    # tuned, the first round faults them in and later rounds reuse them.
    assert min(default[1:]) > pages // 2
    assert tuned[0] > pages // 2
    assert max(tuned[1:]) < pages // 20


def test_elsewhere_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from faultlens_collector.processor import heap

    monkeypatch.setattr(heap.sys, "platform", "darwin")
    assert heap.keep_request_buffers() is False


@pytest.mark.parametrize(("flags", "tuned"), [([], True), (["--no-heap-tuning"], False)])
def test_serve_tunes_the_heap_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: list[str], tuned: bool
) -> None:
    from faultlens_collector.cli import CommandError, build_parser
    from faultlens_collector.processor.server import ProcessorError

    calls: list[str] = []

    class Unstartable:
        def __init__(self, *args: object, **kwargs: object) -> None:
            calls.append("processor")

        def start(self) -> None:
            raise ProcessorError("port taken")

    # `serve` imports the processor when it runs: patch where it imports from.
    monkeypatch.setattr(
        "faultlens_collector.processor.heap.keep_request_buffers",
        lambda: calls.append("heap") or True,
    )
    monkeypatch.setattr("faultlens_collector.processor.server.Processor", Unstartable)
    args = build_parser().parse_args(["serve", "--store", str(tmp_path / "db"), *flags])
    with pytest.raises(CommandError, match="port taken"):
        args.handler(args)
    assert calls == (["heap", "processor"] if tuned else ["processor"])
