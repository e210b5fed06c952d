"""The SQLite backend: one file (WAL) holding the groups, the operator log and the
action engine's tables."""
