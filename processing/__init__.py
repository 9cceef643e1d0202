"""The pure heart of City IOC: numpy in, numpy out, clocks passed in.

Nothing in this package opens a socket or a file or reads the wall clock; the
adapters in ``ingest``, ``simulators``, ``dashboard`` and ``ioc`` do that.
"""
from processing.batch import ReadingBatch
from processing.kinds import DOMAINS, KINDS, KindSpec
from processing.registry import Registry, RegistryError, SensorSpec

__all__ = [
    "DOMAINS",
    "KINDS",
    "KindSpec",
    "ReadingBatch",
    "Registry",
    "RegistryError",
    "SensorSpec",
]
