"""The whole engine from a config file: rules → fix hooks → verification, halts, alerts
over real OTLP, a restart in the middle."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from actions_support import FP, FP2, Clock, facts, python_hook, sqlite_action_store, wait_until
from faultlens_collector.actions import ActionEngine, load_config, parse_config
from faultlens_collector.alerts.sender import otlp_log_exporter
from otlp_receiver import OtlpReceiver, attributes

CONFIG = """
[engine]
verification_window = "5m"
tick_interval = "1h"

[hooks.restart-pool]
command = [{python}, {fix_script}, {log}]
timeout = "5s"
cooldown = "10m"

[hooks.page-oncall]
callable = "oncall_hooks:page"
cwd = {hooks_dir}
timeout = "5s"

[[rules]]
name = "pool-exhausted"
category = "resource"
message = "pool (exhausted|timeout)"
fix = ["restart-pool"]
alert = true

[[halts]]
name = "payments-down"
key = ["service.name"]
consecutive = 3
category = "connection"
hooks = ["page-oncall"]

[alerts]
kinds = ["new_failure", "rule_match", "halt", "fix_failed"]
"""

FIX_POOL = """
import json, sys
with open(sys.argv[1], "a") as log:
    log.write(json.load(sys.stdin)["failure"]["fingerprint"] + "\\n")
"""

ONCALL = """
import json
def page(payload):
    with open({out!r}, "w") as f:
        json.dump(payload["halt"], f)
"""


def write_config(tmp_path: Path) -> Path:
    hooks_dir = tmp_path / "hooks"
    hooks_dir.mkdir()
    (hooks_dir / "oncall_hooks.py").write_text(
        textwrap.dedent(ONCALL).format(out=str(tmp_path / "paged.json"))
    )
    (hooks_dir / "fix_pool.py").write_text(FIX_POOL)
    path = tmp_path / "faultlens.toml"
    path.write_text(
        CONFIG.format(
            python=json.dumps(sys.executable),
            fix_script=json.dumps(str(hooks_dir / "fix_pool.py")),
            log=json.dumps(str(tmp_path / "fixes.log")),
            hooks_dir=json.dumps(str(hooks_dir)),
        )
    )
    return path


def test_the_whole_loop(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    clock = Clock()
    store_path = tmp_path / "actions.db"
    pool = facts(category="resource", message="connection pool exhausted", severity="high")
    down = facts(
        fingerprint=FP2,
        category="connection",
        exception_type="ConnectionError",
        message="payments-db unreachable",
    )

    def start(endpoint: str) -> ActionEngine:
        engine = ActionEngine(
            config,
            sqlite_action_store(store_path),
            clock=clock,
            alert_exporter=otlp_log_exporter(endpoint, insecure=True, timeout=1.0),
            sender_options={"initial_backoff": 0.05, "max_backoff": 0.2},
        )
        engine.start()
        return engine

    with OtlpReceiver() as receiver:
        engine = start(receiver.endpoint)
        try:
            # A new failure group matching the fix rule: alerts, and the fix hook runs.
            engine.on_group_updated(pool, is_new=True)
            engine.on_group_updated(pool)  # in cooldown: the hook does not run twice
            wait_until(engine.verifier.pending)
            assert (tmp_path / "fixes.log").read_text() == f"{FP}\n"

            # Three connection failures in a row halt the service; the halt hook pages.
            for _ in range(3):
                engine.on_group_updated(down)
            (halt,) = engine.halts_in_force()
            wait_until((tmp_path / "paged.json").exists)
            wait_until(lambda: (tmp_path / "paged.json").read_text().endswith("}"))
            assert json.loads((tmp_path / "paged.json").read_text())["id"] == halt.id
            feed = engine.subscribe_halts()
        finally:
            engine.stop()

        # The processor restarts: the halt, the pending fix and the cooldown survive.
        engine = start(receiver.endpoint)
        try:
            assert engine.halts_in_force() == [halt]
            first = feed.get(timeout=0)
            assert first is not None
            assert first.kind == "snapshot"
            assert [fix.fingerprint for fix in engine.verifier.pending()] == [FP]
            clock.advance(301)
            engine.tick()
            report = engine.effectiveness()["restart-pool"]
            assert (report.samples, report.success_rate) == (1, 1.0)
            engine.on_group_updated(pool)  # cooldown persisted: still no second run
            engine.resume(key={"service.name": "payments"}, by="alice")
            assert engine.halts_in_force() == []
            kinds = ["new_failure", "rule_match", "halt"]
            assert receiver.wait_for(lambda: len(receiver.log_records()) == len(kinds))
            audit = engine.audit(limit=10)
        finally:
            engine.stop()
    assert (tmp_path / "fixes.log").read_text() == f"{FP}\n"
    received = [attributes(record.attributes) for _, record in receiver.log_records()]
    assert [attrs["faultlens.alert.kind"] for attrs in received] == kinds
    assert received[2]["faultlens.halt.id"] == halt.id
    assert sorted((record.hook, record.outcome) for record in audit) == [
        ("page-oncall", "ok"),
        ("restart-pool", "ok"),
    ]


def test_a_hook_named_by_several_matching_rules_runs_once(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    code = f"import os; open({str(log)!r}, 'a').write(os.environ['FAULTLENS_RULE'] + '\\n')"
    engine = ActionEngine(
        parse_config(
            {
                "engine": {"tick_interval": "1h"},
                "hooks": {"fix": {"command": python_hook(code), "cooldown": 0}},
                "rules": [
                    {"name": "by-category", "category": "value", "fix": ["fix"]},
                    {"name": "by-service", "service": "payments", "fix": ["fix"]},
                ],
            }
        ),
        clock=Clock(),
    )
    engine.start()
    try:
        engine.on_group_updated(facts())
        wait_until(engine.audit)
    finally:
        engine.stop()
    assert [(r.rule, r.outcome) for r in engine.audit()] == [("by-category", "ok")]
    assert log.read_text() == "by-category\n"
