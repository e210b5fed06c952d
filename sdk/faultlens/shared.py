"""What the faultlens SDK shares with the faultlens processor, on purpose.

``faultlens_collector`` — the processor, the ``faultlens`` command line, the
``faultlens`` span exporter, ``faultlens run`` and ``scan`` — imports from ``faultlens``
only the public API (:mod:`faultlens`, :mod:`faultlens.semconv`,
:mod:`faultlens.resilience`, :mod:`faultlens.instrumentation`) and this module, never
an SDK module directly (tests/test_layout.py holds it to that). Each name here is
something both sides must do *the same way*, so it has one implementation:

* **fingerprints** — the processor fingerprints failures from other SDKs, and
  ``faultlens scan`` fingerprints import failures, as the SDK does: :func:`hash_parts`,
  :func:`parameterize` (up to :data:`MAX_MESSAGE_CHARS`), :func:`fingerprint_exception`
  with a :class:`FrameClassifier`, :func:`from_failed_import`, :func:`safe_message`;
* **classification** — ``faultlens scan`` classifies as the SDK would: :class:`Classifier`;
* **redaction** — secrets in hook output and alert text are redacted by the SDK's rules:
  :class:`Redactor`;
* **halt keys** — a halt covers the same work in the processor as in the application's
  halt guard: :data:`Key`, :data:`KeyValue`, :func:`make_key`, :func:`covers`,
  :func:`format_key`;
* **resilience metric names** — the processor reads the breaker metrics the SDK writes:
  :data:`resilience_names`;
* **where the processor is** — ``FAULTLENS_ENDPOINT`` / ``FAULTLENS_HEADERS`` read the
  same way by the exporter, the halt guard and the command line: :func:`parse_endpoint`,
  :func:`resolve`, :data:`Headers`, :data:`DEFAULT_ENDPOINT`, :data:`ENDPOINT_ENV`,
  :data:`HEADERS_ENV`;
* **faultlens' own behaviour** — an internal error is logged once and never raised
  (:func:`report_internal_error`); what the recorder already recorded
  (:func:`already_recorded`); faultlens draws random numbers from its own generator,
  never the program's (:data:`random_generator`); one ``sys.monitoring`` tool id per
  process, the capture engine's, which ``faultlens run``'s swallowed-exception detector
  observes (:data:`monitoring`, :mod:`faultlens._monitoring`).

Not for applications: these names change in step with ``faultlens_collector`` (the same
distribution at the same version). Names load on first use (:mod:`faultlens._lazy`), so
the command line's control client, which needs :func:`parse_endpoint`, loads no more of
the SDK than ``faultlens._endpoint``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faultlens import _monitoring as monitoring
    from faultlens._classify import Classifier
    from faultlens._endpoint import (
        DEFAULT_ENDPOINT,
        ENDPOINT_ENV,
        HEADERS_ENV,
        Headers,
        parse_endpoint,
        resolve,
    )
    from faultlens._fingerprint import (
        FrameClassifier,
        fingerprint_exception,
        from_failed_import,
        hash_parts,
        safe_message,
    )
    from faultlens._halt_keys import Key, KeyValue, covers, format_key, make_key
    from faultlens._internal_errors import report_internal_error
    from faultlens._parameterize import MAX_MESSAGE_CHARS, parameterize
    from faultlens._randomness import generator as random_generator
    from faultlens._recorder import already_recorded
    from faultlens._redact import Redactor
    from faultlens.resilience import _names as resilience_names
else:
    from faultlens._lazy import exports

    __getattr__, __dir__ = exports(
        __name__,
        {
            "faultlens._classify": ("Classifier",),
            "faultlens._endpoint": (
                "DEFAULT_ENDPOINT",
                "ENDPOINT_ENV",
                "HEADERS_ENV",
                "Headers",
                "parse_endpoint",
                "resolve",
            ),
            "faultlens._fingerprint": (
                "FrameClassifier",
                "fingerprint_exception",
                "from_failed_import",
                "hash_parts",
                "safe_message",
            ),
            "faultlens._halt_keys": ("Key", "KeyValue", "covers", "format_key", "make_key"),
            "faultlens._internal_errors": ("report_internal_error",),
            "faultlens._monitoring": ("monitoring=_monitoring",),
            "faultlens._parameterize": ("MAX_MESSAGE_CHARS", "parameterize"),
            "faultlens._randomness": ("random_generator=generator",),
            "faultlens._recorder": ("already_recorded",),
            "faultlens._redact": ("Redactor",),
            "faultlens.resilience._names": ("resilience_names=_names",),
        },
    )
    del exports

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_ENV",
    "HEADERS_ENV",
    "MAX_MESSAGE_CHARS",
    "Classifier",
    "FrameClassifier",
    "Headers",
    "Key",
    "KeyValue",
    "Redactor",
    "already_recorded",
    "covers",
    "fingerprint_exception",
    "format_key",
    "from_failed_import",
    "hash_parts",
    "make_key",
    "monitoring",
    "parameterize",
    "parse_endpoint",
    "random_generator",
    "report_internal_error",
    "resilience_names",
    "resolve",
    "safe_message",
]
