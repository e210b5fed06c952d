"""The processor: its assembly and its seam.

:mod:`.server` builds a running processor (``Processor``, ``ProcessorSettings``) out of
the data path — :mod:`faultlens_collector.ingest`, :mod:`faultlens_collector.groups`,
the database of :mod:`faultlens_collector.store` — its listeners and the control API;
:mod:`.listeners` is the seam between the data path and whatever acts on failures
(the action engine, and any other listener). :mod:`.auth`, :mod:`.heap`,
:mod:`.selfmetrics` and :mod:`.selftelemetry` serve the assembly. docs/architecture.md
draws the whole path.
"""
