"""A small project for ``faultlens run``: swallowed, logged and escaping failures, in the
parent process and in a child process it starts."""

from __future__ import annotations

import textwrap
from pathlib import Path

WORK = textwrap.dedent(
    """
    import logging
    import subprocess
    import sys

    log = logging.getLogger("proj")


    def divide(n):
        return 1 / n


    def swallow_many():
        for _ in range(500):
            try:
                divide(0)
            except Exception:
                pass


    def lookup(table, key):
        try:
            return table[key]
        except KeyError:
            return "made-up default"


    def parse(text):
        try:
            return int(text)
        except ValueError:
            log.exception("could not parse %r", text)
            return 0


    def reraised():
        try:
            divide(0)
        except ZeroDivisionError:
            raise


    def escapes():
        raise RuntimeError("the child gives up")


    def main(role):
        swallow_many()
        lookup({}, "missing")
        parse("x")
        try:
            reraised()
        except ArithmeticError:
            log.exception("re-raised and logged")
        if role == "parent":
            subprocess.run([sys.executable, "-m", "proj.work", "child"], check=False)
        else:
            escapes()


    if __name__ == "__main__":
        main(sys.argv[1])
    """
)


def make_project(root: Path, *, extra: str = "") -> Path:
    """Write the project (pyproject + package ``proj`` + ``job.py``) under ``root``."""
    (root / "proj").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "0"\n')
    (root / "proj" / "__init__.py").write_text("")
    (root / "proj" / "work.py").write_text(WORK + extra)
    (root / "job.py").write_text("from proj.work import main\n\nmain('parent')\n")
    return root
