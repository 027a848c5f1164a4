"""Catalog of known downloads, downloads, local import and the model registry (no Qt, no torch)."""
