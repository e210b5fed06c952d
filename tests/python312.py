"""A Python 3.12+ environment with this checkout installed, for what only exists there
(``sys.monitoring``). The suite's own interpreter when it is 3.12+; otherwise a
virtual environment built once from pyenv's newest 3.12/3.13 into ``.venv-py312``
(kept between runs; rebuilt when the project's dependencies change)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-py312"


def _candidates() -> list[Path]:
    versions = Path.home() / ".pyenv" / "versions"
    found = []
    if versions.is_dir():
        found = sorted(versions.glob("3.1[23].*/bin/python3"), reverse=True)
    for name in ("python3.13", "python3.12"):
        on_path = shutil.which(name)
        if on_path:
            found.append(Path(on_path))
    return found


def python312() -> Path:
    """A 3.12+ interpreter that can import faultlens from this checkout (skips the test
    when no 3.12+ interpreter exists on the machine)."""
    if sys.version_info >= (3, 12):
        return Path(sys.executable)
    candidates = _candidates()
    if not candidates:
        pytest.skip("no Python 3.12+ interpreter on this machine")
    stamp = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    python = VENV / "bin" / "python"
    marker = VENV / ".faultlens-stamp"
    if not (python.exists() and marker.exists() and marker.read_text() == stamp):
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([str(candidates[0]), "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT)],
            check=True,
            capture_output=True,
        )
        marker.write_text(stamp)
    return python
