"""The actions configuration file (``faultlens serve --config FILE``), in TOML.

The file is the *only* place that names what runs: hooks (an argument list or
an import path), the rules that trigger them, halt rules and alert settings.
Nothing received over the wire can add, name or change any of it. See
``docs/actions.md`` for the full reference; in short::

    [engine]
    verification_window = "10m"

    [hooks.restart-pool]
    command = ["/usr/local/bin/restart-pool", "--service", "payments"]
    timeout = "30s"
    cooldown = "10m"

    [[rules]]
    name = "db-timeouts"
    category = ["timeout", "connection"]
    severity = "high"                     # minimum
    exception_type = "psycopg2.*"         # exact or glob
    fix = ["restart-pool"]

    [[halts]]
    name = "payments-down"
    key = ["service.name"]
    consecutive = 5

Durations are seconds (a number) or a string with a unit: ``"500ms"``,
``"30s"``, ``"10m"``, ``"2h"``, ``"7d"``. Unknown keys are errors (a typo must
not silently disable a rule). Every error is a :class:`ConfigError` naming the
file, the key path and — for TOML syntax errors — the line.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar

from faultlens import semconv

from faultlens_collector.actions.facts import attribute_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

T = TypeVar("T")

Delivery = Literal["at_most_once", "at_least_once"]
HaltMode = Literal["consecutive", "window"]

#: Alert kinds the engine can send (``[alerts] kinds`` picks among them).
ALERT_KINDS: Final = (
    "new_failure",
    "regression",
    "reopened",
    "rule_match",
    "halt",
    "fix_failed",
    "fix_ineffective",
    "breaker_open",
    "rate_spike",
    "cascade",
)

#: Environment variable prefix the engine sets for hooks; a hook's ``env`` may not use it.
RESERVED_ENV_PREFIX: Final = "FAULTLENS_FAILURE_"
_RESERVED_ENV: Final = frozenset(
    {
        "FAULTLENS_HOOK",
        "FAULTLENS_RULE",
        "FAULTLENS_PURPOSE",
        "FAULTLENS_JOB_ID",
        "FAULTLENS_DRY_RUN",
        "FAULTLENS_HALT_ID",
        "FAULTLENS_HALT_KEY",
    }
)

#: A consecutive-failure streak ends after this long without a failure (seconds).
DEFAULT_RESET_WINDOW: float | None = 300.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_CALLABLE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class ConfigError(ValueError):
    """A malformed configuration: ``<file>[:<line>]: <key path>: <what is wrong>``."""

    def __init__(self, source: str, key_path: str, message: str, line: int | None = None) -> None:
        where = f"{source}:{line}" if line is not None else source
        text = f"{where}: {key_path}: {message}" if key_path else f"{where}: {message}"
        super().__init__(text)
        self.source = source
        self.key_path = key_path
        self.line = line


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """What a rule (or halt rule) matches; every given criterion must hold.

    A criterion left out matches everything. ``exception_types``, ``span_names``
    and attribute values may be globs (``*``, ``?``, ``[...]``); ``message`` is a
    regular expression searched anywhere in the message; ``min_severity`` is a
    minimum (``high`` matches ``high`` and ``critical``).
    """

    categories: frozenset[str] | None = None
    min_severity: str | None = None
    exception_types: tuple[str, ...] | None = None
    services: frozenset[str] | None = None
    span_names: tuple[str, ...] | None = None
    message: str | None = None
    fingerprints: frozenset[str] | None = None
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    handled: bool | None = None
    statuses: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class HookConfig:
    """A hook: an argument list (``command``) or a Python callable (``callable``).

    Both run in a child process in its own process group, get the failure as
    JSON on stdin and as ``FAULTLENS_FAILURE_*`` environment variables, and are
    killed (with any children) after ``timeout`` seconds.
    """

    name: str
    command: tuple[str, ...] | None = None
    callable: str | None = None
    timeout: float = 30.0
    cooldown: float = 600.0
    dry_run: bool = False
    delivery: Delivery = "at_most_once"
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    inherit_env: bool = True
    verification_window: float | None = None


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Failures matching ``match`` run the ``fix`` hooks and, with ``alert``, send
    a ``rule_match`` alert (once per group, again after it regresses)."""

    name: str
    match: MatchConfig
    fix: tuple[str, ...] = ()
    alert: bool = False


@dataclass(frozen=True, slots=True)
class HaltRuleConfig:
    """Halt a key after ``threshold`` consecutive failures, or ``threshold`` within
    ``window`` seconds (``mode``), among failures matching ``match``."""

    name: str
    key: tuple[str, ...]
    mode: HaltMode
    threshold: int
    window: float | None = None
    reset_window: float | None = 300.0
    match: MatchConfig = field(default_factory=MatchConfig)
    hooks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RateSpikeConfig:
    """A group's count in the current ``bucket`` above ``factor`` times its EWMA
    baseline (and at least ``min_count``), after ``warmup`` buckets of history."""

    enabled: bool = True
    bucket: float = 60.0
    factor: float = 5.0
    min_count: int = 10
    warmup: int = 5
    alpha: float = 0.3
    max_groups: int = 10_000


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """Where alerts go and which are sent."""

    target: str | None = None
    insecure: bool | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    kinds: frozenset[str] = frozenset(ALERT_KINDS)
    min_severity: str = "low"
    retention: float = 7 * 86400.0
    rate_spike: RateSpikeConfig = field(default_factory=RateSpikeConfig)


@dataclass(frozen=True, slots=True)
class EffectivenessConfig:
    """A hook whose recent fix success rate is under ``warning`` (``critical``) —
    over its last ``window`` decided fixes, once it has ``min_samples`` — alerts."""

    warning: float = 0.70
    critical: float = 0.50
    min_samples: int = 5
    window: int = 20


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Execution settings shared by every hook."""

    workers: int = 2
    queue_size: int = 1000
    dry_run: bool = False
    verification_window: float = 600.0
    output_limit: int = 4096
    kill_grace: float = 1.0
    tick_interval: float = 1.0


@dataclass(frozen=True, slots=True)
class ActionsConfig:
    """A whole configuration file, validated."""

    source: str = "<defaults>"
    engine: EngineConfig = field(default_factory=EngineConfig)
    hooks: Mapping[str, HookConfig] = field(default_factory=dict)
    rules: tuple[RuleConfig, ...] = ()
    halts: tuple[HaltRuleConfig, ...] = ()
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    effectiveness: EffectivenessConfig = field(default_factory=EffectivenessConfig)


def load_config(path: str | Path) -> ActionsConfig:
    """Read and validate a configuration file; raise :class:`ConfigError` if unusable."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read the file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "", f"not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        line, message = _toml_error(exc)
        raise ConfigError(source, "", f"invalid TOML: {message}", line) from None
    return parse_config(data, source=source)


def parse_config(data: Mapping[str, Any], *, source: str = "<config>") -> ActionsConfig:
    """Validate an already parsed TOML document (see :func:`load_config`)."""
    root = _Table(data, "", source)
    engine = _engine(root.table("engine"))
    hooks = _hooks(root.table("hooks"))
    rules = tuple(_rule(item, hooks) for item in root.tables("rules", lambda t: t.data.get("name")))
    halts = tuple(
        _halt_rule(item, hooks) for item in root.tables("halts", lambda t: t.data.get("name"))
    )
    _unique(root, "rules", [rule.name for rule in rules])
    _unique(root, "halts", [rule.name for rule in halts])
    alerts = _alerts(root.table("alerts"))
    effectiveness = _effectiveness(root.table("effectiveness"))
    root.finish()
    return ActionsConfig(
        source=source,
        engine=engine,
        hooks=MappingProxyType(hooks),
        rules=rules,
        halts=halts,
        alerts=alerts,
        effectiveness=effectiveness,
    )


def parse_duration(value: object) -> float:
    """Seconds from a number or a ``"<number><unit>"`` string; ValueError if malformed."""
    if isinstance(value, bool):
        raise ValueError("expected a duration, got a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            raise ValueError(f'{value!r} is not a duration (e.g. 30, "500ms", "10m", "2h")')
        seconds = float(found.group(1)) * _UNITS[found.group(2)]
    else:
        raise ValueError(f"expected a duration, got {type(value).__name__}")
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"a duration must be a finite number >= 0, got {value!r}")
    return seconds


class _Table:
    """One TOML table being read: remembers its key path and which keys were used."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        self.data = data
        self.path = path
        self.source = source
        self._used: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.source, self.where(key) if key else self.path, message)

    def get(self, key: str, convert: Callable[[object], T], default: T) -> T:
        """The converted value of ``key``, or ``default`` when it is absent."""
        self._used.add(key)
        return self._convert(key, convert) if key in self.data else default

    def require(self, key: str, convert: Callable[[object], T]) -> T:
        """The converted value of ``key``; an error when it is absent."""
        self._used.add(key)
        if key not in self.data:
            raise self.error(key, "is required")
        return self._convert(key, convert)

    def _convert(self, key: str, convert: Callable[[object], T]) -> T:
        try:
            return convert(self.data[key])
        except (TypeError, ValueError) as exc:
            raise self.error(key, str(exc)) from None

    def table(self, key: str) -> _Table:
        self._used.add(key)
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            raise self.error(key, f"must be a table, got {_kind(value)}")
        return _Table(value, self.where(key), self.source)

    def tables(self, key: str, label: Callable[[_Table], object]) -> list[_Table]:
        """An array of tables (``[[key]]``); paths read ``key[i]`` or ``key[i](name)``."""
        self._used.add(key)
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"must be an array of tables ([[{key}]]), got {_kind(value)}")
        result = []
        for index, item in enumerate(value):
            path = f"{self.where(key)}[{index}]"
            if not isinstance(item, Mapping):
                raise ConfigError(self.source, path, f"must be a table, got {_kind(item)}")
            table = _Table(item, path, self.source)
            name = label(table)
            if isinstance(name, str) and name:
                table.path = f"{path}({name})"
            result.append(table)
        return result

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self._used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _toml_error(exc: Exception) -> tuple[int | None, str]:
    line = getattr(exc, "lineno", None)
    message = getattr(exc, "msg", None) or str(exc)
    if line is None:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        if found:
            line = int(found.group(1))
            message = str(exc)[: found.start()].strip()
    return line, message


def _kind(value: object) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, got {_kind(value)}")
    return value


def _pattern(pattern: re.Pattern[str], what: str) -> Callable[[object], str]:
    """A converter accepting strings that match ``pattern``."""

    def convert(value: object) -> str:
        text = _string(value)
        if not pattern.match(text):
            raise ValueError(f"{text!r} is not {what}")
        return text

    return convert


_name = _pattern(_NAME, "a valid name (letters, digits, '_', '-', '.')")
_callable = _pattern(_CALLABLE, "an import path of the form 'package.module:function'")


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be true or false, got {_kind(value)}")
    return value


def _int(minimum: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"must be an integer, got {_kind(value)}")
        if value < minimum:
            raise ValueError(f"must be >= {minimum}, got {value}")
        return value

    return convert


def _number(minimum: float, maximum: float = float("inf")) -> Callable[[object], float]:
    def convert(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"must be a number, got {_kind(value)}")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}, got {value}")
        return float(value)

    return convert


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be a duration > 0, got {value!r}")
    return seconds


def _strings(value: object) -> tuple[str, ...]:
    """A string or a non-empty array of strings."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not value:
        got = "an empty array" if value == [] else _kind(value)
        raise TypeError(f"must be a string or a non-empty array of strings, got {got}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"item {index} must be a string, got {_kind(item)}")
    return tuple(value)


def _severity(value: object) -> str:
    text = _string(value)
    if text not in semconv.SEVERITY_RANK:
        raise ValueError(f"{text!r} is not a severity ({', '.join(semconv.SEVERITIES)})")
    return text


def _regex(value: object) -> str:
    text = _string(value)
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {text!r}: {exc}") from None
    return text


def _fingerprints(value: object) -> frozenset[str]:
    items = _strings(value)
    for item in items:
        if not re.fullmatch(r"[0-9a-f]{16}", item):
            raise ValueError(f"{item!r} is not a fingerprint (16 lowercase hex digits)")
    return frozenset(items)


def _attribute_values(value: object) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise TypeError(f"must be a table of attribute = value(s), got {_kind(value)}")
    result: dict[str, tuple[str, ...]] = {}
    for key, item in value.items():
        if isinstance(item, (bool, int, float)):
            result[key] = (attribute_text(item),)
            continue
        try:
            result[key] = _strings(item)
        except TypeError as exc:
            raise TypeError(f"attribute {key!r} {exc}") from None
    return MappingProxyType(result)


def _match(table: _Table) -> MatchConfig:
    def frozen(value: object) -> frozenset[str]:
        return frozenset(_strings(value))

    return MatchConfig(
        categories=table.get("category", frozen, None),
        min_severity=table.get("severity", _severity, None),
        exception_types=table.get("exception_type", _strings, None),
        services=table.get("service", frozen, None),
        span_names=table.get("span_name", _strings, None),
        message=table.get("message", _regex, None),
        fingerprints=table.get("fingerprint", _fingerprints, None),
        attributes=table.get("attributes", _attribute_values, MappingProxyType({})),
        handled=table.get("handled", _bool, None),
        statuses=table.get("status", frozen, None),
    )


def _engine(table: _Table) -> EngineConfig:
    config = EngineConfig(
        workers=table.get("workers", _int(1), 2),
        queue_size=table.get("queue_size", _int(1), 1000),
        dry_run=table.get("dry_run", _bool, False),
        verification_window=table.get("verification_window", _positive_duration, 600.0),
        output_limit=table.get("output_limit", _int(256), 4096),
        kill_grace=table.get("kill_grace", parse_duration, 1.0),
        tick_interval=table.get("tick_interval", _positive_duration, 1.0),
    )
    table.finish()
    return config


def _hooks(table: _Table) -> dict[str, HookConfig]:
    hooks = {}
    for name in table.data:
        hook_table = table.table(name)
        try:
            _name(name)
        except ValueError as exc:
            raise hook_table.error("", str(exc)) from None
        hooks[name] = _hook(name, hook_table)
    table.finish()
    return hooks


def _hook(name: str, table: _Table) -> HookConfig:
    command = table.get("command", _command, None)
    target = table.get("callable", _callable, None)
    if (command is None) == (target is None):
        raise table.error("", "give exactly one of 'command' (an argument list) or 'callable'")
    cwd = table.get("cwd", _string, None)
    if cwd is not None and not Path(cwd).is_dir():
        raise table.error("cwd", f"{cwd!r} is not a directory")
    if command is not None and not program_exists(command[0], cwd):
        raise table.error("command", f"program {command[0]!r} not found (or not executable)")
    hook = HookConfig(
        name=name,
        command=command,
        callable=target,
        timeout=table.get("timeout", _positive_duration, 30.0),
        cooldown=table.get("cooldown", parse_duration, 600.0),
        dry_run=table.get("dry_run", _bool, False),
        delivery=table.get("delivery", _delivery, "at_most_once"),
        env=table.get("env", _env, MappingProxyType({})),
        cwd=cwd,
        inherit_env=table.get("inherit_env", _bool, True),
        verification_window=table.get("verification_window", _positive_duration, None),
    )
    table.finish()
    return hook


def program_exists(program: str, cwd: str | None) -> bool:
    """Whether the hook's program can run: a path (relative to the hook's ``cwd``) to an
    executable file, or a bare name found on ``PATH``."""
    if os.sep in program:
        candidate = Path(cwd or ".") / program
        return candidate.is_file() and os.access(candidate, os.X_OK)
    return shutil.which(program) is not None


def _command(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(
            'must be an argument list such as ["/usr/bin/restart", "--pool", "main"], '
            "not a shell string"
        )
    items = _strings(value)
    if not items[0]:
        raise ValueError("the program (item 0) must not be empty")
    if any("\x00" in item for item in items):
        raise ValueError("arguments must not contain NUL characters")
    return items


def _delivery(value: object) -> Delivery:
    text = _string(value)
    if text == "at_most_once":
        return "at_most_once"
    if text == "at_least_once":
        return "at_least_once"
    raise ValueError(f"{text!r} is not 'at_most_once' or 'at_least_once'")


def _env(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f'must be a table of NAME = "value", got {_kind(value)}')
    result = {}
    for key, item in value.items():
        if not _ENV_NAME.match(key):
            raise ValueError(f"{key!r} is not a valid environment variable name")
        if key.startswith(RESERVED_ENV_PREFIX) or key in _RESERVED_ENV:
            raise ValueError(f"{key!r} is set by faultlens for every hook; choose another name")
        if not isinstance(item, str) or "\x00" in item:
            raise TypeError(f"the value of {key!r} must be a string without NUL characters")
        result[key] = item
    return MappingProxyType(result)


def _hook_refs(table: _Table, key: str, hooks: Mapping[str, HookConfig]) -> tuple[str, ...]:
    none: tuple[str, ...] = ()
    names = table.get(key, lambda value: none if value == [] else _strings(value), none)
    for name in names:
        if name not in hooks:
            known = ", ".join(sorted(hooks)) or "none"
            raise table.error(key, f"no hook named {name!r} (hooks defined: {known})")
    return names


def _rule(table: _Table, hooks: Mapping[str, HookConfig]) -> RuleConfig:
    rule = RuleConfig(
        name=table.require("name", _name),
        match=_match(table),
        fix=_hook_refs(table, "fix", hooks),
        alert=table.get("alert", _bool, False),
    )
    if not rule.fix and not rule.alert:
        raise table.error("", "has no action: give 'fix' hooks and/or 'alert = true'")
    table.finish()
    return rule


def _halt_rule(table: _Table, hooks: Mapping[str, HookConfig]) -> HaltRuleConfig:
    name = table.require("name", _name)
    key = table.require("key", _strings)
    consecutive = table.get("consecutive", _int(1), None)
    count = table.get("count", _int(1), None)
    window = table.get("window", _positive_duration, None)
    mode: HaltMode
    if consecutive is not None and count is None and window is None:
        mode, threshold = "consecutive", consecutive
    elif consecutive is None and count is not None and window is not None:
        mode, threshold = "window", count
    else:
        raise table.error(
            "", "give either 'consecutive = N' or both 'count = N' and 'window = <duration>'"
        )
    rule = HaltRuleConfig(
        name=name,
        key=key,
        mode=mode,
        threshold=threshold,
        window=window,
        reset_window=table.get("reset_window", _optional_duration, DEFAULT_RESET_WINDOW),
        match=_match(table),
        hooks=_hook_refs(table, "hooks", hooks),
    )
    table.finish()
    return rule


def _optional_duration(value: object) -> float | None:
    """A duration, or ``0`` / ``false`` for "never"."""
    if value is False:
        return None
    seconds = parse_duration(value)
    return seconds or None


def _unique(root: _Table, key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise root.error(key, f"the name {name!r} is used twice")
        seen.add(name)


def _kinds(value: object) -> frozenset[str]:
    if value == []:
        return frozenset()  # no alerts at all
    items = frozenset(_strings(value))
    unknown = sorted(items - set(ALERT_KINDS))
    if unknown:
        raise ValueError(f"unknown alert kind {unknown[0]!r} (kinds: {', '.join(ALERT_KINDS)})")
    return items


def _headers(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise TypeError('must be a table of name = "value" strings')
    return MappingProxyType({key.lower(): item for key, item in value.items()})


def _alerts(table: _Table) -> AlertsConfig:
    spike_table = table.table("rate_spike")
    spike = RateSpikeConfig(
        enabled=spike_table.get("enabled", _bool, True),
        bucket=spike_table.get("bucket", _positive_duration, 60.0),
        factor=spike_table.get("factor", _number(1.0), 5.0),
        min_count=spike_table.get("min_count", _int(1), 10),
        warmup=spike_table.get("warmup", _int(1), 5),
        alpha=spike_table.get("alpha", _number(0.001, 1.0), 0.3),
        max_groups=spike_table.get("max_groups", _int(1), 10_000),
    )
    spike_table.finish()
    config = AlertsConfig(
        target=table.get("target", _string, None),
        insecure=table.get("insecure", _bool, None),
        headers=table.get("headers", _headers, MappingProxyType({})),
        kinds=table.get("kinds", _kinds, frozenset(ALERT_KINDS)),
        min_severity=table.get("min_severity", _severity, "low"),
        retention=table.get("retention", _positive_duration, 7 * 86400.0),
        rate_spike=spike,
    )
    table.finish()
    return config


def _effectiveness(table: _Table) -> EffectivenessConfig:
    config = EffectivenessConfig(
        warning=table.get("warning", _number(0.0, 1.0), 0.70),
        critical=table.get("critical", _number(0.0, 1.0), 0.50),
        min_samples=table.get("min_samples", _int(1), 5),
        window=table.get("window", _int(1), 20),
    )
    if config.critical > config.warning:
        raise table.error("critical", f"must not exceed warning ({config.warning})")
    if config.min_samples > config.window:
        raise table.error("min_samples", f"must not exceed window ({config.window})")
    table.finish()
    return config
