"""What the ``set_testing`` functions return (stamina's pattern): the change is in force
at once; used as a context manager, leaving the block puts the previous state back."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType


class Restoring:
    """Calls ``restore`` when a ``with`` block over it ends (whatever the block raised)."""

    def __init__(self, restore: Callable[[], None]) -> None:
        self._restore = restore

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()
