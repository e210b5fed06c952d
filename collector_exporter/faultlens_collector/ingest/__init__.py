"""OTLP in: the first step of a failure's path through the processor.

:mod:`.service` serves the three OTLP ``Export`` methods; :mod:`.framing` finds the
spans and log records that may carry a failure without decoding the rest;
:mod:`.extract` turns them into :class:`~faultlens_collector.groups.model.Occurrence`
objects — fingerprinted by :mod:`.fingerprint` (over :mod:`.stacktrace`) and
categorized by :mod:`.categories` when the sender did not say; :mod:`.successes` reads
the keys of spans that ended without failure when a listener asks. :mod:`.admission`
sheds load before a request is read (:mod:`.retry_info`), and :mod:`.forward` passes
every acknowledged request on to the next hop.
"""
