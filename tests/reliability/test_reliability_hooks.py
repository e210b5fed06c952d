"""The action engine inside a real ``faultlens serve --config``: kill -9 during hook
execution, halts across restarts, hooks that hang, flood or fork, and the alerts hop down.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control.client import ControlClient

from tests.otlp_receiver import OtlpReceiver
from tests.processor_support import ServeProcess
from tests.reliability import load
from tests.reliability.harness import peak_rss_mib, report, rss_mib, server_output, wait_until
from tests.reliability.hookcrash import hook_table, kill_during_hooks, log_lines, send
from tests.reliability.hops import SlowReceiver, closed_port


def rule(name: str, fingerprints: list[str], hooks: list[str]) -> str:
    return (
        f"[[rules]]\nname = {json.dumps(name)}\nfingerprint = {json.dumps(fingerprints)}\n"
        f"fix = {json.dumps(hooks)}\n"
    )


@pytest.mark.slow
def test_kill_9_during_hook_execution_never_repeats_an_at_most_once_hook(
    tmp_path: Path,
) -> None:
    result = kill_during_hooks(tmp_path, cycles=2)
    report("kill -9 during hooks", result.figures())
    assert result.problems == []
    assert sorted(result.once_runs.values()) == [1, 1, 1, 1]
    assert result.durable_jobs_run_again == result.durable_jobs >= 4


@pytest.mark.slow
def test_halts_stay_in_force_across_kill_9_until_resumed(tmp_path: Path) -> None:
    config = tmp_path / "faultlens.toml"
    config.write_text(
        '[[halts]]\nname = "payments-down"\nkey = ["service.name"]\ncount = 3\nwindow = "1m"\n'
    )
    store = tmp_path / "store.db"

    def halts(address: str) -> list[Any]:
        with ControlClient(address) as client:
            return list(client.call("ListHalts", control_pb2.ListHaltsRequest()).halts)

    with ServeProcess(store, "--config", str(config)) as serve:
        send(serve.address, [f"00000000000000c{i}" for i in range(3)], service="payments")
        assert wait_until(lambda: len(halts(serve.address)) == 1, 10)
        halt = halts(serve.address)[0]
        serve.kill()
    with ServeProcess(store, "--config", str(config)) as serve:
        after_kill = halts(serve.address)
        with ControlClient(serve.address) as client:
            first_event = next(
                iter(client.stream("WatchHalts", control_pb2.WatchHaltsRequest(), timeout=5))
            )
            client.call("ResumeHalt", control_pb2.ResumeHaltRequest(id=halt.id, actor="test"))
        serve.kill()
    with ServeProcess(store, "--config", str(config)) as serve:
        after_resume = halts(serve.address)
    report("halts across kill -9", {"in force after kill": len(after_kill), "after resume": 0})
    assert [h.id for h in after_kill] == [halt.id]
    assert [item.string_value for item in after_kill[0].key] == ["payments"]
    assert halt.id in str(first_event)
    assert after_resume == []


@pytest.mark.slow
def test_hooks_that_hang_flood_or_fork_cost_ingest_nothing(tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    groups = {"hang": "00000000000000d1", "flood": "00000000000000d2", "fork": "00000000000000d3"}
    config = tmp_path / "faultlens.toml"
    config.write_text(
        '[engine]\nworkers = 3\nkill_grace = "0.5s"\n\n'
        + hook_table("hang", "hang", log, timeout="1s")
        + hook_table("flood", "flood", log, timeout="30s")
        + hook_table("fork", "fork", log, timeout="30s")
        + "".join(rule(name, [fp], [name]) for name, fp in groups.items())
    )
    with ServeProcess(tmp_path / "store.db", "--config", str(config)) as serve:
        quiet = load.drive(serve.address, clients=2, seconds=1.0, seed=31)
        before = rss_mib(serve)
        send(serve.address, list(groups.values()))
        busy = load.drive(serve.address, clients=2, seconds=1.0, seed=32)
        with ControlClient(serve.address) as client:

            def runs() -> dict[str, Any]:
                reply = client.call("ListHookRuns", control_pb2.ListHookRunsRequest(limit=10))
                return {run.hook: run for run in reply.runs}

            assert wait_until(lambda: set(runs()) >= set(groups), 20), runs()
            finished = runs()
        peak = peak_rss_mib(serve)
        output = server_output(serve)
    child = int(next(fields[1] for fields in log_lines(log) if fields[0] == "child"))
    report(
        "misbehaving hooks",
        {
            "ack p99 quiet / with hooks (ms)": [
                load.percentile(quiet.ok_latencies, 99, 1000),
                load.percentile(busy.ok_latencies, 99, 1000),
            ],
            "outcomes": {name: run.outcome for name, run in finished.items()},
            "flood output kept (bytes)": len(finished["flood"].output_tail),
            "rss before / peak (MiB)": [round(before, 1), round(peak, 1)],
        },
    )
    assert finished["hang"].outcome == "timeout"
    assert finished["flood"].outcome == "ok"
    assert len(finished["flood"].output_tail) <= 4096
    assert finished["fork"].outcome == "ok"
    assert not _alive(child), "the forked child outlived its hook"
    assert peak - before < 32  # the hook wrote 64 MiB
    assert busy.acknowledged_requests > 0.5 * quiet.acknowledged_requests
    assert dict(busy.other) == {}
    assert "Traceback" not in output


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for every purpose but its table entry.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.mark.slow
def test_the_alerts_hop_down_slow_or_back_after_kill_9_loses_no_alert(tmp_path: Path) -> None:
    port = closed_port()
    store = tmp_path / "store.db"
    fingerprints = [f"00000000000000e{i}" for i in range(8)]
    with ServeProcess(store, "--alerts", f"127.0.0.1:{port}") as serve:
        send(serve.address, fingerprints[:4])
        down = load.drive(serve.address, clients=2, seconds=1.0, seed=41)
        serve.kill()  # four new_failure alerts (and the load's) are in the outbox
    with (
        OtlpReceiver(port) as receiver,
        ServeProcess(store, "--alerts", receiver.endpoint) as serve,
    ):
        send(serve.address, fingerprints[4:], index=2)

        def alerted() -> set[str]:
            return {
                str(attrs.get("failure.fingerprint", ""))
                for _, record in receiver.log_records()
                for attrs in [{kv.key: kv.value.string_value for kv in record.attributes}]
            }

        assert wait_until(lambda: set(fingerprints) <= alerted(), 20), alerted()
        ids = [
            kv.value.string_value
            for _, record in receiver.log_records()
            for kv in record.attributes
            if kv.key == "faultlens.alert.id"
        ]
    with (
        SlowReceiver(1.0) as slow,
        ServeProcess(tmp_path / "slow.db", "--alerts", slow.endpoint) as serve,
    ):
        slow_hop = load.drive(serve.address, clients=2, seconds=1.0, seed=42)
    report(
        "alerts hop",
        {
            "alerts delivered after restart": len(ids),
            "duplicates": len(ids) - len(set(ids)),
            "ack p99 with the hop down / slow (ms)": [
                load.percentile(down.ok_latencies, 99, 1000),
                load.percentile(slow_hop.ok_latencies, 99, 1000),
            ],
        },
    )
    assert dict(down.other) == {}
    assert dict(slow_hop.other) == {}
    assert load.percentile(down.ok_latencies, 99) < 1.0
    assert load.percentile(slow_hop.ok_latencies, 99) < 1.0
