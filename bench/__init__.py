"""Benchmarks that are not part of the runtime: run from a checkout as ``python -m bench.<name>``."""
