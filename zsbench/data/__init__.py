"""Datasets read from local roots in their own on-disk formats (never downloaded)."""
