"""The compiled per-reading update of the anomaly core (numba).

One call scores a whole batch: it walks the rows in time order and updates each
row's sensor in the shared state arrays.  Sensors are independent, so this is the
same computation as updating every sensor at once round by round, without the
fixed ~1 µs cost a numpy call pays however small its array: with numpy rounds, one
reading of one sensor costs about 0.5 ms, which made replaying one recorded sensor,
or the 58 NAB files side by side (22,695 rounds), take minutes instead of seconds.

Layout: ``st[sensor, field]`` keeps one sensor's scalars together; the tables
indexed by a position (ring, short memory, time-of-day slot) put that position
first and sensors next (``ring[position, sensor, :]``), so a tick of the whole city,
where every sensor is at the same position, walks memory in order.  Field indices and the order of the
``params`` vector are module constants, shared with :mod:`processing.core`.

Nothing here allocates, reads a clock or does I/O; arrays in, arrays out.
"""
from __future__ import annotations

import math

import numba

from processing.sun import solar_phase, sun_day

__all__ = ["FIELDS", "PARAMS", "SEASON_FIELDS", "score_batch"]

# per-sensor state fields (columns of ``st``)
FIELDS = ("n", "last_t", "last_x", "lo", "dlo", "hi", "dhi", "dm", "mean", "mad", "mu1", "mu2", "v1", "v2",
          "rs1", "rs2", "mr", "mr_seen", "spacing", "since_fire", "dvar", "run", "moves", "alert", "streak",
          "bias", "evar", "cusum_up", "cusum_down", "burst", "bias_seasonal", "slow", "slow_seasonal", "lvar",
          "sun_day", "sun_rise", "sun_set", "innov_log", "level_log")
(N, LAST_T, LAST_X, LO, DLO, HI, DHI, DM, MEAN, MAD, MU1, MU2, V1, V2, RS1, RS2, MR, MR_SEEN, SPACING,
 SINCE_FIRE, DVAR, RUN, MOVES, ALERT, STREAK, BIAS, EVAR, CUP, CDN, BURST, BIAS_SEA, SLOW, SLOW_SEA,
 LVAR, SUN_DAY, SUN_RISE, SUN_SET, ELOG, LLOG) = range(len(FIELDS))

# E[log z^2] for a standard normal z: exp(mean log square) * _LOG_GAUSS is a variance that a
# few huge innovations (a lamp circuit switching) barely move, unlike their mean square
_LOG_GAUSS = 3.5588

# fields of one time-of-day slot (last axis of ``season``): readings seen, mean and variance of
# the value; mean square of the forecast's innovation and of the level gap in that slot
SEASON_FIELDS = ("n", "mean", "var", "innov_var", "level_var")
(SN, SMU, SVAR, SIVAR, SLVAR) = range(len(SEASON_FIELDS))

# columns of the per-sensor ``geo`` input: 1 if its time of day is solar (sunrise 06:00,
# sunset 18:00), latitude, longitude, how its noise grows with its level (0 not, 1 in
# proportion, 0.5 as its square root), and its kind's fastest possible change per second
# (0: unbounded)
GEO_SOLAR, GEO_LAT, GEO_LON, GEO_NOISE, GEO_MAX_RATE = range(5)

# constants, in the order of the ``params`` vector (see AnomalyCore._params)
PARAMS = ("warmup", "utc_offset_s", "alpha_base", "winsor_k", "scale_floor", "z_cap", "short", "alpha_long",
          "alpha_lag", "alpha_spacing", "spacing_cap_s", "alpha_range", "range_decay", "th_range",
          "th_decayed_range", "th_likelihood", "th_lag_likelihood", "suppress_for", "seasonal_slots",
          "alpha_seasonal", "seasonal_min_days", "alpha_rate", "stuck_run", "stuck_score", "gap_factor",
          "z_report", "alert_on", "alert_sustained", "alert_off", "alert_on_count", "alert_off_count",
          "alert_warmup", "alpha_bias", "alpha_innovation", "cusum_k", "cusum_h", "alpha_burst", "burst_ratio",
          "innovation_floor", "alpha_slow_level", "day_types", "slot_tolerance", "season_gate", "scale_share", "arm_days", "cusum_slow",
          "early_on")
(P_WARMUP, P_OFFSET, P_ALPHA_BASE, P_WINSOR, P_FLOOR, P_ZCAP, P_SHORT, P_ALPHA_LONG, P_ALPHA_LAG, P_ALPHA_SP,
 P_SP_CAP, P_ALPHA_RANGE, P_RANGE_DECAY, P_TH_RANGE, P_TH_DRANGE, P_TH_LIKE, P_TH_LAG, P_SUPPRESS, P_SLOTS,
 P_ALPHA_SEA, P_SEA_DAYS, P_ALPHA_RATE, P_STUCK_RUN, P_STUCK_SCORE, P_GAP, P_Z_REPORT, P_ALERT_ON,
 P_ALERT_SUSTAINED, P_ALERT_OFF, P_ON_COUNT, P_OFF_COUNT, P_ALERT_WARMUP, P_ALPHA_BIAS, P_ALPHA_INNOV,
 P_CUSUM_K, P_CUSUM_H, P_ALPHA_BURST, P_BURST_RATIO, P_INNOV_FLOOR, P_ALPHA_SLOW_LEVEL, P_DAY_TYPES,
 P_SLOT_TOL, P_SEASON_GATE, P_SCALE_SHARE, P_ARM_DAYS, P_CUSUM_SLOW, P_EARLY_ON) = range(len(PARAMS))

_EPS = 1e-9


@numba.njit(cache=True, nogil=True, fastmath=False)
def score_batch(order, sensor, ts, value, p, st, season, short, ring, ring_aux,
                interval, guess, lo_lim, hi_lim, geo, out_score, out_alert, out_reasons):  # pragma: no cover - compiled
    """Score rows ``order`` (time order) of a batch, learning as it goes; fill the three outputs."""
    window = ring.shape[0]
    k_short = short.shape[0]
    day_types = max(int(p[P_DAY_TYPES]), 1)
    slots = season.shape[0] // day_types
    tol = int(p[P_SLOT_TOL])
    warmup = p[P_WARMUP]
    zr = p[P_Z_REPORT]
    inv_th_range = 1.0 / p[P_TH_RANGE]
    inv_th_drange = 1.0 / p[P_TH_DRANGE]
    inv_th_like = 1.0 / p[P_TH_LIKE]
    inv_th_lag = 1.0 / p[P_TH_LAG]
    inv_zcap = 1.0 / p[P_ZCAP]
    slots_per_s = slots / 86400.0
    slot_s = 86400.0 / slots
    for r in range(order.shape[0]):
        j = order[r]
        i = sensor[j]
        t = ts[j]
        x = value[j]
        s = st[i]
        cnt = s[N]
        valid = math.isfinite(x)
        late = t <= s[LAST_T]                    # NaN (never seen) compares False
        learn = valid and not late
        if not valid:
            x = s[LAST_X]
        if cnt == 0.0 and learn:                 # the first reading starts everything at itself
            s[LAST_X] = x
            s[LO] = x
            s[DLO] = x
            s[HI] = x
            s[DHI] = x
            s[DM] = x
            s[MEAN] = x
            s[SPACING] = guess[i]
            s[LAST_T] = t - guess[i]
        last_t = s[LAST_T]
        last_x = s[LAST_X]
        ci = int(cnt)
        warm = cnt >= warmup

        # -- range and decayed range: how far outside what was seen
        span = s[HI] - s[LO]
        floor = p[P_FLOOR] * span + _EPS
        r_range = 0.0
        if span > 0.0:
            r_range = max(x - s[HI], s[LO] - x, 0.0) / span * inv_th_range
        dspan = s[DHI] - s[DLO]
        r_drange = 0.0
        if dspan > 0.0:
            r_drange = max(x - s[DHI], s[DLO] - x, 0.0) / dspan * inv_th_drange
        dm = s[DM] + p[P_ALPHA_RANGE] * (x - s[DM])
        new_dhi = max(x, s[DHI] + p[P_RANGE_DECAY] * (dm - s[DHI]))
        new_dlo = min(x, s[DLO] + p[P_RANGE_DECAY] * (dm - s[DLO]))

        # -- deviation from the winsorised EW baseline (mean, mean absolute deviation)
        mean0 = s[MEAN]
        dev = x - mean0
        adev = abs(dev)
        scale = s[MAD] + floor
        z = adev / scale
        lim = p[P_WINSOR] * s[MAD] + floor
        new_mean = s[MEAN] + p[P_ALPHA_BASE] * min(max(dev, -lim), lim)
        new_mad = s[MAD] + p[P_ALPHA_BASE] * (min(adev, lim) - s[MAD])
        raw0 = min(z * inv_zcap, 1.0)

        # -- one-day lag: difference to the reading one day (in learned spacing) earlier
        dt = t - last_t
        spacing = s[SPACING]
        new_spacing = spacing
        if dt > 0.0:
            new_spacing = spacing + p[P_ALPHA_SP] * (min(dt, p[P_SP_CAP]) - spacing)
        lag_n = int(math.floor(86400.0 / spacing + 0.5))
        lag_ok = lag_n <= window and ci >= lag_n
        lag_c = min(max(lag_n, 1), window)
        resid = abs(x - ring[(ci - lag_c) % window, i, 1])
        raw1 = 0.0
        new_mr = s[MR]
        if lag_ok:
            raw1 = min(resid / (s[MR] + floor) * inv_zcap, 1.0)
            new_mr = s[MR] + p[P_ALPHA_LAG] * (resid - s[MR]) if s[MR_SEEN] > 0.0 else resid

        # -- likelihoods: short mean of the capped surprise against its long-run mean and variance
        kpos = ci % k_short
        rs1 = s[RS1] + raw0 - short[kpos, i, 0]
        rs2 = s[RS2] + raw1 - short[kpos, i, 1]
        denom = min(cnt + 1.0, float(k_short))
        like1 = (rs1 / denom - s[MU1]) / math.sqrt(s[V1] + 1e-4) * inv_th_like
        like2 = (rs2 / denom - s[MU2]) / math.sqrt(s[V2] + 1e-4) * inv_th_lag
        a_l = p[P_ALPHA_LONG]
        d1_ = raw0 - s[MU1]
        d2_ = raw1 - s[MU2]

        # -- fuse; hold down after a detection
        ratio = max(r_range, r_drange, like1, like2, 0.0)
        score = ratio / (1.0 + ratio)
        if not warm or s[SINCE_FIRE] < p[P_SUPPRESS]:
            score = 0.0

        # -- explanation detectors: time of day, rate of change, flatline, gap, hard limits
        # time of day (on the solar clock for lamps), and which kind of day: the slot row
        local = t + p[P_OFFSET]
        lday = math.floor(local * (1.0 / 86400.0))
        sod = local - lday * 86400.0
        if geo[i, GEO_SOLAR] > 0.0:
            if s[SUN_DAY] != lday:
                rise, sset = sun_day(lday, geo[i, GEO_LAT], geo[i, GEO_LON], p[P_OFFSET])
                s[SUN_DAY] = lday
                s[SUN_RISE] = rise
                s[SUN_SET] = sset
            sod = solar_phase(sod, s[SUN_RISE], s[SUN_SET])
        tslot = min(int(sod * slots_per_s), slots - 1)
        dtype_row = 0
        if day_types > 1 and (int(lday) + 3) % 7 >= 5:     # Saturday, Sunday
            dtype_row = slots
        slot = dtype_row + tslot
        expected = interval[i]
        if math.isnan(expected):
            expected = spacing
        per_day = slot_s / expected
        sea_n = season[slot, i, SN]
        need = p[P_SEA_DAYS] * per_day
        sea_ok = sea_n >= need
        fslot = slot                             # the slot row the forecast reads
        if not sea_ok and day_types > 1:         # a kind of day not learned yet: borrow the other's
            other = slots - dtype_row + tslot
            if season[other, i, SN] >= need:
                fslot = other
        sea_ready = season[fslot, i, SN] >= need   # a forecast exists (maybe borrowed)
        sea_mu = season[slot, i, SMU]
        sea_var = season[slot, i, SVAR]
        sea_scale = math.sqrt(sea_var) + floor
        sea_dev = x - sea_mu
        z_sea = abs(sea_dev) / sea_scale if sea_ok else 0.0
        d1 = x - last_x
        dscale = math.sqrt(s[DVAR]) + floor
        z_rate = abs(d1) / dscale if cnt >= 2.0 else 0.0
        same = d1 == 0.0
        run = s[RUN] + 1.0 if same else 0.0
        moves = s[MOVES] + (0.0 if same else 1.0)
        stuck = valid and run >= p[P_STUCK_RUN] and moves >= 0.5 * cnt
        gap = dt > p[P_GAP] * expected and cnt >= 3.0
        limit = x < lo_lim[i] or x > hi_lim[i]
        # faster than the kind can change (a stuck-then-jumping gauge, a probe out of the water),
        # beyond the sensor's own step noise: a gauge read every second moves a quantum or two
        # between readings, which no river does, and that is not a fault
        max_rate = geo[i, GEO_MAX_RATE]
        impossible = (learn and max_rate > 0.0 and cnt >= 3.0 and dt > 0.0
                      and abs(d1) > max_rate * max(dt, expected) + 6.0 * dscale)
        if stuck and warm and p[P_STUCK_SCORE] > score:
            score = p[P_STUCK_SCORE]
        if limit:
            score = 1.0
        if not valid:
            score = 0.0

        # -- the alert decision. The forecast is the best baseline there is (time of day once
        # learned, else the EW baseline) plus a fast local bias; its innovations, in their own
        # scale, feed an instant test, a two-sided CUSUM (level shifts, drifts) and a short
        # variance ratio (bursts); hysteresis keeps a noisy sensor from flapping.
        z_dev = z * 0.8                          # mean absolute deviation ~ 0.8 standard deviations
        armed = cnt >= p[P_ALERT_WARMUP]
        # each forecast keeps its own local bias, so switching to the time-of-day forecast
        # once it is learned does not look like a jump
        innov_ew = x - mean0 - s[BIAS]
        innov_floor = p[P_INNOV_FLOOR] * span + _EPS
        # the time-of-day forecast: of this slot and its neighbours (a schedule a few minutes
        # early or late, a ramp that starts a little sooner), the one that explains x best,
        # each innovation in the scale of its own slot
        # The scale: the slot's mean square innovation pooled with its two neighbours (a slot
        # alone sees one or two readings a day), never below a share of the sensor's typical one
        # (exp of its mean log square: a few dusk switches do not lift every quiet slot's floor).
        base = fslot - fslot % slots
        pooled = 0.0
        lpooled = 0.0
        for dk in range(-1, 2):
            row = base + (fslot % slots + dk) % slots
            pooled += season[row, i, SIVAR]
            lpooled += season[row, i, SLVAR]
        typical = math.exp(s[ELOG]) * _LOG_GAUSS if cnt >= 2.0 else s[EVAR]
        ltypical = math.exp(s[LLOG]) * _LOG_GAUSS if cnt >= 2.0 else s[LVAR]
        pooled = max(pooled * (1.0 / 3.0), p[P_SCALE_SHARE] * typical)
        lpooled = max(lpooled * (1.0 / 3.0), p[P_SCALE_SHARE] * ltypical)
        innov_sea = x - season[fslot, i, SMU] - s[BIAS_SEA]
        # noise that grows with the level (particulates, flows: multiplicative; counts: Poisson):
        # the slot's scale is for its usual level; today's forecast level rescales it
        ratio = 1.0
        power = geo[i, GEO_NOISE]
        if power > 0.0:
            mu_f = abs(season[fslot, i, SMU])
            e = 1e-6 + 0.02 * mu_f
            ratio = min(max(((abs(season[fslot, i, SMU] + s[BIAS_SEA]) + e) / (mu_f + e)) ** power, 0.25), 4.0)
        sig_sea = math.sqrt(pooled) * ratio + innov_floor
        if sea_ready:
            best = abs(innov_sea)
            # a photocell's switch wanders a few minutes round the sun's time from day to day, so
            # that a solar kind's switching slot has an on and an off neighbour: one slot more
            reach = tol + 1 if geo[i, GEO_SOLAR] > 0.0 else tol
            for dk in range(-reach, reach + 1):
                if dk == 0:
                    continue
                row = base + (fslot % slots + dk) % slots
                if season[row, i, SN] >= need:
                    cand = x - season[row, i, SMU] - s[BIAS_SEA]
                    if abs(cand) < best:
                        innov_sea = cand
                        best = abs(cand)
        if sea_ready:
            innov = innov_sea
            sig = sig_sea
        else:
            innov = innov_ew
            sig = math.sqrt(s[EVAR]) + innov_floor
        ze = innov / sig if cnt >= 2.0 else 0.0
        # two speeds of the local level: the fast one follows a shift or drift within a few
        # readings, the slow one within ~1/alpha_slow_level; their gap, in its own scale, is
        # the evidence of a level shift or a drift that the fast forecast alone absorbs
        # statistical alerts wait for the time-of-day baseline of this kind of day (season_gate)
        # -- meanwhile only a reading far outside the forecast alerts (early_on scales), and not
        # on a solar-scheduled kind, whose every dusk is such a jump until its shape is learned
        early = False
        if p[P_SEASON_GATE] > 0.0 and sea_n < p[P_ARM_DAYS] * per_day:
            early = (armed and p[P_EARLY_ON] > 0.0 and geo[i, GEO_SOLAR] == 0.0
                     and abs(ze) >= p[P_EARLY_ON])
            armed = False
        iwidth = p[P_WINSOR] * sig if armed else 1e300
        fast_ew = s[BIAS] + p[P_ALPHA_BIAS] * min(max(innov_ew, -iwidth), iwidth)
        fast_sea = s[BIAS_SEA]
        if sea_n > 0.0:
            fast_sea += p[P_ALPHA_BIAS] * min(max(innov_sea, -iwidth), iwidth)
        level = fast_sea - s[SLOW_SEA] if sea_ready else fast_ew - s[SLOW]
        if sea_ready:
            lsig = math.sqrt(lpooled) * ratio + innov_floor
        else:
            lsig = math.sqrt(s[LVAR]) + innov_floor
        zl = level / lsig if cnt >= 2.0 else 0.0
        zc = min(max(ze, -6.0), 6.0)
        # the CUSUM reads the innovation against the slow level (fast innovation plus the level
        # gap), so a shift keeps adding evidence for as long as it lasts, not for a few readings
        zs = (innov + level) / math.sqrt(sig * sig + lsig * lsig) if cnt >= 2.0 else 0.0
        if p[P_CUSUM_SLOW] > 0.0:
            zs = min(max(zs, -6.0), 6.0)
        else:
            zs = zc
        cup = max(0.0, s[CUP] + zs - p[P_CUSUM_K])
        cdn = max(0.0, s[CDN] - zs - p[P_CUSUM_K])
        burst = s[BURST] + p[P_ALPHA_BURST] * (zc * zc - s[BURST])
        evidence = max(abs(ze), abs(zl)) if armed else 0.0
        shift = armed and max(cup, cdn) >= p[P_CUSUM_H]
        bursting = armed and burst >= p[P_BURST_RATIO]
        urgent = limit or stuck or gap or shift or bursting or early or impossible or evidence >= p[P_ALERT_ON]
        alert_prev = s[ALERT] > 0.0
        if alert_prev:
            counting = evidence < p[P_ALERT_OFF] and not urgent and burst < 0.5 * p[P_BURST_RATIO]
        else:
            counting = evidence >= p[P_ALERT_SUSTAINED]
        streak = s[STREAK] + 1.0 if counting else 0.0
        turn_on = (not alert_prev) and (urgent or streak >= p[P_ON_COUNT])
        turn_off = alert_prev and streak >= p[P_OFF_COUNT]
        alert_now = (alert_prev or turn_on) and not turn_off
        if turn_on or turn_off:
            streak = 0.0
        if turn_on or shift:                     # a CUSUM restarts after it has spoken
            cup = 0.0
            cdn = 0.0

        bits = 0
        if early or (armed and (abs(ze) >= zr or (warm and z_dev >= zr))):
            bits |= 1
        if armed and abs(zl) >= zr:
            bits |= 512
        if z_sea >= zr:
            bits |= 2
        if impossible or (warm and z_rate >= 1.5 * zr):
            bits |= 4
        if stuck:
            bits |= 8
        if gap:
            bits |= 16
        if limit:
            bits |= 32
        if late:
            bits |= 64
        if not valid:
            bits |= 128
        if shift:
            bits |= 512
        if bursting:
            bits |= 1024
        out_score[j] = score
        out_reasons[j] = bits
        if not learn:                            # scored, never learned: leaves no trace
            out_alert[j] = alert_prev
            continue
        out_alert[j] = alert_now

        # -- learn
        s[LO] = min(s[LO], x)
        s[HI] = max(s[HI], x)
        s[DM] = dm
        s[DHI] = new_dhi
        s[DLO] = new_dlo
        s[MEAN] = new_mean
        s[MAD] = new_mad
        s[SPACING] = new_spacing
        if lag_ok:
            s[MR] = new_mr
            s[MR_SEEN] = 1.0
        s[RS1] = rs1
        s[RS2] = rs2
        s[MU1] += a_l * d1_
        s[MU2] += a_l * d2_
        s[V1] = (1.0 - a_l) * (s[V1] + a_l * d1_ * d1_)
        s[V2] = (1.0 - a_l) * (s[V2] + a_l * d2_ * d2_)
        short[kpos, i, 0] = raw0
        short[kpos, i, 1] = raw1
        s[SINCE_FIRE] = 0.0 if score >= 0.5 else s[SINCE_FIRE] + 1.0

        a_sea = max(p[P_ALPHA_SEA] / per_day, 1.0 / (sea_n + 1.0))
        if sea_ok:
            width = p[P_WINSOR] * sea_scale
            sea_dev = min(max(sea_dev, -width), width)
        season[slot, i, SN] = sea_n + 1.0
        season[slot, i, SMU] = sea_mu + a_sea * sea_dev
        season[slot, i, SVAR] = (1.0 - a_sea) * (sea_var + a_sea * sea_dev * sea_dev)
        if sea_n >= per_day and cnt >= 1.0:      # innovations mean something from the second day on
            a_iv = max(p[P_ALPHA_SEA] / per_day, 1.0 / (sea_n - per_day + 1.0))
            own = (innov_sea if fslot == slot else x - sea_mu - s[BIAS_SEA]) / ratio
            own_sig = math.sqrt(max(season[slot, i, SIVAR], p[P_SCALE_SHARE] * typical)) + innov_floor
            sw = p[P_WINSOR] * own_sig if season[slot, i, SIVAR] > 0.0 else 1e300
            ic = min(max(own, -sw), sw)
            season[slot, i, SIVAR] += a_iv * (ic * ic - season[slot, i, SIVAR])
            if not armed or abs(zl) < p[P_ALERT_SUSTAINED]:
                lv = level / ratio
                season[slot, i, SLVAR] += a_iv * (lv * lv - season[slot, i, SLVAR])
        if cnt >= 2.0:
            width = 2.0 * p[P_WINSOR] * dscale
            d1 = min(max(d1, -width), width)
        if cnt >= 1.0:
            a_rate = 1.0 / min(1.0 / p[P_ALPHA_RATE], cnt)
            s[DVAR] += a_rate * (d1 * d1 - s[DVAR])
        s[RUN] = run
        s[MOVES] = moves
        s[ALERT] = 1.0 if alert_now else 0.0
        s[STREAK] = streak
        if cnt >= 1.0:
            a_i = max(p[P_ALPHA_INNOV], 1.0 / cnt)
            ic = min(max(innov, -iwidth), iwidth)
            s[EVAR] += a_i * (ic * ic - s[EVAR])
            tiny = innov_floor * innov_floor
            s[ELOG] += a_i * (math.log(ic * ic + tiny) - s[ELOG])
            if not armed or abs(zl) < p[P_ALERT_SUSTAINED]:   # a shift in progress is not the norm
                a_lv = max(0.2 * p[P_ALPHA_INNOV], 1.0 / cnt)
                s[LVAR] += a_lv * (level * level - s[LVAR])
                s[LLOG] += a_lv * (math.log(level * level + tiny) - s[LLOG])
            a_slow = max(p[P_ALPHA_SLOW_LEVEL], 1.0 / cnt)
            # the slow levels follow the fast ones, each step winsorised in the gap's scale
            # once armed, so an incident moves the reference it is measured against only slowly
            gw = p[P_WINSOR] * lsig if armed else 1e300
            s[SLOW] += a_slow * min(max(fast_ew - s[SLOW], -gw), gw)
            s[SLOW_SEA] += a_slow * min(max(fast_sea - s[SLOW_SEA], -gw), gw)
            s[BIAS] = fast_ew
            s[BIAS_SEA] = fast_sea
        s[CUP] = cup
        s[CDN] = cdn
        s[BURST] = burst

        pos = ci % window
        ring[pos, i, 0] = t
        ring[pos, i, 1] = x
        ring_aux[pos, i, 0] = score
        ring_aux[pos, i, 1] = mean0
        ring_aux[pos, i, 2] = scale
        s[N] = cnt + 1.0
        s[LAST_T] = t
        s[LAST_X] = x
