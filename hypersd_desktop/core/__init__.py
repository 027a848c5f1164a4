"""Paths, errors, progress and cancellation shared by every layer (no Qt, no torch)."""
