"""Running hook processes: data in, bounded output out, nothing left behind."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest
from actions_support import python_hook
from faultlens_collector.actions.config import HookConfig
from faultlens_collector.actions.hookenv import argv_for
from faultlens_collector.actions.runner import run_process

ENV = dict(os.environ)


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie waiting for a non-reaping init counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def run(argv: list[str], **options: object) -> object:
    defaults: dict[str, object] = {"stdin": b"", "env": ENV, "cwd": None, "timeout": 5.0}
    return run_process(argv, **{**defaults, **options})  # type: ignore[arg-type]


def test_stdin_env_and_output() -> None:
    hook = python_hook(
        """
        import json, os, sys
        data = json.load(sys.stdin)
        print(data["failure"], os.environ["FAULTLENS_FAILURE_TYPE"], file=sys.stderr)
        print("done")
        """
    )
    payload = json.dumps({"failure": "ValueError"}).encode()
    result = run(hook, stdin=payload, env={**ENV, "FAULTLENS_FAILURE_TYPE": "KeyError"})
    assert result.exit_code == 0
    assert not result.timed_out
    assert result.output_tail == "ValueError KeyError\ndone\n"  # stderr and stdout together
    assert result.output_bytes == len(result.output_tail)


def test_failure_data_is_never_interpreted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    message = f"$(touch {marker}) `touch {marker}`; touch {marker}"
    hook = python_hook("import sys, os; print(sys.argv[1:], os.environ['MSG'])")
    result = run(hook, env={**ENV, "MSG": message}, stdin=message.encode())
    assert result.exit_code == 0
    assert message in result.output_tail
    assert not marker.exists()


def test_non_zero_exit_is_reported() -> None:
    result = run(python_hook("import sys; print('nope'); sys.exit(3)"))
    assert (result.exit_code, result.timed_out, result.output_tail) == (3, False, "nope\n")


def test_a_program_that_cannot_start() -> None:
    result = run(["/no/such/program"])
    assert result.exit_code is None
    assert result.error is not None
    assert "No such file" in result.error


def test_a_hung_hook_and_its_children_are_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hook = python_hook(
        f"""
        import os, time

        def group():  # every process of our group, as the kernel sees it
            def pgid(pid):
                with open(f"/proc/{{pid}}/stat") as stat:
                    return stat.read().rsplit(")", 1)[1].split()[2]
            return [p for p in os.listdir("/proc") if p.isdigit() and pgid(p) == str(os.getpgrp())]

        if os.fork() == 0:
            if os.fork() == 0:
                time.sleep(60)
            time.sleep(60)
        while len(group()) < 3:
            time.sleep(0.01)
        with open({str(pids)!r}, "w") as f:
            f.write(" ".join(group()))
        time.sleep(60)
        """
    )
    started = time.monotonic()
    result = run(hook, timeout=1.0, kill_grace=0.2)
    assert result.timed_out
    assert result.exit_code == -15  # SIGTERM was enough
    assert time.monotonic() - started < 4
    group = [int(pid) for pid in pids.read_text().split()]
    assert len(group) == 3  # the hook, its child and its grandchild
    deadline = time.monotonic() + 2
    while any(alive(pid) for pid in group) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(alive(pid) for pid in group)


def test_sigterm_is_followed_by_sigkill_after_the_grace() -> None:
    hook = python_hook(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    started = time.monotonic()
    result = run(hook, timeout=0.4, kill_grace=0.3)
    assert result.timed_out
    assert result.exit_code == -9
    assert 0.6 <= time.monotonic() - started < 3
    assert result.output_tail == "ready\n"


def test_children_left_behind_by_a_finished_hook_are_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"
    hook = python_hook(
        f"""
        import os, sys, time
        if os.fork() == 0:
            os.close(1); os.close(2)  # does not hold the output pipe
            with open({str(pid_file)!r}, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)
            sys.exit(0)
        while not os.path.exists({str(pid_file)!r}):
            time.sleep(0.01)
        time.sleep(0.05)
        """
    )
    result = run(hook)
    assert result.exit_code == 0
    assert not result.timed_out
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(child)


def test_a_child_holding_the_output_pipe_does_not_hang_the_runner() -> None:
    hook = python_hook(
        """
        import os, time
        if os.fork() == 0:
            time.sleep(60)   # keeps stdout open
        print("parent done", flush=True)
        """
    )
    started = time.monotonic()
    result = run(hook, timeout=10)
    assert result.exit_code == 0
    assert "parent done" in result.output_tail
    assert time.monotonic() - started < 3


def test_flooding_output_keeps_only_the_tail() -> None:
    hook = python_hook(
        """
        import sys
        for i in range(200_000):
            sys.stdout.write(f"line {i:06d} " + "x" * 40 + "\\n")
        sys.stdout.write("THE END\\n")
        """
    )
    result = run(hook, output_limit=1024)
    assert result.exit_code == 0
    assert len(result.output_tail.encode()) == 1024
    assert result.output_tail.endswith("line 199999 " + "x" * 40 + "\nTHE END\n")
    assert result.output_bytes > 10_000_000


def test_endless_output_is_cut_off_by_the_timeout() -> None:
    # 2 s: room for the interpreter to start on a loaded machine before the timeout.
    hook = python_hook("import sys\nwhile True: sys.stdout.write('y' * 4096)")
    result = run(hook, timeout=2.0, kill_grace=0.1, output_limit=512)
    assert result.timed_out
    assert result.output_tail == "y" * 512
    assert result.output_bytes > 512


def test_a_hook_that_ignores_a_large_stdin_does_not_block() -> None:
    result = run(python_hook("print('ignored it')"), stdin=b"z" * 5_000_000, timeout=5)
    assert result.exit_code == 0
    assert result.output_tail == "ignored it\n"


def test_cancellation_kills_the_hook() -> None:
    import threading

    cancel = threading.Event()
    timer = threading.Timer(0.2, cancel.set)
    timer.start()
    started = time.monotonic()
    result = run(python_hook("import time; time.sleep(60)"), cancel=cancel, kill_grace=0.1)
    timer.join()
    assert result.cancelled
    assert not result.timed_out
    assert time.monotonic() - started < 3


# Python callables run through the callable runner, in a child process.
MODULE = """
import asyncio, json, os, time

def fix(payload):
    print("fixing", payload["failure"]["fingerprint"], os.getcwd() == {cwd!r})
    return None

def refuse(payload):
    return False

def crash(payload):
    raise RuntimeError("cannot fix " + payload["failure"]["fingerprint"])

async def later(payload):
    await asyncio.sleep(0)
    print("async ok")

def hang(payload):
    time.sleep(60)

not_callable = 3
"""


@pytest.fixture
def hook_module(tmp_path: Path) -> Path:
    (tmp_path / "hookmod_for_tests.py").write_text(
        textwrap.dedent(MODULE).format(cwd=str(tmp_path))
    )
    return tmp_path


def run_callable(cwd: Path, target: str, **options: object) -> object:
    argv = argv_for(HookConfig(name="c", callable=target))
    payload = json.dumps({"failure": {"fingerprint": "0123456789abcdef"}}).encode()
    return run(argv, stdin=payload, cwd=str(cwd), **options)


@pytest.mark.parametrize(
    ("target", "exit_code", "output"),
    [
        ("hookmod_for_tests:fix", 0, "fixing 0123456789abcdef True\n"),
        ("hookmod_for_tests:refuse", 1, ""),
        ("hookmod_for_tests:crash", 1, "RuntimeError: cannot fix 0123456789abcdef"),
        ("hookmod_for_tests:later", 0, "async ok\n"),
        ("hookmod_for_tests:missing", 2, "AttributeError"),
        ("hookmod_for_tests:not_callable", 2, "is not callable"),
        ("no_such_module_anywhere:fix", 2, "ModuleNotFoundError"),
    ],
)
def test_callables(hook_module: Path, target: str, exit_code: int, output: str) -> None:
    result = run_callable(hook_module, target)
    assert result.exit_code == exit_code, result.output_tail
    assert output in result.output_tail


def test_a_hung_callable_is_killed(hook_module: Path) -> None:
    result = run_callable(hook_module, "hookmod_for_tests:hang", timeout=0.5, kill_grace=0.1)
    assert result.timed_out


def test_the_callable_runner_does_not_shadow_user_modules(tmp_path: Path) -> None:
    # A user module named like one of ours ("config") must win over the runner's directory.
    (tmp_path / "config.py").write_text("def fix(payload):\n    print('user config')\n")
    result = run_callable(tmp_path, "config:fix")
    assert result.exit_code == 0, result.output_tail
    assert result.output_tail == "user config\n"


def test_the_callable_runner_starts_without_importing_faultlens(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(
        "import sys\n"
        "def fix(payload):\n"
        "    print([m for m in sys.modules if m.split('.')[0].startswith('faultlens')])\n"
    )
    result = run_callable(tmp_path, "probe:fix")
    assert result.output_tail == "[]\n"
    assert sys.executable == argv_for(HookConfig(name="c", callable="a:b"))[0]
