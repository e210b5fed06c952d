"""Targeted as ``kinds_more:*``: every function defined here is wrapped."""

from __future__ import annotations

from os.path import join  # imported, not defined here: not wrapped


def parse(raw: bytes) -> str:
    return raw.decode("ascii")


def path(name: str) -> str:
    return join("/srv", name)
