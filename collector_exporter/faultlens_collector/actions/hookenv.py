"""What a hook process is given: its argument list, environment and stdin.

Failure data reaches a hook only as *data*: the JSON document on stdin and
``FAULTLENS_*`` environment variables holding values. It is never interpolated
into the argument list, and no shell is involved, so a failure message such as
``$(rm -rf ~)`` stays a string.

Environment (on top of the processor's environment, or of a minimal one with
``inherit_env = false``, and of the hook's own ``env``):

=================================  ==============================================
``FAULTLENS_HOOK``                 the hook's name
``FAULTLENS_RULE``                 the rule (or halt rule) that triggered it
``FAULTLENS_PURPOSE``              ``fix``, ``halt`` or ``manual``
``FAULTLENS_JOB_ID``               the execution's job id (as in the audit)
``FAULTLENS_DRY_RUN``              ``false`` (a dry run never starts the hook)
``FAULTLENS_FAILURE_FINGERPRINT``  the group's fingerprint
``FAULTLENS_FAILURE_TYPE``         ``exception.type``
``FAULTLENS_FAILURE_MESSAGE``      the message (at most 4096 characters)
``FAULTLENS_FAILURE_CATEGORY``     ``failure.category``
``FAULTLENS_FAILURE_SEVERITY``     ``failure.severity``
``FAULTLENS_FAILURE_SERVICE``      ``service.name``
``FAULTLENS_FAILURE_SPAN_NAME``    the span's name
``FAULTLENS_FAILURE_COUNT``        the group's occurrences
``FAULTLENS_FAILURE_STATUS``       the group's status
``FAULTLENS_HALT_ID``              for halt hooks: the halt's id
``FAULTLENS_HALT_KEY``             for halt hooks: the halted key as JSON
=================================  ==============================================
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Final

from faultlens_collector.actions import callable_runner
from faultlens_collector.actions.config import HookConfig
from faultlens_collector.actions.records import HookJob

#: Variables kept from the processor's environment when ``inherit_env = false``.
MINIMAL_ENV: Final = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")
MAX_ENV_VALUE: Final = 4096
_RUNNER: Final = str(Path(callable_runner.__file__).resolve())


def argv_for(hook: HookConfig) -> list[str]:
    """The argument list that runs ``hook``."""
    if hook.command is not None:
        return list(hook.command)
    assert hook.callable is not None
    return [sys.executable, _RUNNER, hook.callable]


def environment_for(hook: HookConfig, job: HookJob) -> dict[str, str]:
    """The environment a hook process gets for ``job``."""
    if hook.inherit_env:
        env = dict(os.environ)
    else:
        env = {name: os.environ[name] for name in MINIMAL_ENV if name in os.environ}
    env.update(hook.env)
    facts = job.facts
    values = {
        "FAULTLENS_HOOK": hook.name,
        "FAULTLENS_RULE": job.rule,
        "FAULTLENS_PURPOSE": job.purpose,
        "FAULTLENS_JOB_ID": job.id,
        "FAULTLENS_DRY_RUN": "false",
        "FAULTLENS_FAILURE_FINGERPRINT": facts.fingerprint,
        "FAULTLENS_FAILURE_TYPE": facts.exception_type,
        "FAULTLENS_FAILURE_MESSAGE": facts.message[:MAX_ENV_VALUE],
        "FAULTLENS_FAILURE_CATEGORY": facts.category,
        "FAULTLENS_FAILURE_SEVERITY": facts.severity,
        "FAULTLENS_FAILURE_SERVICE": facts.service,
        "FAULTLENS_FAILURE_SPAN_NAME": facts.span_name,
        "FAULTLENS_FAILURE_COUNT": str(facts.count),
        "FAULTLENS_FAILURE_STATUS": facts.status,
    }
    if job.halt is not None:
        values["FAULTLENS_HALT_ID"] = job.halt.id
        values["FAULTLENS_HALT_KEY"] = json.dumps(job.halt.attributes, sort_keys=True)
    env.update({name: value.replace("\x00", "") for name, value in values.items()})
    return env


def stdin_for(job: HookJob) -> bytes:
    """The JSON document a hook reads on stdin."""
    return json.dumps(job.payload(dry_run=False), ensure_ascii=False).encode("utf-8")
