"""Real apps with the contrib instrumentations, served by real servers (issue 13, items 7 to 9).

``tests/apps/`` holds a Flask app (served by gunicorn, sync and gthread workers),
a Django app (gunicorn) and a FastAPI app (served by uvicorn), run under
``opentelemetry-instrument`` with ``opentelemetry-instrumentation-flask`` /
``-django`` / ``-fastapi`` (pinned in the
``test-apps`` extra; an environment of their own per interpreter — the suite's
own, 3.12 and 3.13 — see ``interpreters.py``).
Spans go the way the docs tell users to send them: ``OTEL_TRACES_EXPORTER=otlp,faultlens``,
every span to an OTLP receiver (here the test's, standing for Jaeger) and the
spans with failures to the real processor, ``faultlens serve``.

* N requests to a view that raises — recorded by the framework's error log, the
  contrib instrumentation and the span hook — make exactly one group of exactly N;
* a failure the view catches, logs and answers 200 for is ``handled=true`` and
  leaves the request span's status alone; a 500 is ``handled=false``, status ERROR;
* a burst of 100 failures, then SIGTERM with nothing exported yet (a 60 s batch
  delay): the processor stores all 100, under plain ``python``, gunicorn (both
  worker types) and uvicorn, and each process dies the way it would without
  faultlens.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faultlens_collector.control.client import ControlClient
from interpreters import VERSIONS, ZeroCode, environment, instrumented_environment
from otlp_receiver import OtlpReceiver, attributes
from processor_support import ServeProcess, all_groups

pytestmark = pytest.mark.slow

APPS = Path(__file__).resolve().parent / "apps"
STATUS_UNSET, STATUS_ERROR = 0, 2
DECLINED = "shop_services.PaymentDeclinedError"
OUT_OF_STOCK = "shop_services.OutOfStockError"


@dataclass(frozen=True)
class Server:
    """How to serve one app: the command after ``opentelemetry-instrument``."""

    name: str
    app: str  # "flask", "django" or "fastapi"
    argv: tuple[str, ...]
    #: What ``Popen.returncode`` is after SIGTERM, as without faultlens.
    sigterm_status: int
    #: What the app needs in its environment.
    env: tuple[tuple[str, str], ...] = ()

    def command(self, env: ZeroCode, port: int) -> list[str]:
        args = [part.format(port=port, apps=APPS) for part in self.argv]
        return [str(env.script("opentelemetry-instrument")), str(env.script(args[0])), *args[1:]]


GUNICORN = ("gunicorn", "-w", "1", "-b", "127.0.0.1:{port}", "--chdir", "{apps}")
SERVERS = {
    "gunicorn-sync": Server(
        "gunicorn-sync", "flask", (*GUNICORN, "-k", "sync", "flask_app:app"), 0
    ),
    "gunicorn-gthread": Server(
        "gunicorn-gthread",
        "flask",
        (*GUNICORN, "-k", "gthread", "--threads", "4", "flask_app:app"),
        0,
    ),
    "gunicorn-django": Server(
        "gunicorn-django",
        "django",
        (*GUNICORN, "-k", "sync", "django_app:application"),
        0,
        (("DJANGO_SETTINGS_MODULE", "django_settings"),),
    ),
    "uvicorn": Server(
        "uvicorn",
        "fastapi",
        (
            "uvicorn",
            "--app-dir",
            "{apps}",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "fastapi_app:app",
        ),
        -signal.SIGTERM,
    ),
}


@pytest.fixture(scope="module", params=VERSIONS)
def apps_env(request: pytest.FixtureRequest) -> ZeroCode:
    """The suite's interpreter (3.10/3.11: wrapping) and 3.12, 3.13 (the engine), each
    with the pinned frameworks."""
    version: str = request.param
    return environment(version, ("test-apps",))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class Running:
    """A subprocess whose output goes to a file (a pipe nobody reads would fill and block
    a server logging tracebacks)."""

    def __init__(self, command: list[str], env: dict[str, str], output: Path) -> None:
        self.output = output
        with output.open("w") as sink:
            self.process = subprocess.Popen(
                command, env=env, cwd=APPS, stdout=sink, stderr=subprocess.STDOUT, text=True
            )

    def log(self) -> str:
        return self.output.read_text()[-3000:]

    def wait_for_line(self, line: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if line in self.output.read_text().splitlines():
                return
            assert self.process.poll() is None, self.log()
            time.sleep(0.05)
        raise AssertionError(f"no {line!r} in time: {self.log()}")

    def wait_until_serving(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if _get(port, "/health") == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"server did not come up: {self.log()}")

    def terminate(self) -> int:
        """SIGTERM, then its exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(90)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


@contextmanager
def _serving(
    env: ZeroCode,
    server: Server,
    receiver: OtlpReceiver,
    serve: ServeProcess,
    output: Path,
    **extra: str,
) -> Iterator[tuple[Running, int]]:
    port = _free_port()
    running = Running(
        server.command(env, port),
        _environment(receiver, serve, server.name, **dict(server.env), **extra),
        output,
    )
    try:
        running.wait_until_serving(port)
        yield running, port
    finally:
        running.kill()


def _environment(
    receiver: OtlpReceiver, serve: ServeProcess, service: str, **extra: str
) -> dict[str, str]:
    return instrumented_environment(
        receiver.endpoint,
        service,
        OTEL_TRACES_EXPORTER="otlp,faultlens",
        FAULTLENS_ENDPOINT=serve.address,
        **extra,
    )


def _groups(serve: ServeProcess) -> dict[str, Any]:
    with ControlClient(serve.address) as client:
        return {group.exception_type: group for group in all_groups(client).values()}


def _request_spans(spans: list[Any], *paths: str) -> dict[str, list[Any]]:
    """The SERVER spans of each path, by the first segment of their route
    (``/pay/<int:order>``, Django's ``pay/<int:order>``, or the span name without one)."""
    found: dict[str, list[Any]] = {path: [] for path in paths}
    for span in spans:
        if span.kind != 2:  # SERVER
            continue
        route = str(attributes(span.attributes).get("http.route", span.name))
        segments = [part.strip() for part in route.split("/")]
        for path in paths:
            if path in segments:
                found[path].append(span)
    return found


def _exception_events(span: Any) -> list[dict[str, Any]]:
    """The attributes of each ``exception`` event of ``span``."""
    return [attributes(e.attributes) for e in span.events if e.name == "exception"]


@pytest.mark.parametrize(
    "name", ["gunicorn-sync", "gunicorn-gthread", "gunicorn-django", "uvicorn"]
)
def test_n_requests_make_one_group_of_n_and_handled_is_right(
    apps_env: ZeroCode, tmp_path: Path, name: str
) -> None:
    server = SERVERS[name]
    failing, handled = 12, 5
    with OtlpReceiver() as receiver, ServeProcess(tmp_path / "store.db") as serve:
        output = tmp_path / "server.log"
        with _serving(apps_env, server, receiver, serve, output) as (running, port):
            assert [_get(port, f"/pay/{i}") for i in range(failing)] == [500] * failing
            assert [_get(port, f"/stock/sku{i}") for i in range(handled)] == [200] * handled
            assert running.terminate() == server.sigterm_status, running.log()
        groups = _groups(serve)
        spans = [span for _, span in receiver.spans()]

    assert set(groups) == {DECLINED, OUT_OF_STOCK}, groups
    assert groups[DECLINED].count == failing
    assert groups[DECLINED].handled_count == 0
    assert groups[OUT_OF_STOCK].count == handled
    assert groups[OUT_OF_STOCK].handled_count == handled

    by_path = _request_spans(spans, "pay", "stock")
    assert len(by_path["pay"]) == failing
    assert len(by_path["stock"]) == handled
    for span in by_path["pay"]:
        assert span.status.code == STATUS_ERROR
        events = _exception_events(span)
        assert len(events) == 1, events  # one event per exception on the span it escaped
        assert events[0]["failure.handled"] is False
    for span in by_path["stock"]:
        assert span.status.code == STATUS_UNSET
        assert [e["failure.handled"] for e in _exception_events(span)] == [True]


def test_a_failed_outgoing_call_is_one_occurrence_through_the_requests_instrumentation(
    apps_env: ZeroCode, tmp_path: Path
) -> None:
    """``requests`` raises ``ConnectionError`` out of the requests instrumentation's client
    span (which records it), then the view either catches and logs it (200) or lets it
    escape to Flask (500: Flask logs it, the Flask instrumentation records it on the
    server span). Four layers see each exception; each request is one occurrence."""
    caught, escaped = 4, 3
    refused = "requests.exceptions.ConnectionError"
    with OtlpReceiver() as receiver, ServeProcess(tmp_path / "store.db") as serve:
        server = SERVERS["gunicorn-sync"]
        with _serving(apps_env, server, receiver, serve, tmp_path / "server.log") as (
            running,
            port,
        ):
            assert [_get(port, f"/quote/{i}") for i in range(caught)] == [200] * caught
            assert [_get(port, f"/order/{i}") for i in range(escaped)] == [500] * escaped
            assert running.terminate() == server.sigterm_status, running.log()
        groups = _groups(serve)
        spans = [span for _, span in receiver.spans()]

    assert set(groups) == {refused}, groups
    assert groups[refused].count == caught + escaped

    clients = [span for span in spans if span.kind == 3]  # CLIENT: the requests call
    assert len(clients) == caught + escaped
    fingerprints = set()
    for span in clients:
        (event,) = _exception_events(span)  # counted once, on the span it escaped first
        assert event["failure.count"] == 1
        assert span.status.code == STATUS_ERROR
        fingerprints.add(event["failure.fingerprint"])
    servers = _request_spans(spans, "quote", "order")
    assert [len(servers["quote"]), len(servers["order"])] == [caught, escaped]
    for span in servers["quote"]:  # the view's log.exception adds nothing; answered 200
        assert _exception_events(span) == []
        assert span.status.code == STATUS_UNSET
    for span in servers["order"]:  # escaped the request: a reference, not a second count
        (event,) = _exception_events(span)
        assert event["failure.count"] == 0
        assert span.status.code == STATUS_ERROR
        fingerprints.add(event["failure.fingerprint"])
    assert len(fingerprints) == 1


@pytest.mark.parametrize(
    "name", ["plain-python", "gunicorn-sync", "gunicorn-gthread", "gunicorn-django", "uvicorn"]
)
def test_a_burst_then_sigterm_loses_nothing(apps_env: ZeroCode, tmp_path: Path, name: str) -> None:
    burst = 100
    # Nothing leaves on its own before the signal: everything hangs on the shutdown path.
    slow = {"OTEL_BSP_SCHEDULE_DELAY": "60000"}
    with OtlpReceiver() as receiver, ServeProcess(tmp_path / "store.db") as serve:
        output = tmp_path / "process.log"
        if name == "plain-python":
            command = [
                str(apps_env.script("opentelemetry-instrument")),
                str(apps_env.python),
                str(APPS / "plain_burst.py"),
                str(burst),
            ]
            running = Running(command, _environment(receiver, serve, name, **slow), output)
            try:
                running.wait_for_line("ready")
                assert running.terminate() == -signal.SIGTERM, running.log()
            finally:
                running.kill()
        else:
            server = SERVERS[name]
            with _serving(apps_env, server, receiver, serve, output, **slow) as (running, port):
                assert {_get(port, f"/pay/{i}") for i in range(burst)} == {500}
                assert running.terminate() == server.sigterm_status, running.log()
        groups = _groups(serve)
    assert {kind: group.count for kind, group in groups.items()} == {DECLINED: burst}
