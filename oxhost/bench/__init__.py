"""Benchmarks: scripts that print figures, run on purpose (not tests)."""
