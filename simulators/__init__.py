"""Sensor simulators: per-kind models, labelled anomaly injection, CSV replay.

* :mod:`simulators.models` -- :func:`baseline` readings of each sensor kind;
* :mod:`simulators.anomalies` -- :func:`inject` one anomaly, :class:`AnomalyLabel`;
* :mod:`simulators.city` -- :class:`CitySimulator`: the whole registry, as a
  batch over a span or a :class:`CityStream` advanced by the caller's clock;
* :mod:`simulators.replay` -- :func:`read_series_csv` and the paced :class:`Replayer`;
* :mod:`simulators.corpus` -- :func:`write_corpus`, a NAB-style labelled corpus.
"""
from simulators.anomalies import ANOMALY_KINDS, AnomalyLabel, inject, typical_scale
from simulators.city import CitySimulator, CityStream
from simulators.corpus import CorpusSummary, write_corpus
from simulators.models import baseline, expected
from simulators.replay import Replayer, read_series_csv

__all__ = [
    "ANOMALY_KINDS",
    "AnomalyLabel",
    "CitySimulator",
    "CityStream",
    "CorpusSummary",
    "Replayer",
    "baseline",
    "expected",
    "inject",
    "read_series_csv",
    "typical_scale",
    "write_corpus",
]
