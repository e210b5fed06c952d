"""Acting on failures: rules, fix hooks, verification, halts and alerts.

The processor drives one :class:`ActionEngine` (see :mod:`.engine`); the
configuration file is read by :func:`load_config`; state is kept by an
:class:`ActionStore` (:class:`MemoryActionStore`, or a database's, see
:mod:`faultlens_collector.store`).
``docs/actions.md`` is the reference.
"""

from __future__ import annotations

from faultlens_collector.actions.config import ActionsConfig, ConfigError, load_config, parse_config
from faultlens_collector.actions.engine import ActionEngine
from faultlens_collector.actions.facts import FailureFacts
from faultlens_collector.actions.halting import HaltChange
from faultlens_collector.actions.records import (
    AuditRecord,
    FixRecord,
    HaltRecord,
    HookJob,
    HookRun,
)
from faultlens_collector.actions.store import ActionStore, MemoryActionStore
from faultlens_collector.actions.verification import Effectiveness
from faultlens_collector.alerts.records import Alert

__all__ = [
    "ActionEngine",
    "ActionStore",
    "ActionsConfig",
    "Alert",
    "AuditRecord",
    "ConfigError",
    "Effectiveness",
    "FailureFacts",
    "FixRecord",
    "HaltChange",
    "HaltRecord",
    "HookJob",
    "HookRun",
    "MemoryActionStore",
    "load_config",
    "parse_config",
]
