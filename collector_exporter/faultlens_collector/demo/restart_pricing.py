"""The demo's fix hook: "restart" the pricing service.

``python -m faultlens_collector.demo.restart_pricing MARKER`` — the processor
runs it (an argument list, never a shell string) when pricing timeouts arrive;
it receives the failure group as JSON on stdin and marks the sample app's
pricing service healthy by creating ``MARKER``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Create the marker file named by ``argv[0]``; print what was fixed."""
    if len(argv) != 1:
        print("usage: restart_pricing MARKER", file=sys.stderr)
        return 2
    failure = json.load(sys.stdin).get("failure", {})
    Path(argv[0]).write_text("restarted\n", encoding="utf-8")
    print(f"pricing service restarted after {failure.get('exception_type', 'a failure')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
