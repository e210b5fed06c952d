"""Action engine: what it costs the processor's ingest path, as ratios measured in one run.

* rule evaluation with 50 rules (indexed) per failure — no match, and a match;
* the same 50 rules evaluated one by one (what the index saves);
* ``ActionEngine.on_group_updated`` with those rules and two halt rules — a failure no rule
  matches, one whose fix hook is in its cooldown, and one that queues a hook job;
* ``HookExecutor.submit`` alone.

Targets: a known group's rule evaluation stays under the per-failure budget, and the
index beats evaluating the rules one by one at least tenfold. The rest is printed as
ratios: ``on_group_updated`` is meant to be called once per group per export request
(``occurrences=n``), not once per span.

Baselines: a dict lookup measured in the same run, and the processor's per-failure budget
(2.5 µs: 400k spans/s on one core, the no-op OTLP receiver's rate).

Run: ``.venv/bin/python benchmarks/bench_actions.py``. Machines are shared and noisy:
candidates run interleaved, each keeps its best round.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

from _harness import compare, report, verdict
from faultlens_collector.actions import ActionEngine, FailureFacts, HookJob, parse_config
from faultlens_collector.actions.matching import Matcher, RuleSet

BUDGET_SECONDS = 2.5e-6
CATEGORIES = ["timeout", "connection", "io", "value", "lookup", "dependency", "resource"]
SERVICES = [f"svc-{index}" for index in range(10)]


def fifty_rules() -> list[dict[str, Any]]:
    """A realistic mix: exact and glob types, services, categories, severities, messages."""
    rules: list[dict[str, Any]] = []
    for index in range(50):
        rule: dict[str, Any] = {"name": f"rule-{index}", "fix": ["fix"]}
        kind = index % 5
        if kind == 0:
            rule["exception_type"] = [f"app.errors.Error{index}", f"lib{index}.*"]
        elif kind == 1:
            rule["service"] = SERVICES[index % len(SERVICES)]
            rule["category"] = CATEGORIES[index % len(CATEGORIES)]
        elif kind == 2:
            rule["category"] = CATEGORIES[index % len(CATEGORIES)]
            rule["message"] = f"(pool|queue) {index} (exhausted|full)"
        elif kind == 3:
            rule["fingerprint"] = f"{index:016x}"
        else:
            rule["span_name"] = f"job-{index}*"
            rule["severity"] = "critical"
        rules.append(rule)
    return rules


def config(cooldown: float, dry_run: bool, halts: bool = True) -> Any:
    return parse_config(
        {
            "engine": {"queue_size": 100_000, "dry_run": dry_run, "tick_interval": "1h"},
            "hooks": {"fix": {"command": [sys.executable, "-c", "pass"], "cooldown": cooldown}},
            "rules": fifty_rules(),
            "halts": [
                {"name": "svc", "key": ["service.name"], "consecutive": 10**9},
                {
                    "name": "burst",
                    "key": ["service.name", "span.name"],
                    "count": 10**9,
                    "window": "1m",
                },
            ]
            if halts
            else [],
            "alerts": {"rate_spike": {"enabled": True}},
        },
        source="bench",
    )


def main() -> int:
    plain = FailureFacts(
        fingerprint="feedfacefeedface",
        exception_type="ValueError",
        message="invalid amount -3",
        category="value",
        severity="medium",
        service="svc-3",
        span_name="charge",
    )
    matching = FailureFacts(
        fingerprint="feedfacefeedface",
        exception_type="lib10.errors.Deadlock",  # matches rule-10's glob (no index)
        message="queue 12 full",
        category="value",
        severity="high",
        service="svc-1",  # rule-21 (svc-1, value?) and others are candidates
        span_name="charge",
    )
    rules = parse_config({"rules": [{**r, "fix": [], "alert": True} for r in fifty_rules()]})
    rule_set = RuleSet([(rule.match, rule.name) for rule in rules.rules])
    matchers = [Matcher(rule.match) for rule in rules.rules]
    assert rule_set.matches(plain) == ()
    assert rule_set.matches(matching), "the matching failure must match something"
    table = {f"{index:016x}": index for index in range(1000)}

    quiet = ActionEngine(config(cooldown=3600, dry_run=True))
    no_halts = ActionEngine(config(cooldown=3600, dry_run=True, halts=False))
    cooling = ActionEngine(config(cooldown=3600, dry_run=True))
    cooling.on_group_updated(matching)  # starts the cooldown
    queueing = ActionEngine(config(cooldown=0, dry_run=True))  # not started: jobs just queue
    counter = itertools.count()
    job = HookJob("bench-job", "fix", "rule-10", "fix", matching, 0.0)

    def queue_one() -> None:
        queueing.on_group_updated(matching)
        if queueing.executor.queued > 90_000:
            drain(queueing)

    def submit_one() -> None:
        queueing.executor.submit(job, cooldown=False)
        if next(counter) % 50_000 == 0:
            drain(queueing)

    timings = compare(
        {
            "dict lookup (baseline)": lambda: table.get("000000000000002a"),
            "50 rules, indexed: no match": lambda: rule_set.matches(plain),
            "50 rules, indexed: a match": lambda: rule_set.matches(matching),
            "50 rules, indexed: first sight of a group": lambda: cold(rule_set, plain),
            "50 rules, one by one: no match": lambda: [m for m in matchers if m(plain)],
            "on_group_updated: no rule matches": lambda: quiet.on_group_updated(plain),
            "on_group_updated: no match, no halt rules": lambda: no_halts.on_group_updated(plain),
            "on_group_updated: match, in cooldown": lambda: cooling.on_group_updated(matching),
            "on_group_updated: match, job queued": queue_one,
            "executor.submit alone": submit_one,
        },
        calls=20_000,
    )
    report(
        "action engine on the ingest path (50 rules, 2 halt rules)",
        timings,
        baseline="dict lookup (baseline)",
    )
    print(f"\n  against the per-failure budget of {BUDGET_SECONDS * 1e6:.1f} µs:")
    for name in (
        "50 rules, indexed: first sight of a group",
        "on_group_updated: no rule matches",
        "on_group_updated: no match, no halt rules",
        "on_group_updated: match, in cooldown",
        "on_group_updated: match, job queued",
        "executor.submit alone",
    ):
        print(f"  {name}: {timings[name].per_call / BUDGET_SECONDS:.3f}x")
    ok = True
    for name in ("50 rules, indexed: no match", "50 rules, indexed: a match"):
        ok &= verdict(name, timings[name].per_call / BUDGET_SECONDS, 1.0)
    ok &= verdict(
        "one by one / indexed (no match)",
        timings["50 rules, one by one: no match"].per_call
        / timings["50 rules, indexed: no match"].per_call,
        10.0,
        at_most=False,
    )
    return 0 if ok else 1


def cold(rule_set: RuleSet[str], facts: FailureFacts) -> object:
    """Rule evaluation for a group not seen before (the memo forgotten first)."""
    rule_set._memo.clear()
    return rule_set.matches(facts)


def drain(engine: ActionEngine) -> None:
    """Empty the engine's hook queue (nothing runs: the engine is not started)."""
    import queue

    while True:
        try:
            engine.executor._queue.get_nowait()
        except queue.Empty:
            return


if __name__ == "__main__":
    sys.exit(main())
