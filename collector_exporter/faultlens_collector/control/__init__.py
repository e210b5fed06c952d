"""The ``faultlens.v1`` control API (proto/faultlens/v1/control.proto): its services, the
conversions between the processor's records and its messages, and its client."""
