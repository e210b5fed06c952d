"""The sample program behind ``faultlens demo``."""
