"""A generated project with the defects ``faultlens scan`` and ``faultlens run`` must find.

``make_package`` writes package ``shop`` under ``root`` with a ``.dist-info`` next to
it, so ``importlib.metadata`` sees an installed distribution ``shop`` with entry
points and a console script once ``root`` is on ``sys.path`` (``PYTHONPATH``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

FAULTLENS = Path(sys.executable).with_name("faultlens")

MODULES = {
    "__init__.py": "",
    "fine.py": "VALUE = 1\n\ndef helper():\n    return VALUE\n",
    "syntax_bad.py": "def broken(:\n    pass\n",
    "missing.py": "import definitely_not_installed_xyz\n",
    "circ_a.py": "from shop import circ_b\n\nthing = 1\n",
    "circ_b.py": "from shop.circ_a import thing\n",
    "hangs.py": "import time\n\nwhile True:\n    time.sleep(0.05)\n",
    "cli.py": textwrap.dedent(
        """
        import sys

        def main():
            if "--help" in sys.argv:
                options = {}
                return options["usage"]  # crashes on --help
            return 0

        def fine_main():
            print("usage: fine")
            return 0
        """
    ),
    "__main__.py": "raise SystemExit('never imported by scan')\n",
}

ENTRY_POINTS = textwrap.dedent(
    """
    [console_scripts]
    shop-cli = shop.cli:main
    shop-fine = shop.cli:fine_main

    [shop.plugins]
    broken = shop.nowhere:plugin
    good = shop.fine:helper
    """
)


def make_package(root: Path, modules: dict[str, str] | None = None) -> Path:
    """Write the package and its distribution metadata; returns ``root``."""
    package = root / "shop"
    package.mkdir(parents=True, exist_ok=True)
    for name, text in (modules or MODULES).items():
        (package / name).write_text(text)
    info = root / "shop-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shop\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (info / "top_level.txt").write_text("shop\n")
    return root


def faultlens(*args: str, cwd: Path, root: Path | None = None, timeout: float = 180, **env: str):
    """Run the ``faultlens`` console script; ``root`` goes on PYTHONPATH."""
    environment = {**os.environ, **env}
    if root is not None:
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(root), *filter(None, [environment.get("PYTHONPATH")])]
        )
    return subprocess.run(
        [str(FAULTLENS), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
