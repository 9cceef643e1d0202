"""Which partition of a keyed topic each sensor's readings land on: Kafka's default partitioner.

Producers key readings by sensor id (:class:`~ingest.kafka.KafkaSink`, ``kcat -X
partitioner=murmur2_random``), so a sensor's partition is ``murmur2(id) & 0x7fffffff``
modulo the partition count -- the rule of Java's and aiokafka's default partitioner.

>>> partition_of(["BG-T1", "BG-T2", "BG-T3"], 6).tolist()
[4, 3, 1]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from aiokafka.partitioner import murmur2

__all__ = ["partition_of"]


def partition_of(keys: Sequence[str], partitions: int) -> np.ndarray:
    """The partition (int32) of each key among ``partitions``."""
    return np.array([(murmur2(k.encode("utf-8")) & 0x7FFFFFFF) % partitions for k in keys], dtype=np.int32)
