"""Python interpreters for the zero-code tests: the suite's own, and pyenv's 3.12 and 3.13.

The zero-code tests run programs under the real ``opentelemetry-instrument`` in
subprocesses, and faultlens captures differently on 3.12+ than on 3.10/3.11, so
they run on every interpreter listed in :data:`VERSIONS`:

* ``default`` is the interpreter running the suite, with its own environment
  (the ``.venv`` of the README's test command): nothing to build;
* ``3.12`` and ``3.13`` are pyenv's (``$PYENV_ROOT/versions/3.12.*``, else
  ``python3.12`` on ``PATH``). Each gets a virtual environment under
  ``.venvs/`` at the repository root with faultlens installed editable from this
  checkout, built on first use and reused while ``pyproject.toml``, the
  interpreter and the extras stay the same (a stamp file records them). An
  interpreter that is absent skips its tests with a line naming where it was
  looked for (``-ra`` prints it in the summary).

:func:`environment` builds such an environment for any version and set of
``pyproject`` extras (the contrib-instrumentation apps use one with their pinned
frameworks). Builds are serialized by a lock file, so two test sessions in the
same checkout never build the same environment at once.

``conftest.py`` imports the fixture, so any test can ask for it::

    def test_x(zero_code: ZeroCode) -> None:
        subprocess.run([zero_code.script("opentelemetry-instrument"), zero_code.python, ...])
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venvs"
#: The interpreters the zero-code tests run on: the suite's own, then pyenv's.
VERSIONS = ("default", "3.12", "3.13")
#: How long building one environment may take (pip downloads on a fresh machine).
BUILD_TIMEOUT = 900


@dataclass(frozen=True)
class ZeroCode:
    """An interpreter with faultlens installed: its ``python`` and its console scripts."""

    version: str
    python: Path

    def script(self, name: str) -> Path:
        """A console script of this environment (``opentelemetry-instrument``, ``faultlens``…)."""
        return self.python.parent / name

    @property
    def bin(self) -> Path:
        """The environment's ``bin`` directory (put it first on ``PATH`` for subprocesses)."""
        return self.python.parent


def find_interpreter(version: str) -> Path | None:
    """pyenv's newest ``version.*`` interpreter, else ``python<version>`` on ``PATH``."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(
        glob.glob(str(root / "versions" / f"{version}.*" / "bin" / "python")),
        key=lambda path: [int(part) for part in path.split("/")[-3].split(".") if part.isdigit()],
    )
    if candidates:
        return Path(candidates[-1])
    found = shutil.which(f"python{version}")
    return Path(found) if found else None


def where_looked(version: str) -> str:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    return f"{root}/versions/{version}.*/bin/python or python{version} on PATH"


def _stamp(interpreter: Path, extras: Sequence[str]) -> str:
    version = subprocess.run(
        [str(interpreter), "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pyproject = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{interpreter}\n{version}\n{pyproject}\n{','.join(extras)}\n"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def environment(version: str, extras: Sequence[str] = ()) -> ZeroCode:
    """A virtual environment of ``version`` with faultlens (editable) and ``extras``.

    ``version`` is one of :data:`VERSIONS`; ``default`` means the interpreter the
    suite's own environment was made from.

    Built under ``.venvs/`` on first use, reused afterwards while its stamp
    matches. Calls ``pytest.skip`` when the interpreter is absent; raises
    ``RuntimeError`` with pip's output when the build fails.
    """
    interpreter = (
        Path(getattr(sys, "_base_executable", sys.executable))
        if version == "default"
        else find_interpreter(version)
    )
    if interpreter is None:
        reason = f"Python {version} not found ({where_looked(version)})"
        print(f"\nzero-code tests: {reason}: skipped")
        pytest.skip(reason)
    name = f"py{version}" + "".join(f"-{extra}" for extra in extras)
    target = VENVS / name
    python = target / "bin" / "python"
    stamp_file = target / ".faultlens-stamp"
    with _locked(VENVS / f".{name}.lock"):
        stamp = _stamp(interpreter, extras)
        if python.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
            return ZeroCode(version, python)
        shutil.rmtree(target, ignore_errors=True)
        spec = f"{ROOT}[{','.join(extras)}]" if extras else str(ROOT)
        for command in (
            [str(interpreter), "-m", "venv", str(target)],
            [str(python), "-m", "pip", "install", "-q", "-e", spec],
        ):
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(
                    f"building {target} failed: {' '.join(command)}\n{done.stdout}{done.stderr}"
                )
        stamp_file.write_text(stamp)
    return ZeroCode(version, python)


def suite_python() -> ZeroCode:
    """The interpreter running the suite, with the environment it runs in."""
    return ZeroCode("default", Path(sys.executable))


@pytest.fixture(scope="session", params=VERSIONS)
def zero_code(request: pytest.FixtureRequest) -> ZeroCode:
    """Each interpreter of :data:`VERSIONS` in turn, with faultlens installed."""
    version: str = request.param
    return suite_python() if version == "default" else environment(version)


def instrumented_environment(endpoint: str, service: str, **extra: str) -> dict[str, str]:
    """The environment of a program under ``opentelemetry-instrument`` exporting to ``endpoint``.

    The test process's ``OTEL_*``, ``FAULTLENS_*`` and ``PYTHON*`` variables are
    left out; spans go over OTLP/gRPC (batched every 50 ms), metrics and logs
    nowhere; ``extra`` is added last.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "FAULTLENS_", "PYTHON"))
    }
    env.update(
        OTEL_SERVICE_NAME=service,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{endpoint}",
        OTEL_EXPORTER_OTLP_INSECURE="true",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    env.update(extra)
    return env
