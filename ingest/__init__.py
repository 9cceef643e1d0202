"""Transports and wire formats, both ways: consume for the pipeline, publish for simulators."""
