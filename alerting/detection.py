"""Detection state for a rulebook over a sensor inventory, and the call into the kernel.

``DetectionState`` lays the rulebook out as arrays (per-sensor thresholds after per-asset
overrides, debounce masks, composite weights, site membership) and holds every rule's level
state; ``DetectionState.run`` feeds readings through ``alerting.detect_kernel.detect``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from citytwin.alerting.detect_kernel import (
    COMBINE_MAX,
    COMBINE_WEIGHTED,
    KIND_COMPOSITE,
    KIND_RATE,
    KIND_THRESHOLD,
    RING,
    detect,
)
from citytwin.alerting.rulebook import Rule, Rulebook

_KINDS = {"threshold": KIND_THRESHOLD, "rate_of_rise": KIND_RATE, "composite": KIND_COMPOSITE}


@dataclass(frozen=True)
class LevelChanges:
    """Level changes from one ``run``, in processing order (row, then rule order)."""

    row: np.ndarray
    rule: np.ndarray
    slot: np.ndarray
    old: np.ndarray
    new: np.ndarray
    since_s: np.ndarray
    graded: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


class DetectionState:
    """Every rule's per-sensor (or per-site) state, as arrays for the compiled kernel.

    Arrays are indexed ``[slot, rule(, level)]``: a reading's state is contiguous in memory.
    """

    def __init__(self, rulebook: Rulebook, inventory: pd.DataFrame) -> None:
        rules = rulebook.rules
        n_rules, n, k = len(rules), len(inventory), len(rulebook.levels)
        ids = inventory["sensor_id"].astype(str).to_numpy(dtype=object)
        types = inventory["type_id"].astype(str).to_numpy(dtype=object)
        quantities = inventory["quantity"].astype(str).to_numpy(dtype=object)
        assets = (inventory["asset_id"].astype(str).to_numpy(dtype=object)
                  if "asset_id" in inventory.columns else np.full(n, "", dtype=object))
        sites = (inventory["site_id"].astype(str).to_numpy(dtype=object)
                 if "site_id" in inventory.columns else ids)
        self.site_ids, self.site_of = np.unique(sites, return_inverse=True)
        order = np.argsort(self.site_of, kind="stable")
        self.site_members = order.astype(np.int64)
        self.site_ptr = np.searchsorted(self.site_of[order], np.arange(len(self.site_ids) + 1))
        self.site_of = self.site_of.astype(np.int64)
        rule_pos = {r.id: j for j, r in enumerate(rules)}

        self.kind = np.array([_KINDS[r.kind] for r in rules], dtype=np.int64)
        self.member = np.zeros((n, n_rules), dtype=np.bool_)
        self.thr = np.full((n, n_rules, k), np.nan)
        self.hold = np.full((n, n_rules, k), np.nan)
        self.n_req = np.array([r.debounce.n for r in rules], dtype=np.int64)
        self.mask = np.array([(1 << r.debounce.m) - 1 for r in rules], dtype=np.uint32)
        self.sustain = np.array([r.sustain_s for r in rules], dtype=np.float64)
        self.window = np.array([r.window_s for r in rules], dtype=np.float64)
        self.min_span = np.array([r.min_span_s for r in rules], dtype=np.float64)
        self.sign = np.array([-1.0 if r.direction == "falling" else 1.0 for r in rules])
        self.comp_w = np.zeros((n_rules, n_rules), dtype=np.float64)
        self.comp_combine = np.zeros(n_rules, dtype=np.int64)
        self.comp_site = np.zeros(n_rules, dtype=np.bool_)
        self.rate_slot = np.full(n_rules, -1, dtype=np.int64)
        for j, rule in enumerate(rules):
            base = rulebook.threshold_vector(rule)
            self.thr[:, j] = base
            self.hold[:, j] = base - rule.hysteresis
            if rule.kind == "composite":
                comp = rule.composite
                for q in comp.of:
                    self.comp_w[j, rule_pos[q]] = comp.weights.get(q, 1.0)
                self.comp_combine[j] = COMBINE_MAX if comp.combine == "max" else COMBINE_WEIGHTED
                self.comp_site[j] = comp.group_by == "site"
                continue
            member = quantities == rule.quantity
            if rule.sensor_types:
                member &= np.isin(types, rule.sensor_types)
            self.member[:, j] = member
            self._apply_overrides(j, rule, rulebook, ids, assets)
            if rule.kind == "rate_of_rise":
                self.rate_slot[j] = int(np.count_nonzero(self.rate_slot >= 0))
        self.lowest = np.nanmin(self.thr, axis=2)
        n_rate = int(np.count_nonzero(self.rate_slot >= 0))
        self.ring_t = np.zeros((n, n_rate, RING))
        self.ring_v = np.zeros((n, n_rate, RING))
        self.ring_n = np.zeros((n, n_rate), dtype=np.int64)
        self.ring_head = np.zeros((n, n_rate), dtype=np.int64)
        self.level = np.zeros((n, n_rules), dtype=np.int64)
        self.ex_bits = np.zeros((n, n_rules, k), dtype=np.uint32)
        self.ho_bits = np.zeros((n, n_rules, k), dtype=np.uint32)
        self.above_since = np.full((n, n_rules, k), np.nan)
        self.since = np.full((n, n_rules), np.nan)
        # Composite slots: a sensor takes part if it is a member of any rule combined.
        for j in np.flatnonzero(self.kind == KIND_COMPOSITE):
            involved = self.member[:, self.comp_w[j] != 0.0].any(axis=1)
            if self.comp_site[j]:
                involved = np.isin(self.site_of, self.site_of[involved])
            self.member[:, j] = involved

    def _apply_overrides(self, j: int, rule: Rule, rulebook: Rulebook, ids: np.ndarray,
                         assets: np.ndarray) -> None:
        for ov in rule.overrides:
            hit = np.isin(ids, ov.sensors) | np.isin(assets, ov.assets)
            merged = rulebook.threshold_vector(rule.model_copy(
                update={"thresholds": {**rule.thresholds, **ov.thresholds}}))
            hyst = rule.hysteresis if ov.hysteresis is None else ov.hysteresis
            self.thr[hit, j] = merged
            self.hold[hit, j] = merged - hyst

    def run(self, idx: np.ndarray, value: np.ndarray, time_s: np.ndarray,
            usable: np.ndarray) -> LevelChanges:
        """Feed readings (sensor indices, arrival order) through every rule."""
        cap = max(1, len(idx) * len(self.kind))
        out_row = np.empty(cap, dtype=np.int64)
        out_rule = np.empty(cap, dtype=np.int64)
        out_slot = np.empty(cap, dtype=np.int64)
        out_old = np.empty(cap, dtype=np.int64)
        out_new = np.empty(cap, dtype=np.int64)
        out_since = np.empty(cap)
        out_x = np.empty(cap)
        count = detect(np.ascontiguousarray(idx, dtype=np.int64),
                       np.ascontiguousarray(value, dtype=np.float64),
                       np.ascontiguousarray(time_s, dtype=np.float64),
                       np.ascontiguousarray(usable, dtype=np.bool_),
                       self.kind, self.member, self.thr, self.hold, self.n_req, self.mask,
                       self.sustain, self.window, self.min_span, self.sign, self.lowest,
                       self.rate_slot, self.comp_w,
                       self.comp_combine, self.comp_site, self.site_of, self.site_ptr,
                       self.site_members, self.level, self.ex_bits, self.ho_bits,
                       self.above_since, self.since, self.ring_t, self.ring_v, self.ring_n,
                       self.ring_head, out_row, out_rule, out_slot, out_old, out_new, out_since,
                       out_x)
        return LevelChanges(out_row[:count], out_rule[:count], out_slot[:count],
                            out_old[:count], out_new[:count], out_since[:count], out_x[:count])
