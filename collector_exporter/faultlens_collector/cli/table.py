"""Plain-text tables for terminal output (no dependency, no colour codes), and numbers as
people read them (shares as percentages, durations in ms, s or min). ``--json`` output
never goes through these: it keeps full precision."""

from __future__ import annotations

from collections.abc import Sequence


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, max_width: int = 60
) -> str:
    """Render rows under headers with aligned columns; cells longer than ``max_width`` are cut."""
    cells = [[_cell(value, max_width) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], len(value))
    lines = [
        "  ".join(header.ljust(widths[i]) for i, header in enumerate(headers)).rstrip(),
        "  ".join("-" * width for width in widths),
    ]
    lines.extend(
        "  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() for row in cells
    )
    return "\n".join(lines)


def _cell(value: object, max_width: int) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


def percent(share: float | None) -> str:
    """A share (0..1) as a percentage with one decimal: ``66.7%``; ``—`` for None."""
    if share is None:
        return "—"
    return f"{share:.1%}"


def duration(seconds: float | None) -> str:
    """Seconds for people: ``17.6 ms``, ``2.35 s``, ``4 min 05 s``; ``—`` for None."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
