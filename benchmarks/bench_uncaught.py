"""What capturing uncaught exceptions costs a program that does not crash (issue 13).

``faultlens.install()`` with no ``FAULTLENS_INSTRUMENT`` target replaces no hook:
the main thread's uncaught exception is read at shutdown, and on Python 3.12+
threads are seen through a local ``sys.monitoring`` ``CALL`` event on
``threading.Thread._bootstrap_inner`` whose call sites switch themselves off.
No global event is on, so exceptions raised and caught anywhere cost what they
cost without faultlens. Measured in the same run, installed vs not (the install
is toggled between the two halves of each pair, ``_harness.paired_ratio``):

1. an exception raised and caught (``try``/``except`` in one function): at most
   1.05x (the median of adjacent pairs);
1'. for reference (3.12+), the same with the engine's global events on, as they
   are while targets are watched: what a global ``EXCEPTION_HANDLED`` callback
   per handler entered would cost every program;
2. a thread started and joined: at most 1.05x.

Also printed: the global ``sys.monitoring`` events of faultlens' tool id while
installed (3.12+; must be 0).

Run: ``python benchmarks/bench_uncaught.py`` with the interpreter to measure
(``.venvs/py3.12/bin/python`` for 3.12). Exit status 1 if a target is missed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import faultlens
from _harness import paired_ratio, verdict
from faultlens import _monitoring as monitoring


def _raise_and_catch(count: int) -> None:
    for _ in range(count):
        try:
            raise ValueError("x")
        except ValueError:
            pass


def _start_and_join(count: int) -> None:
    for _ in range(count):
        thread = threading.Thread(target=int)
        thread.start()
        thread.join()


def _installed(run: Callable[[int], None]) -> Callable[[int], None]:
    def candidate(count: int) -> None:
        faultlens.install(logging_capture=False)
        try:
            run(count)
        finally:
            faultlens.uninstall()

    return candidate


def _plain(run: Callable[[int], None]) -> Callable[[int], None]:
    def baseline(count: int) -> None:
        faultlens.uninstall()
        run(count)

    return baseline


def _global_events_on(run: Callable[[int], None]) -> Callable[[int], None]:
    def candidate(count: int) -> None:
        engine = monitoring.acquire()  # global events on, nothing watched
        try:
            run(count)
        finally:
            if engine is not None:
                engine.release_if_idle()

    return candidate


def main() -> int:
    print(f"Python {sys.version.split()[0]}, faultlens {faultlens.__version__}")
    faultlens.install(logging_capture=False)
    engine = monitoring.current()
    if engine is not None:
        mask = sys.monitoring.get_events(engine.tool)  # type: ignore[attr-defined,unused-ignore]
        print(f"  tool id {engine.tool} held, global events while installed: {mask}")
    faultlens.uninstall()
    ok = True
    for label, run, chunk, pairs, limit in (
        ("raised and caught, installed vs not", _raise_and_catch, 50_000, 41, 1.05),
        ("thread started and joined, installed vs not", _start_and_join, 300, 41, 1.05),
    ):
        ratio = paired_ratio(_plain(run), _installed(run), chunk=chunk, pairs=pairs)
        print(f"\n{label}: quartiles {ratio.low:.3f}-{ratio.high:.3f}")
        ok = verdict(label, ratio.median, limit) and ok
    if monitoring.supported():
        reference = paired_ratio(
            _plain(_raise_and_catch),
            _global_events_on(_raise_and_catch),
            chunk=50_000,
            pairs=21,
        )
        print(
            "\nraised and caught, global events on vs off (reference): "
            f"{reference.median:.3f}x (quartiles {reference.low:.3f}-{reference.high:.3f})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
