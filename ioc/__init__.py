"""Composition root of City IOC: the command line, settings and pipeline wiring.

It is the only package that knows all the others.
"""
