"""Benchmarks: `python -m bench <name> [args]`; the last stdout line is JSON."""
