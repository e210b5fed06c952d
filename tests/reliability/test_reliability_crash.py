"""kill -9 of ``faultlens serve``, again and again, under load and while it starts.

Extends ``tests/test_processor_durability.py`` (three kills, one store): more
cycles at seeded random moments, kills during start-up (store opening and
migration), an integrity check of the SQLite file after every kill, and the
restart time. After each restart the store opens and holds every acknowledged
failure, plus at most the requests cut off between commit and reply.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.crash import kill_cycles
from tests.reliability.harness import report


@pytest.mark.slow
def test_repeated_kill_9_during_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    result = kill_cycles(tmp_path / "store.db", cycles=8, seed=11, clients=4)
    report("crash", result.figures())
    assert result.problems == []
    assert result.cycles == 8
    assert result.kills_during_start == 2
    assert result.acknowledged > 0
    assert max(result.restart_seconds) < 10
