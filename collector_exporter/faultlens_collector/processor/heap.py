"""Malloc settings for a process that allocates and frees request-sized buffers all day.

By default glibc takes a block of 128 KiB or more straight from the kernel (``mmap``)
and gives it back when it is freed, and it returns the top of the heap to the kernel
once more than 128 KiB of it are free. Both limits rise on their own, but not far
enough under load with several threads. An OTLP request is hundreds of KiB: its body,
the copies protobuf makes of it and the lists built from it come fresh from the
kernel and go back, so the kernel maps and zeroes every page again (a page fault per
4 KiB). In ``faultlens serve`` that cost about 8% of the processor's CPU per request
of 1,000 spans (``benchmarks/bench_processor.py``).

:func:`keep_request_buffers` raises both limits for the whole process. Blocks of up
to ``largest`` bytes come from the heap, and each of glibc's heaps (one per malloc
arena; busy threads get their own) keeps up to ``keep`` free bytes instead of handing
them back. The cost is memory: a process that handled a burst holds on to up to
``keep`` bytes per arena until it needs them again. Setting either limit also stops
glibc's own adjustment of both; that is why both are set. Only glibc has
``mallopt``. Elsewhere (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Final

#: ``mallopt`` parameters (glibc ``malloc.h``).
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3

#: Defaults: requests up to a few MiB stay on the heap; larger ones (up to the 64 MiB
#: request limit) still come from, and go back to, the kernel.
LARGEST_HEAP_BLOCK: Final = 4 * 1024 * 1024
KEPT_FREE: Final = 32 * 1024 * 1024


def keep_request_buffers(largest: int = LARGEST_HEAP_BLOCK, keep: int = KEPT_FREE) -> bool:
    """Set glibc's mmap and trim thresholds for this process (see the module docstring).

    Returns whether they were set: False where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, largest) and mallopt(_M_TRIM_THRESHOLD, keep))
