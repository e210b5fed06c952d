"""faultlens' own random numbers: the global :mod:`random` state is never touched.

A program that calls ``random.seed(42)`` must draw the same sequence with
faultlens watching as without it. So everything faultlens draws — the trace and
span IDs of the spans it starts itself (``faultlens.failure``), the jitter of
retry backoff, the retry jitter of the ``faultlens`` exporter — comes from
:data:`generator`, a private :class:`random.Random` seeded from the operating
system's entropy and re-seeded in every forked child (as the :mod:`random`
module does for its global instance), so pre-fork workers never draw the same
numbers.

Spans that *your* tracer provider starts keep their IDs from its ID generator
(the OpenTelemetry SDK's default, ``RandomIdGenerator``, draws from the global
:mod:`random` state; pass ``TracerProvider(id_generator=...)`` to change that).
"""

from __future__ import annotations

import os
import random
from typing import Final

from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import IdGenerator

#: faultlens' private generator (thread-safe: its methods hold the GIL).
generator: Final = random.Random()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=generator.seed)


class PrivateIdGenerator(IdGenerator):
    """Random, valid W3C trace and span IDs drawn from :data:`generator`."""

    def generate_span_id(self) -> int:
        span_id = generator.getrandbits(64)
        while span_id == trace.INVALID_SPAN_ID:
            span_id = generator.getrandbits(64)
        return span_id

    def generate_trace_id(self) -> int:
        trace_id = generator.getrandbits(128)
        while trace_id == trace.INVALID_TRACE_ID:
            trace_id = generator.getrandbits(128)
        return trace_id


#: The one instance faultlens' own tracers use.
ID_GENERATOR: Final = PrivateIdGenerator()
