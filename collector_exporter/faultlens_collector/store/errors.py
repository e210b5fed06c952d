"""What can go wrong with a store, whatever the backend."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The database cannot be opened or used (its message names where and why)."""


class SchemaError(StoreError):
    """The database holds tables this faultlens cannot use (not a database, a newer
    schema, a failed migration)."""


class CommitInDoubt(StoreError):
    """The link to the database was lost while a transaction committed, and the database
    could not say in time whether it did: it may or may not have been kept. Never retried
    by the caller (that could keep it twice)."""
