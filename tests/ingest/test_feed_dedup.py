"""The feed tells a redelivered reading (dropped) from a genuinely late one (handed on to the core)."""
from __future__ import annotations

import numpy as np
import pytest

from ingest.sources import RECENT, Feed
from processing.batch import ReadingBatch
from processing.core import AnomalyCore
from processing.reasons import Reason
from processing.registry import Registry

STEP = 300.0
T0 = 1_772_384_400.0


def feed_for(n: int, core: AnomalyCore | None = None) -> Feed:
    return Feed(None, Registry.synthetic(n), last_seen=core.last_seen if core else None)  # type: ignore[arg-type]


def batch(pairs: list[tuple[int, float]]) -> ReadingBatch:
    s = [p[0] for p in pairs]
    t = [p[1] for p in pairs]
    return ReadingBatch.from_arrays(s, t, [float(k) for k in range(len(pairs))])


@pytest.mark.parametrize("seed", range(8))
def test_nothing_is_handed_out_twice_whatever_the_broker_redelivers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3
    feed = feed_for(n)
    sent: list[tuple[int, float]] = []
    out: list[tuple[int, float]] = []
    for _ in range(200):
        fresh = [(int(i), T0 + STEP * len([p for p in sent if p[0] == i])) for i in rng.integers(0, n, 4)]
        sent += fresh
        k = int(rng.integers(0, 12))                      # redeliver some of what was sent, any of it
        again = [sent[j] for j in rng.integers(0, len(sent), k)]
        items = fresh + again
        rng.shuffle(items)
        b, _ = feed.deduplicate(batch(items))
        out += list(zip(b.sensor.tolist(), b.ts.tolist()))
    assert len(out) == len(set(out))                     # never scored twice
    assert set(out) == set(sent)                         # and every reading once: none lost
    assert feed.stats().late == 0                        # nothing was late: each (sensor, ts) came first as new


def test_a_late_reading_goes_on_to_the_core_which_scores_it_without_learning() -> None:
    core = AnomalyCore(Registry.synthetic(1))
    feed = feed_for(1, core)
    ts = T0 + STEP * np.arange(200)
    held = {50, 51, 120, 190}                             # a gateway buffered these and sends them late
    order = [k for k in range(200) if k not in held]
    late_after = {50: 53, 51: 55, 120: 125, 190: 199}     # ... a few readings afterwards
    scored_late = []
    for k in order:
        pairs = [(0, float(ts[k]))] + [(0, float(ts[h])) for h, at in late_after.items() if at == k]
        b, dups = feed.deduplicate(batch(pairs))
        assert dups == 0
        res = core.update(b)
        scored_late += [t for t, r in zip(b.ts.tolist(), res.reasons.tolist()) if r & Reason.LATE]
    assert sorted(scored_late) == sorted(float(ts[h]) for h in held)
    assert feed.stats().late == len(held)
    # redelivered afterwards (the gateway retries): duplicates now, late or not
    b, dups = feed.deduplicate(batch([(0, float(ts[h])) for h in held] + [(0, float(ts[198]))]))
    assert len(b) == 0 and dups == len(held) + 1
    assert core.readings_scored == 200


def test_a_redelivery_from_further_back_than_the_feed_remembers_is_still_a_duplicate() -> None:
    feed = feed_for(1)
    ts = T0 + STEP * np.arange(5 * RECENT)
    for k in range(0, ts.size, 7):                        # batches of several readings each
        feed.deduplicate(batch([(0, float(t)) for t in ts[k:k + 7]]))
    b, dups = feed.deduplicate(batch([(0, float(t)) for t in ts]))   # the whole history again
    assert len(b) == 0 and dups == ts.size
    b, _ = feed.deduplicate(batch([(0, float(ts[-3]) + 1.0)]))        # never seen, among the recent: late
    assert len(b) == 1 and feed.stats().late == 1
    b, dups = feed.deduplicate(batch([(0, float(ts[2]) + 1.0)]))      # never seen, but from beyond the
    assert len(b) == 0 and dups == 1                                  # remembered span: cannot tell, dropped


def test_after_a_restart_what_the_core_already_scored_is_dropped_not_taken_for_late() -> None:
    core = AnomalyCore(Registry.synthetic(2))
    first = feed_for(2, core)
    pairs = [(i, T0 + STEP * k) for k in range(30) for i in (0, 1)]
    b, _ = first.deduplicate(batch(pairs))
    core.update(b)
    again = feed_for(2, core)                             # a new feed (reconnect, restart): empty rings
    b, dups = again.deduplicate(batch(pairs[-10:] + [(0, T0 + STEP * 28.5)]))
    assert len(b) == 0 and dups == 11                     # at or below the core's last_seen: no way to tell
    b, dups = again.deduplicate(batch([(0, T0 + STEP * 30), (0, T0 + STEP * 30)]))
    assert b.ts.tolist() == [T0 + STEP * 30] and dups == 1
    b, dups = again.deduplicate(batch([(0, T0 + STEP * 29.75), (0, T0 + STEP * 29.75)]))
    assert b.ts.tolist() == [T0 + STEP * 29.75] and dups == 1    # above what the core had, never seen:
    assert again.stats().late == 1                                 # late, once
