"""The web console, measured through a real browser against a big store.

A store with ``--groups`` (default 100,000) failure groups is written with the
processor's own store code (10 services, 16 categories, messages and stack traces of
realistic length, occurrences spread over the last day); ``faultlens serve --console``
serves it in a process of its own; headless Chromium (Debian's ``chromium`` through
Playwright) logs in and measures:

1. **List**: first contentful paint of the groups list and the time until its rows are
   on screen (both from the start of navigation; the page carries its first rows, so
   one request paints them). Target: rows on screen ≤ 1 s.
2. **Filter**: from pressing Enter in the search box to the filtered rows on screen, for
   a ``key:value`` term, two terms, and free text (which scans every group). Target ≤ 300 ms.
   (The number of matching groups is counted by a second request after the rows show.)
3. **Bulk dismiss**: 10,000 groups (everything matching ``service:...``) selected with
   "select all matching", dismissed through the dialog; from the click to the dialog's
   per-group results, checking the progress bar showed. Target ≤ 5 s.
4. **Live**: a failure sent through the official OTLP exporter; from its export call
   returning (acknowledged = committed) to the "N new" banner on the open page.
   Target ≤ 1 s.

Each figure is the median of ``--rounds`` tries (the best is printed too).

Run: ``.venv/bin/python benchmarks/bench_console.py [--groups N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from faultlens_collector.groups.model import Occurrence  # noqa: E402
from faultlens_collector.store.sqlite.database import SQLiteDatabase  # noqa: E402

from tests.console_support import CHROMIUM_ARGS, Failure, send_failures  # noqa: E402

FAULTLENS = str(Path(sys.executable).with_name("faultlens"))
SERVICES = [f"svc-{index}" for index in range(10)]
CATEGORIES = [
    "timeout",
    "connection",
    "lookup",
    "value",
    "validation",
    "io",
    "dependency",
    "attribute",
    "type",
    "permission",
    "resource",
    "configuration",
    "import",
    "cancelled",
    "halted",
    "unknown",
]
SEVERITIES = ["low", "medium", "high", "critical"]
WORDS = [
    "order",
    "cart",
    "payment",
    "inventory",
    "price",
    "user",
    "session",
    "token",
    "queue",
    "invoice",
    "shipment",
    "report",
    "search",
    "index",
    "cache",
    "upstream",
]


def fill_store(path: Path, groups: int) -> float:
    """Write ``groups`` groups through GroupStore.apply; seconds taken."""
    rng = random.Random(5)
    now = time.time_ns()
    started = time.perf_counter()
    database = SQLiteDatabase(path)
    store = database.group_store()
    try:
        batch: list[Occurrence] = []
        for index in range(groups):
            word, other = rng.choice(WORDS), rng.choice(WORDS)
            kind = f"app.{word}.{other.title()}Error"
            stack = "".join(
                f'  File "/srv/app/{rng.choice(WORDS)}/{rng.choice(WORDS)}.py", line '
                f"{rng.randint(10, 900)}, in {rng.choice(WORDS)}_{rng.choice(WORDS)}\n"
                f"    result = {rng.choice(WORDS)}.{rng.choice(WORDS)}(request, timeout=30)\n"
                for _ in range(rng.randint(4, 12))
            )
            for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
                batch.append(
                    Occurrence(
                        fingerprint=f"{index:016x}",
                        exception_type=kind,
                        message=f"{word} {other} failed for id {rng.randint(1, 10**9)}: "
                        f"{rng.choice(WORDS)} unavailable",
                        stacktrace=f"Traceback (most recent call last):\n{stack}{kind}: ...\n",
                        category=CATEGORIES[index % len(CATEGORIES)],
                        severity=rng.choice(SEVERITIES),
                        handled=rng.random() < 0.6,
                        count=1,
                        time_unix_nano=now - rng.randint(0, 24 * 3600) * 10**9,
                        service=SERVICES[index % len(SERVICES)],
                        span_name=f"GET /{word}",
                        trace_id=f"{rng.getrandbits(128):032x}",
                        span_id=f"{rng.getrandbits(64):016x}",
                    )
                )
            if len(batch) >= 2000:
                store.apply(batch)
                batch = []
        store.apply(batch)
    finally:
        store.close()
        database.close()
    return time.perf_counter() - started


class Serve:
    """``faultlens serve --console`` on free ports."""

    def __init__(self, store: Path) -> None:
        self.process = subprocess.Popen(
            [
                FAULTLENS,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--store",
                str(store),
                "--console",
                "127.0.0.1:0",
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        match = re.search(r"listening on (\S+?),.*console on (\S+)", line)
        if not match:
            raise SystemExit(f"faultlens serve did not start: {line}")
        self.address, self.url = match.group(1), match.group(2).rstrip("/")
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def rendered(page: object) -> int:
    return int(page.evaluate("Number(document.body.dataset.renders || 0)"))  # type: ignore[attr-defined]


def wait(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.005)


def measure_list(page: object, url: str) -> tuple[float, float]:
    page.goto(f"{url}/?x={time.time_ns()}")  # type: ignore[attr-defined]
    wait(lambda: rendered(page) > 0)
    paint = "performance.getEntriesByType('paint').filter(e => e.name === 'first-contentful-paint')"
    wait(lambda: page.evaluate(f"{paint}.length > 0"), 5)  # type: ignore[attr-defined]
    fcp, rows = page.evaluate(  # type: ignore[attr-defined]
        f"[{paint}[0].startTime,"
        " performance.getEntriesByName('faultlens:groups-rendered')[0].startTime]"
    )
    return fcp / 1000, rows / 1000


def measure_filter(page: object, text: str) -> tuple[float, int]:
    before = rendered(page)
    page.fill(".search", text)  # type: ignore[attr-defined]
    page.evaluate(
        "performance.clearMarks('faultlens:groups-rendered'); window.__t0 = performance.now()"
    )  # type: ignore[attr-defined]
    page.press(".search", "Enter")  # type: ignore[attr-defined]
    wait(lambda: rendered(page) > before)
    took = page.evaluate(  # type: ignore[attr-defined]
        "performance.getEntriesByName('faultlens:groups-rendered')[0].startTime - window.__t0"
    )
    wait(lambda: "counting" not in page.evaluate("document.querySelector('.total').textContent"))  # type: ignore[attr-defined]
    total = page.evaluate("document.querySelector('.total').textContent")  # type: ignore[attr-defined]
    return took / 1000, int(re.sub(r"[^0-9]", "", total) or 0)


def measure_bulk(page: object, url: str, service: str) -> tuple[float, bool, str]:
    page.goto(f"{url}/?q=service%3A{service}")  # type: ignore[attr-defined]
    page.wait_for_selector("tr.row")  # type: ignore[attr-defined]
    page.check("thead input.check")  # type: ignore[attr-defined]
    page.click(".select-all")  # type: ignore[attr-defined]
    page.click(".bulkbar [data-bulk=dismiss]")  # type: ignore[attr-defined]
    page.fill("#f-reason", "benchmark")  # type: ignore[attr-defined]
    progress = {"seen": False}
    started = time.perf_counter()
    page.click("dialog.bulk button[type=submit]")  # type: ignore[attr-defined]

    def done() -> bool:
        state = page.evaluate(  # type: ignore[attr-defined]
            "[document.querySelector('dialog.bulk').dataset.state,"
            " !document.querySelector('dialog.bulk .progress').hidden]"
        )
        progress["seen"] = progress["seen"] or bool(state[1])
        return state[0] == "done"

    wait(done)
    took = time.perf_counter() - started
    status = page.inner_text("dialog.bulk .status")  # type: ignore[attr-defined]
    page.click("dialog.bulk button[type=submit]")  # type: ignore[attr-defined]
    return took, progress["seen"], status


def measure_live(page: object, url: str, address: str, index: int) -> float:
    page.goto(f"{url}/")  # type: ignore[attr-defined]
    wait(lambda: page.evaluate("document.body.dataset.live === 'on'"))  # type: ignore[attr-defined]
    failure = Failure(f"ffff{index:012x}", "BenchError", f"live {index}", "value", "high")
    thread = threading.Thread(target=send_failures, args=(address, [failure]))
    thread.start()
    thread.join()  # the export call returned: the processor acknowledged (committed) it
    acknowledged = time.perf_counter()
    wait(lambda: not page.evaluate("document.querySelector('.banner').hidden"), 30)  # type: ignore[attr-defined]
    return time.perf_counter() - acknowledged


def summary(label: str, values: list[float], target: float, unit: str = "s") -> bool:
    median = statistics.median(values)
    ok = median <= target
    scale, digits = (1000, 0) if unit == "ms" else (1, 2)
    print(
        f"  {label:<44} median {median * scale:8.{digits}f} {unit}"
        f"  best {min(values) * scale:8.{digits}f} {unit}"
        f"  (target <= {target * scale:g} {unit}) {'OK' if ok else 'MISSED'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    ok = True
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "bench.db"
        seconds = fill_store(store, args.groups)
        size = store.stat().st_size / 1e6
        print(f"store: {args.groups:,} groups written in {seconds:.1f} s, {size:.0f} MB")
        serve = Serve(store)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"{serve.url}/login")
                page.fill("#actor", "bench")
                page.click("button[type=submit]")
                page.wait_for_selector("tr.row")
                print(f"\nlist of {args.groups:,} groups (50 rows with 24 h sparklines):")
                lists = [measure_list(page, serve.url) for _ in range(args.rounds)]
                summary("first contentful paint", [fcp for fcp, _ in lists], 1.0)
                ok = summary("rows on screen", [rows for _, rows in lists], 1.0) and ok
                print("\nfilter (Enter → rows on screen):")
                for text in (
                    "category:timeout",
                    "service:svc-3 severity:>=high",
                    "inventory unavailable",
                ):
                    page.goto(f"{serve.url}/")
                    page.wait_for_selector("tr.row")
                    tries = []
                    for _ in range(args.rounds):
                        page.fill(".search", "")
                        took, total = measure_filter(page, text)
                        tries.append(took)
                    ok = summary(f"{text!r} ({total:,} groups)", tries, 0.3, "ms") and ok
                print("\nbulk dismiss of everything matching a search (10,000 groups):")
                bulk = []
                for round_ in range(min(args.rounds, len(SERVICES))):
                    took, progress, status = measure_bulk(page, serve.url, SERVICES[round_])
                    bulk.append(took)
                    if round_ == 0:
                        print(f"  progress bar shown: {progress}; dialog says: {status!r}")
                ok = summary("click → per-group results", bulk, 5.0) and ok
                print("\nlive: acknowledged by the processor → 'N new' banner on the open page:")
                live = [
                    measure_live(page, serve.url, serve.address, index)
                    for index in range(args.rounds)
                ]
                ok = summary("latency", live, 1.0, "ms") and ok
                browser.close()
        finally:
            serve.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
