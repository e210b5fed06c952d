"""A real worker process for the checkpoint tests (run as a script, never imported).

``job DIR LOG ITEMS MODE INTERVAL``
    Processes items 0..ITEMS-1, resuming from the job's checkpoint. Each item's
    side effect is one line ``<item>\\n`` appended to LOG with a single
    ``write(2)``. MODE ``at-least-once`` saves ``{"position": next item}``;
    ``exactly-once`` also saves the log's length and truncates the log back to it
    on resume (the side effect's own position saved with the state). Prints
    ``started <position>`` once it is running and ``finished`` at the end.

``disk DIR KIND``
    Runs 50 items saving after every one into DIR, a tiny file system that is
    ``full`` or ``read-only`` (for ``full`` the worker fills it first and frees
    it after the 50 items, then saves once more). Prints one JSON line: the
    failures recorded, the save counts, the health before and after.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def job(directory: str, log: str, items: int, mode: str, interval: float) -> None:
    from faultlens.resilience import Checkpoint

    checkpoint = Checkpoint("crash-test", directory=directory, interval=interval)
    with checkpoint:
        state = checkpoint.restore() or {"position": 0, "log_size": 0}
        size = state["log_size"]
        if mode == "exactly-once":
            with open(log, "ab") as stream:
                stream.truncate(size)
        descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        print("started", state["position"], flush=True)
        for item in range(state["position"], items):
            line = f"{item}\n".encode()
            os.write(descriptor, line)  # the item's side effect
            size += len(line)
            time.sleep(0.001)  # the item takes a while
            checkpoint.save({"position": item + 1, "log_size": size})
    print("finished", flush=True)


def disk(directory: str, kind: str) -> None:
    import faultlens
    from faultlens.resilience import Checkpoint, health
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    faultlens.configure(tracer_provider=provider)
    filler = Path(directory) / "filler"
    if kind == "full":
        with open(filler, "wb", buffering=0) as stream:
            try:
                while True:
                    stream.write(b"\0" * 4096)
            except OSError:
                pass
    elif kind == "fsize":  # no tiny file system to be had: RLIMIT_FSIZE instead (EFBIG)
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (16, hard))

    checkpoint = Checkpoint("disk-test", directory=directory, interval=0, register=True)
    processed = []
    tracer = provider.get_tracer("worker")
    with tracer.start_as_current_span("job"):
        for item in range(50):
            processed.append(item)
            checkpoint.save({"position": item + 1})
        during = health().as_dict()
        recovered = False
        if kind == "full":
            filler.unlink()
            recovered = checkpoint.save({"position": 50}, force=True)
        elif kind == "fsize":
            import resource

            hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
            recovered = checkpoint.save({"position": 50}, force=True)
    failures = [
        dict(event.attributes or {})
        for span in spans.get_finished_spans()
        for event in span.events
        if event.name == "exception"
    ]
    print(
        json.dumps(
            {
                "processed": processed,
                "failures": failures,
                "during": during,
                "recovered": recovered,
                "after": health().as_dict(),
            },
            default=str,
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "job":
        job(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], float(sys.argv[6]))
    else:
        disk(sys.argv[2], sys.argv[3])
