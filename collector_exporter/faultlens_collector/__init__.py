"""faultlens_collector: the service side of faultlens.

The OTLP/gRPC processor that deduplicates failures into groups, the exporter
that feeds it, the ``faultlens.v1`` control API and the ``faultlens`` command line.
"""

from __future__ import annotations

from faultlens import __version__

__all__ = ["__version__"]
