"""Compiled per-reading detection: every rule of the rulebook, one reading at a time.

One loop over the readings in arrival order, and for each reading over the rules it is
subject to — so a batch gives exactly what feeding its readings one by one gives, and a
sensor may appear many times in one batch. State lives in ``DetectionState`` arrays indexed
``[slot, rule, level]`` (slot = sensor index, or site index for site composites): slot first,
so one reading touches one contiguous block of memory.

Per rule kind (K levels, thresholds T_k increasing, hysteresis h, N-of-M debounce, minimum
duration D = ``sustain_s``):
- the *graded value* x is the reading (``threshold``), the rise per minute over the rule's
  window (``rate_of_rise``: (v − v_old)/(t − t_old)·60 with the oldest of the last
  ``RING`` readings no more than ``window_s`` old and at least ``min_span_s`` old — a rate
  over one reporting interval can be mostly noise and quantisation: one 1 cm step of a
  reservoir gauge over a minute reads as 1 cm/min —; no rate on a sensor's first reading), or
  the composite index over other rules' levels at the slot (``composite``);
- x *exceeds* level k when x ≥ T_k and has stayed so for at least D seconds, and *holds* it
  when x ≥ T_k − h;
- the level is the highest k with ≥ N of the last M readings exceeding k, or, if the current
  level is already ≥ k, with ≥ N of the last M holding k (debounced both ways);
- composites take no debounce (their inputs have it): level = highest k with index ≥ T_k.
The reference NumPy implementation of the threshold case is ``alerting.detector``; the
tests check both agree.
"""

from __future__ import annotations

import numba
import numpy as np

RING = 16
"""Readings kept per sensor for rate-of-rise rules (window_s / interval_s must not exceed it)."""

KIND_THRESHOLD, KIND_RATE, KIND_COMPOSITE = 0, 1, 2
COMBINE_MAX, COMBINE_WEIGHTED = 0, 1


@numba.njit(cache=True, inline="always")
def _popcount(x: np.uint32) -> int:
    """Set bits of a 32-bit word (SWAR, Hacker's Delight §5-1)."""
    x = x - ((x >> np.uint32(1)) & np.uint32(0x55555555))
    x = (x & np.uint32(0x33333333)) + ((x >> np.uint32(2)) & np.uint32(0x33333333))
    x = (x + (x >> np.uint32(4))) & np.uint32(0x0F0F0F0F)
    return int((x * np.uint32(0x01010101)) >> np.uint32(24))


@numba.njit(cache=True)
def _graded_level(r, slot, x, t, thr, hold, n_req, mask, sustain, level, ex_bits, ho_bits,
                  above_since):
    """Fold one graded value x at time t into rule r's bit histories; return the new level."""
    k_levels = thr.shape[2]
    old = level[slot, r]
    new = 0
    for k in range(k_levels):
        tk = thr[slot, r, k]
        if tk != tk:  # NaN: the rule does not use this level
            continue
        above = x >= tk
        if above:
            if above_since[slot, r, k] != above_since[slot, r, k]:
                above_since[slot, r, k] = t
            ex = t - above_since[slot, r, k] >= sustain[r]
        else:
            above_since[slot, r, k] = np.nan
            ex = False
        ho = x >= hold[slot, r, k]
        eb = ((ex_bits[slot, r, k] << np.uint32(1)) | np.uint32(ex)) & mask[r]
        hb = ((ho_bits[slot, r, k] << np.uint32(1)) | np.uint32(ho)) & mask[r]
        ex_bits[slot, r, k] = eb
        ho_bits[slot, r, k] = hb
        if _popcount(eb) >= n_req[r] or (old >= k + 1 and _popcount(hb) >= n_req[r]):
            new = k + 1
    return new


@numba.njit(cache=True)
def _rate_per_min(q, s, v, t, window, min_span, ring_t, ring_v, ring_n, ring_head):
    """Rise per minute against the oldest kept reading within ``window`` if it is at least
    ``min_span`` old (else NaN: too short a span to tell a trend from noise); push (t, v)."""
    n = ring_n[s, q]
    head = ring_head[s, q]
    rate = np.nan
    size = ring_t.shape[2]
    for j in range(n):  # oldest first
        pos = (head - n + j) % size
        dt = t - ring_t[s, q, pos]
        if dt <= window and dt > 0.0:
            if dt >= min_span:
                rate = (v - ring_v[s, q, pos]) / dt * 60.0
            break
    ring_t[s, q, head] = t
    ring_v[s, q, head] = v
    ring_head[s, q] = (head + 1) % size
    if n < size:
        ring_n[s, q] = n + 1
    return rate


@numba.njit(cache=True)
def detect(idx, value, time_s, usable,
           kind, member, thr, hold, n_req, mask, sustain, window, min_span, sign, lowest,
           rate_slot, comp_w, comp_combine, comp_site, site_of, site_ptr, site_members,
           level, ex_bits, ho_bits, above_since, since,
           ring_t, ring_v, ring_n, ring_head,
           out_row, out_rule, out_slot, out_old, out_new, out_since, out_x):
    """Process readings ``idx/value/time_s`` (arrival order) under every rule.

    Writes level changes to the ``out_*`` arrays (capacity len(idx) * n_rules) and returns
    their count. Readings with ``usable`` False change nothing.
    """
    n_rules = kind.shape[0]
    count = 0
    for i in range(idx.shape[0]):
        if not usable[i]:
            continue
        s = idx[i]
        v = value[i]
        t = time_s[i]
        for r in range(n_rules):
            if not member[s, r]:
                continue
            if kind[r] == KIND_COMPOSITE:
                slot = site_of[s] if comp_site[r] else s
                index = 0.0
                for q in range(n_rules):
                    w = comp_w[r, q]
                    if w == 0.0:
                        continue
                    lq = 0
                    if comp_site[r]:
                        for j in range(site_ptr[slot], site_ptr[slot + 1]):
                            m = site_members[j]
                            if member[m, q] and level[m, q] > lq:
                                lq = level[m, q]
                    else:
                        lq = level[s, q]
                    if comp_combine[r] == COMBINE_MAX:
                        index = max(index, float(lq))
                    else:
                        index += w * lq
                old = level[slot, r]
                new = 0
                for k in range(thr.shape[2]):
                    tk = thr[slot, r, k]
                    if tk == tk and index >= tk:
                        new = k + 1
                x = index
            else:
                slot = s
                if kind[r] == KIND_RATE:
                    x = sign[r] * _rate_per_min(rate_slot[r], s, v, t, window[r],
                                                min_span[r], ring_t, ring_v, ring_n,
                                                ring_head)
                    if x != x:  # no rate yet (too short a span, or a gap): no evidence
                        continue  # either way: level, debounce and episode stay as they are
                else:
                    x = v
                old = level[s, r]
                new = _graded_level(r, s, x, t, thr, hold, n_req, mask, sustain, level,
                                    ex_bits, ho_bits, above_since)
            # First exceedance of the episode: first reading at or above the lowest threshold.
            above = x >= lowest[slot, r]
            if above and since[slot, r] != since[slot, r]:
                since[slot, r] = t
            episode = since[slot, r]
            if new == 0 and not above:
                since[slot, r] = np.nan
            level[slot, r] = new
            if new != old:
                out_row[count] = i
                out_rule[count] = r
                out_slot[count] = slot
                out_old[count] = old
                out_new[count] = new
                out_since[count] = episode
                out_x[count] = x
                count += 1
    return count


@numba.njit(cache=True)
def check_order(idx, time_s, last_time_s):
    """Per row: accepted (time after the sensor's last accepted time) and that previous time.

    ``last_time_s`` is updated in place for accepted rows; pass a copy to keep it on failure.
    """
    n = idx.shape[0]
    keep = np.empty(n, dtype=np.bool_)
    prev = np.empty(n)
    for i in range(n):
        s = idx[i]
        p = last_time_s[s]
        prev[i] = p
        if time_s[i] > p:
            keep[i] = True
            last_time_s[s] = time_s[i]
        else:
            keep[i] = False
    return keep, prev
