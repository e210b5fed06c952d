"""The actions configuration file: what it declares and how it rejects mistakes."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from actions_support import python_hook
from faultlens_collector.actions import ConfigError, load_config
from faultlens_collector.actions.config import parse_duration

FULL = """
[engine]
workers = 3
queue_size = 50
dry_run = false
verification_window = "15m"
output_limit = 1024
kill_grace = "200ms"

[hooks.restart-pool]
command = {command}
timeout = "45s"
cooldown = "10m"
delivery = "at_least_once"
env = {{ POOL = "main" }}
verification_window = "2h"

[hooks.notify]
callable = "ops.hooks:notify"
dry_run = true
inherit_env = false

[[rules]]
name = "db-timeouts"
category = ["timeout", "connection"]
severity = "high"
exception_type = ["psycopg2.*", "TimeoutError"]
service = "payments"
span_name = "charge*"
message = "pool (exhausted|timeout)"
attributes = {{ "db.system" = "postgresql", retry = 3 }}
fix = ["restart-pool", "notify"]
alert = true

[[rules]]
name = "one-group"
fingerprint = "0123456789abcdef"
handled = false
status = ["open", "regressed"]
alert = true

[[halts]]
name = "payments-down"
key = ["service.name"]
consecutive = 5
reset_window = "1m"
hooks = ["notify"]

[[halts]]
name = "symbol-burst"
key = ["symbol", "strategy"]
count = 10
window = "30s"
category = "dependency"

[alerts]
target = "collector:4317"
insecure = true
headers = {{ Authorization = "Bearer x" }}
kinds = ["halt", "fix_failed"]
min_severity = "medium"
retention = "1d"

[alerts.rate_spike]
bucket = "5m"
factor = 3.5
min_count = 4
warmup = 2
alpha = 0.5

[effectiveness]
warning = 0.8
critical = 0.4
min_samples = 3
window = 10
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "faultlens.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def toml_list(items: list[str]) -> str:
    return json.dumps(items)  # JSON strings are TOML basic strings


def test_full_config_is_read(tmp_path: Path) -> None:
    command = python_hook("print('ok')")
    config = load_config(write(tmp_path, FULL.format(command=toml_list(command))))

    assert config.engine.workers == 3
    assert config.engine.verification_window == 900.0
    assert config.engine.kill_grace == 0.2
    restart = config.hooks["restart-pool"]
    assert restart.command == tuple(command)
    assert restart.callable is None
    assert (restart.timeout, restart.cooldown, restart.verification_window) == (45.0, 600.0, 7200.0)
    assert restart.delivery == "at_least_once"
    assert dict(restart.env) == {"POOL": "main"}
    notify = config.hooks["notify"]
    assert notify.callable == "ops.hooks:notify"
    assert notify.dry_run is True
    assert notify.inherit_env is False

    rule = config.rules[0]
    assert rule.name == "db-timeouts"
    assert rule.match.categories == {"timeout", "connection"}
    assert rule.match.min_severity == "high"
    assert rule.match.exception_types == ("psycopg2.*", "TimeoutError")
    assert rule.match.services == {"payments"}
    assert rule.match.span_names == ("charge*",)
    assert rule.match.message == "pool (exhausted|timeout)"
    assert dict(rule.match.attributes) == {"db.system": ("postgresql",), "retry": ("3",)}
    assert rule.fix == ("restart-pool", "notify")
    assert rule.alert is True
    assert config.rules[1].match.fingerprints == {"0123456789abcdef"}
    assert config.rules[1].match.handled is False
    assert config.rules[1].match.statuses == {"open", "regressed"}

    down, burst = config.halts
    assert (down.mode, down.threshold, down.reset_window, down.hooks) == (
        "consecutive",
        5,
        60.0,
        ("notify",),
    )
    assert (burst.mode, burst.threshold, burst.window, burst.key) == (
        "window",
        10,
        30.0,
        ("symbol", "strategy"),
    )
    assert burst.match.categories == {"dependency"}

    assert config.alerts.target == "collector:4317"
    assert config.alerts.insecure is True
    assert dict(config.alerts.headers) == {"authorization": "Bearer x"}
    assert config.alerts.kinds == {"halt", "fix_failed"}
    assert config.alerts.min_severity == "medium"
    assert config.alerts.retention == 86400.0
    spike = config.alerts.rate_spike
    assert (spike.bucket, spike.factor, spike.min_count, spike.warmup, spike.alpha) == (
        300.0,
        3.5,
        4,
        2,
        0.5,
    )
    effectiveness = config.effectiveness
    assert (effectiveness.warning, effectiveness.critical) == (0.8, 0.4)
    assert (effectiveness.min_samples, effectiveness.window) == (3, 10)


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.rules == ()
    assert config.halts == ()
    assert config.effectiveness.warning == 0.70
    assert config.effectiveness.critical == 0.50
    assert "new_failure" in config.alerts.kinds
    assert config.halts == ()


def test_kinds_may_be_empty_to_send_no_alerts(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[alerts]\nkinds = []\n")).alerts.kinds == frozenset()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (1.5, 1.5),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        (" 3 ", 3.0),
        (".5s", 0.5),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["ten", "10 minutes", "-1", -1, True, [1], "1e3", float("inf")])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_toml_syntax_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[engine]\nworkers = 2\n\n[hooks.x\ncommand = ["true"]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == 4
    assert str(caught.value).startswith(f"{path}:4: invalid TOML")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read the file"):
        load_config(tmp_path / "nope.toml")


def test_non_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"name = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


TRUE = toml_list(python_hook("pass"))

BAD = [
    pytest.param(
        '[hooks.x]\ncommand = "restart --all"\n',
        "hooks.x.command: must be an argument list",
        id="shell-string",
    ),
    pytest.param("[hooks.x]\ntimeout = 1\n", "hooks.x: give exactly one of", id="no-program"),
    pytest.param(
        f"[hooks.x]\ncommand = {TRUE}\ncallable = 'a:b'\n",
        "hooks.x: give exactly one of",
        id="both-programs",
    ),
    pytest.param(
        "[hooks.x]\ncallable = 'os.system(\"rm\")'\n",
        "hooks.x.callable: 'os.system(\"rm\")' is not an import path",
        id="bad-callable",
    ),
    pytest.param(
        "[hooks.x]\ncommand = ['/no/such/program']\n",
        "hooks.x.command: program '/no/such/program' not found",
        id="missing-program",
    ),
    pytest.param(
        "[hooks.x]\ncommand = ['definitely-not-on-path-xyz']\n",
        "not found",
        id="program-not-on-path",
    ),
    pytest.param("[hooks.x]\ncommand = []\n", "hooks.x.command: must be a string or", id="empty"),
    pytest.param(
        f"[hooks.x]\ncommand = {TRUE}\ntimeout = '0s'\n",
        "hooks.x.timeout: must be a duration > 0",
        id="zero-timeout",
    ),
    pytest.param(
        f"[hooks.x]\ncommand = {TRUE}\ndelivery = 'exactly_once'\n",
        "hooks.x.delivery: 'exactly_once' is not",
        id="delivery",
    ),
    pytest.param(
        f"[hooks.x]\ncommand = {TRUE}\nenv = {{ FAULTLENS_FAILURE_TYPE = 'x' }}\n",
        "hooks.x.env: 'FAULTLENS_FAILURE_TYPE' is set by faultlens",
        id="reserved-env",
    ),
    pytest.param(
        f"[hooks.x]\ncommand = {TRUE}\nenv = {{ N = 3 }}\n",
        "hooks.x.env: the value of 'N' must be a string",
        id="env-value",
    ),
    pytest.param(
        f"[hooks.x]\ncommand = {TRUE}\ncwd = '/no/such/dir'\n",
        "hooks.x.cwd: '/no/such/dir' is not a directory",
        id="cwd",
    ),
    pytest.param(
        f"[hooks.x]\ncommand = {TRUE}\ntimout = 3\n", "hooks.x.timout: unknown key", id="typo"
    ),
    pytest.param(
        "[[rules]]\nname = 'r'\nfix = ['nope']\n",
        "rules[0](r).fix: no hook named 'nope' (hooks defined: none)",
        id="unknown-hook",
    ),
    pytest.param(
        "[[rules]]\nname = 'r'\ncategroy = 'io'\nalert = true\n",
        "rules[0](r).categroy: unknown key",
        id="rule-typo",
    ),
    pytest.param("[[rules]]\nalert = true\n", "rules[0].name: is required", id="rule-name"),
    pytest.param(
        "[[rules]]\nname = 'r'\ncategory = 'io'\n", "rules[0](r): has no action", id="no-action"
    ),
    pytest.param(
        "[[rules]]\nname = 'r'\nseverity = 'urgent'\nalert = true\n",
        "rules[0](r).severity: 'urgent' is not a severity",
        id="severity",
    ),
    pytest.param(
        "[[rules]]\nname = 'r'\nmessage = '(unclosed'\nalert = true\n",
        "rules[0](r).message: invalid regular expression",
        id="regex",
    ),
    pytest.param(
        "[[rules]]\nname = 'r'\nfingerprint = 'XYZ'\nalert = true\n",
        "rules[0](r).fingerprint: 'XYZ' is not a fingerprint",
        id="fingerprint",
    ),
    pytest.param(
        "[[rules]]\nname = 'r'\ncategory = 3\nalert = true\n",
        "rules[0](r).category: must be a string or a non-empty array of strings",
        id="category-type",
    ),
    pytest.param(
        "[[rules]]\nname = 'r'\nalert = true\n[[rules]]\nname = 'r'\nalert = true\n",
        "rules: the name 'r' is used twice",
        id="duplicate-rule",
    ),
    pytest.param("rules = 3\n", "rules: must be an array of tables", id="rules-type"),
    pytest.param(
        "[[halts]]\nname = 'h'\nkey = ['service.name']\n",
        "halts[0](h): give either 'consecutive = N' or both",
        id="halt-mode",
    ),
    pytest.param(
        "[[halts]]\nname = 'h'\nkey = ['service.name']\nconsecutive = 3\ncount = 3\n",
        "halts[0](h): give either",
        id="halt-both",
    ),
    pytest.param(
        "[[halts]]\nname = 'h'\nkey = ['service.name']\ncount = 3\n",
        "halts[0](h): give either",
        id="halt-no-window",
    ),
    pytest.param(
        "[[halts]]\nname = 'h'\nconsecutive = 3\n", "halts[0](h).key: is required", id="halt-key"
    ),
    pytest.param(
        "[[halts]]\nname = 'h'\nkey = ['service.name']\nconsecutive = 0\n",
        "halts[0](h).consecutive: must be >= 1",
        id="halt-threshold",
    ),
    pytest.param(
        "[effectiveness]\nwarning = 0.5\ncritical = 0.6\n",
        "effectiveness.critical: must not exceed warning",
        id="thresholds",
    ),
    pytest.param(
        "[effectiveness]\nwarning = 1.5\n",
        "effectiveness.warning: must be between 0.0 and 1.0",
        id="threshold-range",
    ),
    pytest.param(
        "[alerts]\nkinds = ['page_everyone']\n",
        "alerts.kinds: unknown alert kind 'page_everyone'",
        id="kind",
    ),
    pytest.param(
        "[alerts.rate_spike]\nfactor = 0.5\n",
        "alerts.rate_spike.factor: must be between 1.0",
        id="factor",
    ),
    pytest.param("[engine]\nworkers = true\n", "engine.workers: must be an integer", id="bool"),
    pytest.param("engine = 3\n", "engine: must be a table", id="engine-type"),
    pytest.param("[surprise]\n", "surprise: unknown key", id="top-level"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_mistakes_are_named_by_file_and_key_path(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: "), caught.value
    assert message in str(caught.value)


def test_a_relative_program_is_found_from_the_hook_cwd(tmp_path: Path) -> None:
    script = tmp_path / "fix.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    text = f"[hooks.x]\ncommand = ['./fix.sh']\ncwd = '{tmp_path}'\n"
    assert load_config(write(tmp_path, text)).hooks["x"].command == ("./fix.sh",)
    script.chmod(0o644)
    with pytest.raises(ConfigError, match="not found"):
        load_config(write(tmp_path, text))


def test_the_documented_example_is_a_valid_config(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parent.parent / "docs" / "actions.md"
    text = docs.read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    example = example.replace("/usr/local/bin/restart-pool", sys.executable)
    example = example.replace("/srv/ops", str(tmp_path))
    config = load_config(write(tmp_path, example))
    assert [rule.name for rule in config.rules] == ["db-timeouts"]
    assert [rule.name for rule in config.halts] == ["payments-down"]
    assert set(config.hooks) == {"restart-pool", "notify"}
