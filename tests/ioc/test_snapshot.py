"""The snapshot builder: statuses and what changed since the last build, health, who is on duty."""
from __future__ import annotations

import numpy as np

from dashboard.source import ALERT, NORMAL, OFFLINE, WARNING
from ioc.alerting.wiring import build_alerting
from ioc.citydata import default_city_dir, load_extras, load_registry
from ioc.snapshot import LiveFigures, SnapshotBuilder
from processing.batch import ReadingBatch
from processing.core import AnomalyCore
from processing.kpis import CityKpis, KpiConfig

PATH = default_city_dir() / "sensors.geojson"
REG = load_registry(PATH)
EXTRAS = load_extras(PATH, REG)
T0 = 1772413200.0          # 2026-03-02 08:00 +07:00 (Monday)


def builder() -> tuple[SnapshotBuilder, AnomalyCore]:
    alerting, _ = build_alerting(REG, None, channels={})
    kinds = np.array([s.kind for s in REG.sensors], dtype=object)
    kpis = CityKpis(kinds, np.array([s.lon for s in REG.sensors]), np.array([s.lat for s in REG.sensors]),
                    KpiConfig())
    return SnapshotBuilder(REG, EXTRAS, alerting, kpis, run_id="r1", speed=60.0, warn_score=0.5, band_k=4.0), \
        AnomalyCore(REG)


def live(status: str = "ok") -> LiveFigures:
    return LiveFigures(status, 12.5, 1000, {"out_of_range": 2, "non_finite": 1}, {}, 7, 3, None)


def test_statuses_and_only_the_sensors_that_changed_get_the_new_revision() -> None:
    b, core = builder()
    n = len(REG)
    score, value = np.zeros(n), np.full(n, np.nan)
    first = b.build(now=T0, wall=5.0, core=core, silent=np.array([], dtype=np.intp), last_value=value,
                    score=score, alerts=(), alerts_rev=0, live=live("starting"))
    assert first.seq == 1 and (first.status == OFFLINE).all() and first.health.status == "starting"
    reporting = np.arange(n - 3)                             # all but three report; one of them scores high
    core.update(ReadingBatch.from_arrays(reporting, np.full(reporting.size, T0), np.ones(reporting.size)))
    score[5] = 0.7
    second = b.build(now=T0 + 1, wall=6.0, core=core, silent=np.array([7]), last_value=value, score=score,
                     alerts=(), alerts_rev=0, live=live())
    assert second.seq == 2
    assert second.status[5] == WARNING and second.status[7] == OFFLINE and second.status[0] == NORMAL
    assert (second.status[n - 3:] == OFFLINE).all()
    changed = np.flatnonzero(second.status_rev == 2)
    assert set(changed.tolist()) == set(range(n - 3)) - {7}     # the offline ones stayed offline: revision 1's 0
    assert second.health.status == "ok" and second.health.deadletters_total == 3
    assert second.metrics.deadletters_by_reason == {"out_of_range": 2, "non_finite": 1}
    assert second.kpis.online == n - 4 and second.kpis.stale == 1 and second.kpis.never == 3
    score[5] = 0.0
    third = b.build(now=T0 + 2, wall=7.0, core=core, silent=np.array([7]), last_value=value, score=score,
                    alerts=(), alerts_rev=0, live=live())
    assert np.flatnonzero(third.status_rev == 3).tolist() == [5]
    assert ALERT not in third.status and first.status_rev.max() == 0     # earlier snapshots are copies


def test_a_city_mostly_silent_is_degraded_and_the_duty_roster_is_named() -> None:
    b, core = builder()
    n = len(REG)
    core.update(ReadingBatch.from_arrays(np.arange(n), np.full(n, T0), np.ones(n)))
    snap = b.build(now=T0 + 60, wall=1.0, core=core, silent=np.arange(n // 2 + 1), last_value=np.ones(n),
                   score=np.zeros(n), alerts=(), alerts_rev=0, live=live())
    assert snap.health.status == "degraded"
    duty = {d.team: [o[0] for o in d.officers] for d in snap.on_duty}
    assert duty["giao_thong"] == ["nguyen_van_an"]            # Monday 08:01 local: the day shift
