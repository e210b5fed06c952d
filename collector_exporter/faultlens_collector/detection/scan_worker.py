"""A ``faultlens scan`` worker: a fork server that tries one module (or entry point) per child.

Started by :mod:`.scan` as ``python -m faultlens_collector.detection.scan_worker``;
it reads one JSON line of settings, then one JSON job per line on stdin, and
answers each with one JSON line on stdout. Jobs:

* ``{"kind": "compile", "path": ...}`` — byte-compile a file (in the server: it
  runs no code);
* ``{"kind": "import", "module": ...}`` — import a module;
* ``{"kind": "entry_point", "group": ..., "name": ..., "value": ...}`` — load it;
* ``{"kind": "console_script", "name": ..., "value": ...}`` — run it as its
  console script does, with ``--help``.

Every job but ``compile`` runs in a child forked from the server, so each starts
from the same clean state and nothing one module does (patching, a half-finished
import, a crash, ``os._exit``) reaches another. The child's standard streams are
``/dev/null``. After ``timeout`` seconds the child gets ``SIGALRM`` — an
:class:`ImportTimeoutError` raised where it hangs, with that traceback — and a
second later ``SIGKILL`` (with its process group) if it is still there.

A failure is reported with the SDK's own fingerprint, classification and
formatted traceback of the real exception (frames of faultlens itself never
count, and an exception raised while a module is imported counts from that
module's body on), so the same defect met at run time has the same fingerprint.

Settings: ``paths`` (prepended to ``sys.path``), ``in_app`` (module prefixes
counted in-app, as ``FAULTLENS_IN_APP``), ``preload`` (top-level packages
imported into the server first, when a child imported them cleanly), ``warm``
and ``cold``. With ``warm`` (the default) a module a child imported cleanly is
then imported into the server too, so the children after it start with it, as an
application has the modules it imported before — a package's modules share their
heavy imports instead of paying for them once each; modules in ``cold`` are never
kept. A kept module that starts a thread makes the server ask to be replaced
(``"restart": true``): forking a process with threads is not safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
from types import TracebackType
from typing import Any, Final

from faultlens.semconv import max_severity, qualified_type_name
from faultlens.shared import (
    Classifier,
    FrameClassifier,
    fingerprint_exception,
    from_failed_import,
    hash_parts,
    safe_message,
)

#: Seconds between SIGALRM and SIGKILL.
KILL_GRACE: Final = 1.0
_CONSOLE_SCRIPT: Final = (
    "import sys\nsys.argv = [{name!r}, '--help']\n"
    "from importlib.metadata import EntryPoint\n"
    "sys.exit(EntryPoint({name!r}, {value!r}, 'console_scripts').load()())\n"
)


class ImportTimeoutError(TimeoutError):
    """The job did not finish within its time limit (raised where it hung)."""


class _Server:
    def __init__(self, settings: dict[str, Any]) -> None:
        sys.path[:0] = [str(path) for path in settings.get("paths", [])]
        self.frames = FrameClassifier(in_app_include=settings.get("in_app", []))
        self.classifier = Classifier()
        self.warm = bool(settings.get("warm", True))
        self.cold = set(settings.get("cold", []))

    def keep(self, module: str) -> bool:
        """Import a module its child imported cleanly into the server, so later children
        have it (as an application has the modules it imported before). False when that
        started a thread: the server must be replaced (forking it is no longer safe)."""
        if not self.warm or module in self.cold or module in sys.modules:
            return True
        try:
            import importlib

            importlib.import_module(module)
        except BaseException:
            return True
        return threading.active_count() == 1

    def failure(self, exc: BaseException, *, floor: str = "high") -> dict[str, Any]:
        verdict = self.classifier.classify(exc, floor=floor)
        category = verdict.category
        if isinstance(exc, SyntaxError):
            category = "syntax"
        elif isinstance(exc, ImportError) and category == "unknown":
            category = "import"
        return {
            "ok": False,
            "fingerprint": fingerprint_exception(exc, self.frames),
            "exception_type": qualified_type_name(type(exc)),
            "message": safe_message(exc),
            "category": category,
            "severity": max_severity(verdict.severity, floor),
            "stacktrace": "".join(
                traceback.format_exception(type(exc), exc, _own_frames(exc.__traceback__))
            ),
        }

    # jobs
    def compile(self, path: str) -> dict[str, Any]:
        try:
            with open(path, "rb") as source:
                compile(source.read(), path, "exec", dont_inherit=True)
        except SyntaxError as exc:
            return self.failure(exc, floor="critical")
        except (OSError, ValueError) as exc:
            return self.failure(exc)
        return {"ok": True}

    def in_child(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(reader)
            self._child(job, timeout, writer)
        os.close(writer)
        return self._collect(pid, reader, job, timeout)

    def _child(self, job: dict[str, Any], timeout: float, writer: int) -> None:
        code = 0
        try:
            os.setpgid(0, 0)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)

            def expired(signum: int, frame: Any) -> None:
                raise ImportTimeoutError(f"still running after {timeout:g} s")

            signal.signal(signal.SIGALRM, expired)
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                result = self._run(job)
            except BaseException as exc:
                result = self._verdict(exc)
            signal.setitimer(signal.ITIMER_REAL, 0)
            data = json.dumps(result).encode()
            while data:
                data = data[os.write(writer, data) :]
        except BaseException:
            code = 70
        finally:
            os._exit(code)

    def _run(self, job: dict[str, Any]) -> dict[str, Any]:
        kind = job["kind"]
        if kind == "import":
            import importlib

            importlib.import_module(job["module"])
        elif kind == "entry_point":
            from importlib.metadata import EntryPoint

            EntryPoint(job["name"], job["value"], job["group"]).load()
        elif kind == "console_script":
            # As the console script's own wrapper runs it: a ``__main__`` module body.
            script = _CONSOLE_SCRIPT.format(name=job["name"], value=job["value"])
            exec(
                compile(script, f"<console script {job['name']}>", "exec"), {"__name__": "__main__"}
            )
        return {"ok": True}

    def _verdict(self, exc: BaseException) -> dict[str, Any]:
        if isinstance(exc, SystemExit):
            code = exc.code
            if code in (None, 0):
                return {"ok": True}
            error = SystemExit(code)
            error.__traceback__ = exc.__traceback__
            result = self.failure(error)
            result["message"] = f"exited with status {code}"
            return result
        return self.failure(exc, floor="critical" if isinstance(exc, SyntaxError) else "high")

    def _collect(
        self, pid: int, reader: int, job: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout + KILL_GRACE
        chunks: list[bytes] = []
        killed = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(pid)
                killed = True
                break
            ready, _, _ = select.select([reader], [], [], left)
            if ready:
                chunk = os.read(reader, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        os.close(reader)
        _, status = os.waitpid(pid, 0)
        if chunks:
            try:
                return dict(json.loads(b"".join(chunks)))
            except ValueError:
                pass
        what = job.get("module") or job.get("name") or "?"
        if killed:
            return {
                "ok": False,
                "fingerprint": hash_parts(("faultlens.scan", "timeout", job["kind"], what)),
                "exception_type": qualified_type_name(ImportTimeoutError),
                "message": f"still running after {timeout:g} s; killed",
                "category": "timeout",
                "severity": "high",
                "stacktrace": "",
            }
        how = (
            f"killed by signal {-os.waitstatus_to_exitcode(status)}"
            if os.WIFSIGNALED(status)
            else f"exited with status {os.waitstatus_to_exitcode(status)} before reporting"
        )
        return {
            "ok": False,
            "fingerprint": hash_parts(("faultlens.scan", "crash", job["kind"], what)),
            "exception_type": "faultlens.ProcessCrash",
            "message": how,
            "category": "resource",
            "severity": "critical",
            "stacktrace": "",
        }

    def preload(self, names: list[str], timeout: float) -> list[str]:
        loaded = []
        for name in names:
            if self.in_child({"kind": "import", "module": name}, timeout).get("ok"):
                try:
                    __import__(name)
                except BaseException:
                    continue
                loaded.append(name)
        return loaded


def _own_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback without the worker's own frames and the import machinery above
    the module that failed (what a traceback at run time shows)."""
    trimmed = from_failed_import(tb)
    if trimmed is tb:
        while tb is not None and _is_machinery(tb.tb_frame.f_globals.get("__name__", "")):
            tb = tb.tb_next
        return tb
    return trimmed


def _is_machinery(module: str) -> bool:
    return module.startswith(("faultlens_collector", "importlib")) or module == "builtins"


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def main() -> int:
    """Serve jobs from stdin until it closes."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout = sys.stderr  # whatever imported code prints must not corrupt the protocol
    settings = json.loads(sys.stdin.readline() or "{}")
    server = _Server(settings)
    timeout = float(settings.get("timeout", 10.0))
    loaded = server.preload(list(settings.get("preload", [])), timeout)
    out.write(json.dumps({"preloaded": loaded, "threads": threading.active_count()}) + "\n")
    for line in sys.stdin:
        job = json.loads(line)
        if job["kind"] == "compile":
            result = server.compile(job["path"])
        else:
            result = server.in_child(job, float(job.get("timeout", timeout)))
            if job["kind"] == "import" and result.get("ok") and not server.keep(job["module"]):
                result["restart"] = True
        out.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
