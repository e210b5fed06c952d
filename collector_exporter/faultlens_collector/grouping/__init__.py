"""Grouping failures that arrive without a ``failure.fingerprint``.

:mod:`~faultlens_collector.grouping.stacktrace` reads frames out of
``exception.stacktrace`` text (Python, Java, JavaScript/Node, Go);
:mod:`~faultlens_collector.grouping.fingerprint` turns them, the exception type
and the message into the same 16-hex fingerprint the SDK puts on the wire.
"""

from __future__ import annotations

from faultlens_collector.grouping.fingerprint import compute_fingerprint, fingerprint_of
from faultlens_collector.grouping.stacktrace import Frame, parse_frames

__all__ = ["Frame", "compute_fingerprint", "fingerprint_of", "parse_frames"]
