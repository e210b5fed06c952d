"""A fix hook for the reliability tests: writes what it was given to ``$DUMP_DIR/<job>.json``.

It records its argument list, its stdin (the hook document) and every
``FAULTLENS_*`` environment variable, byte for byte, and does nothing else.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> int:
    document = sys.stdin.buffer.read().decode("utf-8")
    job = os.environ.get("FAULTLENS_JOB_ID", "unknown")
    record = {
        "argv": sys.argv,
        "stdin": document,
        "env": {key: value for key, value in os.environ.items() if key.startswith("FAULTLENS_")},
    }
    target = Path(os.environ["DUMP_DIR"]) / f"{job}.json"
    partial = target.with_suffix(".part")
    partial.write_text(json.dumps(record), encoding="utf-8")
    partial.rename(target)  # readers never see half a file
    return 0


if __name__ == "__main__":
    sys.exit(main())
