"""The database seam: one database object per processor, every store taken from it."""
