"""What can go wrong with a store, whatever the backend."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The database cannot be opened or used (its message names where and why)."""


class SchemaError(StoreError):
    """The database holds tables this faultlens cannot use (not a database, a newer
    schema, a failed migration)."""
