"""N ``faultlens serve`` processes on one PostgreSQL database, end to end.

Real processors (the console script, in subprocesses) share a database of a real
PostgreSQL server started by the tests. Clients spray the same failures at all of
them at once; the tests check what the fleet promises (docs/scale-out.md): exact
counts, one group and one new-failure alert (at a real OTLP log receiver) per
failure, one hook run per group per cooldown, one audit log, halts that SDK guards
connected to any processor learn within a second or two; a processor killed with
``kill -9`` loses nothing it acknowledged and the others keep going; a database
stopped under load makes ingest answer ``UNAVAILABLE`` with RetryInfo, and the fleet
recovers on its own when it is back.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultlens.resilience import HaltedError, RemoteHalts, constant
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control.client import ControlClient
from faultlens_collector.control.messages import key_items

from tests.actions_support import wait_until
from tests.otlp_receiver import OtlpReceiver, attributes
from tests.postgres_support import PASSWORD, PostgresCluster, fresh_database
from tests.processor_support import ServeProcess, all_groups
from tests.reliability import load

pytestmark = pytest.mark.slow

PAYMENTS = {"service.name": "payments"}
RECORD_HOOK = """
import json, os, sys
job = json.load(sys.stdin)
with open(os.environ["OUT"], "a") as out:
    line = {"fingerprint": job["failure"]["fingerprint"], "pid": os.getppid()}
    out.write(json.dumps(line) + "\\n")
"""


def fleet_config(directory: Path) -> Path:
    """Every failure runs the ``record`` hook (cooldown one hour) and new failures alert."""
    path = directory / "fleet.toml"
    path.write_text(
        "[hooks.record]\n"
        f"command = {json.dumps([sys.executable, '-c', RECORD_HOOK])}\n"
        f'env = {{ OUT = "{directory / "runs.jsonl"}" }}\n'
        'cooldown = "1h"\n'
        "\n[[rules]]\n"
        'name = "everything"\n'
        'fix = ["record"]\n'
    )
    return path


def hook_runs(directory: Path) -> Counter[str]:
    path = directory / "runs.jsonl"
    if not path.exists():
        return Counter()
    return Counter(json.loads(line)["fingerprint"] for line in path.read_text().splitlines())


def new_failure_alerts(receiver: OtlpReceiver) -> Counter[str]:
    found: Counter[str] = Counter()
    for _, record in receiver.log_records():
        alert = attributes(record.attributes)
        if alert.get("faultlens.alert.kind") == "new_failure":
            found[str(alert.get("failure.fingerprint"))] += 1
    return found


def stored(address: str) -> dict[str, int]:
    with ControlClient(address) as client:
        return {fp: group.count for fp, group in all_groups(client).items()}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


class Fleet:
    """``size`` processors on one database, stopped at the end of the test."""

    def __init__(self, url: str, *args: str, size: int = 3) -> None:
        self.url = url
        self.args = args
        self.processors = [self.start() for _ in range(size)]

    def start(self) -> ServeProcess:
        return ServeProcess(self.url, *self.args).start(timeout=90)  # type: ignore[arg-type]

    @property
    def addresses(self) -> list[str]:
        return [serve.address for serve in self.processors]

    def stop(self) -> None:
        for serve in self.processors:
            if serve.process is not None and serve.process.poll() is None:
                serve.stop()


@pytest.fixture
def fleet_url(postgres_cluster: PostgresCluster) -> str:
    return fresh_database(postgres_cluster)


def spray(
    addresses: list[str], bodies: list[load.Body], per_processor: int = 2
) -> tuple[list[load.Client], threading.Event]:
    """Clients sending the same requests to every processor, started."""
    stop = threading.Event()
    clients = [
        load.Client(address, bodies, stop, timeout=30, give_up_when_unreachable=True)
        for address in addresses
        for _ in range(per_processor)
    ]
    for client in clients:
        client.start()
    return clients, stop


def finish(clients: list[load.Client], stop: threading.Event) -> load.LoadReport:
    stop.set()
    total = load.LoadReport()
    for client in clients:
        client.join(60)
        assert not client.is_alive(), "a client hung"
        total.merge(client.report)
    return total


def test_three_processors_count_exactly_alert_once_run_hooks_once_and_share_halts(
    fleet_url: str, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    fleet = Fleet(fleet_url, "--config", str(fleet_config(tmp_path)), "--alerts", receiver.endpoint)
    guards: list[RemoteHalts] = []
    try:
        bodies = load.bodies(19, count=8, spans=20, fingerprints=5)
        clients, stop = spray(fleet.addresses, bodies)
        time.sleep(4)
        report = finish(clients, stop)
        assert report.acknowledged_requests > 0
        counts = [stored(address) for address in fleet.addresses]
        assert counts[0] == counts[1] == counts[2]  # one database, seen from every processor
        fingerprints = set(counts[0])
        assert len(fingerprints) == 5
        # Exact: every acknowledged occurrence counted once (no answer was uncertain here).
        assert report.uncertain == 0, report.figures()
        assert sum(counts[0].values()) == report.acknowledged

        # One new-failure alert and one hook run per group, whichever processor saw it.
        wait_until(lambda: set(new_failure_alerts(receiver)) == fingerprints, timeout=60)
        wait_until(lambda: set(hook_runs(tmp_path)) == fingerprints, timeout=60)
        time.sleep(2)  # room for a duplicate to show up
        assert new_failure_alerts(receiver) == Counter(dict.fromkeys(fingerprints, 1))
        assert hook_runs(tmp_path) == Counter(dict.fromkeys(fingerprints, 1))
        # One audit log: every processor lists every run.
        for address in fleet.addresses:
            with ControlClient(address) as client:
                wait_until(
                    lambda client=client: (
                        len(client.call("ListHookRuns", control_pb2.ListHookRunsRequest()).runs)
                        == 5
                    ),
                    timeout=30,
                )

        # A halt started on the first processor is refused by guards on the others.
        for address in fleet.addresses[1:]:
            guard = RemoteHalts(address, heartbeat=1, backoff=constant(0.05))
            guards.append(guard)
            assert guard.wait_synced(30)
            guard.guard(PAYMENTS)  # nothing halted yet
        started = time.monotonic()
        with ControlClient(fleet.addresses[0]) as client:
            halt = client.call(
                "StartHalt",
                control_pb2.StartHaltRequest(key=key_items(PAYMENTS), reason="incident"),
            )
        for guard in guards:
            wait_until(lambda guard=guard: guard.halt_for(PAYMENTS) is not None, timeout=15)
        learned = time.monotonic() - started
        print(f"\nhalt started on one processor, known to guards on the others in {learned:.2f} s")
        assert learned < 5.0  # ~0.5-1 s unloaded; a loaded shared machine gets slack
        for guard in guards:
            with pytest.raises(HaltedError):
                guard.guard(PAYMENTS)
        # Lifted on another processor: every guard learns that too; one audit log of both.
        with ControlClient(fleet.addresses[2]) as client:
            client.call("ResumeHalt", control_pb2.ResumeHaltRequest(id=halt.id))
        for guard in guards:
            wait_until(lambda guard=guard: guard.halt_for(PAYMENTS) is None, timeout=15)
        with ControlClient(fleet.addresses[1]) as client:
            audit = client.call("ListAudit", control_pb2.ListAuditRequest())
        assert [action.action for action in audit.actions][:2] == ["resume", "halt"]
    finally:
        for guard in guards:
            guard.close()
        fleet.stop()


def test_a_processor_killed_mid_stream_loses_nothing_it_acknowledged(
    fleet_url: str, tmp_path: Path
) -> None:
    fleet = Fleet(fleet_url)
    try:
        bodies = load.bodies(23, count=8, spans=20, fingerprints=30)
        clients, stop = spray(fleet.addresses, bodies)
        time.sleep(2.5)
        fleet.processors[1].kill()
        survivors = [c for c in clients if c.address != fleet.addresses[1]]
        before = sum(c.report.acknowledged_requests for c in survivors)
        time.sleep(2.5)
        after = sum(c.report.acknowledged_requests for c in survivors)
        report = finish(clients, stop)
        assert after > before  # the others kept going
        total = sum(stored(fleet.addresses[0]).values())
        assert report.acknowledged <= total <= report.acknowledged + report.uncertain, (
            report.figures()
        )
        # Restarted, it catches up: it serves the fleet's groups at once.
        fleet.processors[1] = fleet.start()
        assert sum(stored(fleet.processors[1].address).values()) == total
    finally:
        fleet.stop()


def test_the_database_stopped_under_load_means_retry_later_then_recovery(
    fleet_url: str, postgres_cluster: PostgresCluster
) -> None:
    fleet = Fleet(fleet_url, size=2)
    try:
        bodies = load.bodies(29, count=8, spans=20, fingerprints=20)
        clients, stop = spray(fleet.addresses, bodies)
        time.sleep(2)
        postgres_cluster.stop()
        try:
            refused_before = sum(c.report.refused for c in clients)
            wait_until(
                lambda: sum(c.report.refused for c in clients) > refused_before + 4, timeout=60
            )
        finally:
            postgres_cluster.start()
        restarted = sum(c.report.acknowledged_requests for c in clients)
        wait_until(
            lambda: sum(c.report.acknowledged_requests for c in clients) > restarted + 10,
            timeout=90,
        )
        report = finish(clients, stop)
        assert report.refused > 0  # UNAVAILABLE with RetryInfo while it was away
        assert all(
            serve.process is not None and serve.process.poll() is None for serve in fleet.processors
        )
        total = sum(stored(fleet.addresses[1]).values())
        assert report.acknowledged <= total <= report.acknowledged + report.uncertain, (
            report.figures()
        )
    finally:
        fleet.stop()
    logged = "".join(line for serve in fleet.processors for line in serve.output)
    assert "cannot commit" in logged  # the outage was reported…
    assert PASSWORD not in logged  # …without the password
    assert "Traceback" not in logged


def test_the_url_takes_libpq_parameters_and_the_password_from_pgpassword(
    fleet_url: str,
) -> None:
    """libpq's own settings work: parameters in the URL's query string (``sslmode``,
    ``application_name``) and the password from ``PGPASSWORD`` instead of the URL."""
    url = fleet_url
    user_part, _, rest = url.partition("@")
    scheme_user, _, password = user_part.rpartition(":")
    bare = f"{scheme_user}@{rest}?sslmode=disable&application_name=faultlens-test"
    serve = ServeProcess(bare, env={"PGPASSWORD": password})  # type: ignore[arg-type]
    with serve.start(timeout=90):
        assert stored(serve.address) == {}
        assert password not in "".join(serve.output)
