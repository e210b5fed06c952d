"""Delivering alerts: the records, the durable outbox they wait in, and the sender that
exports them as OTLP log records. The action engine decides which alerts to raise
(:mod:`faultlens_collector.actions.alerting`); this package gets them to the next hop."""
