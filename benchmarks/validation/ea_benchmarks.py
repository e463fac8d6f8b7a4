"""Readers for the UK Environment Agency 2D benchmark files and the series metrics used to
compare a flood model with a reference depth series.

File formats (LISFLOOD-FP conventions, as described in ``../shared/benchmarks/ea2d/README.md``
and the LISFLOOD-FP 8.0 user manual, Bates et al.; Shaw et al. 2021, doi:10.5194/gmd-14-3577-2021):

- ``.par``: ``keyword value`` lines; a keyword alone is a flag.
- ``.bci``: one boundary per line, ``edge start end type [value|name]`` with edge N/E/S/W
  (start/end are coordinates along the edge) or ``P x y type [value|name]`` for a point.
- ``.bdy``: a comment line, then per series its name, ``count units`` (seconds, minutes,
  hours or days), then ``count`` rows ``value time``. For ``QVAR`` the value is a discharge
  per unit width (m²/s).
- ``.stage`` (input): the number of points, then ``x y`` per point.
- ``.stage`` (output): a header with ``stage x y elev`` per point, then after
  ``Output, depths:`` rows ``time depth_1 ... depth_n`` (depth in m, time in s).
- ``TestNoutput.csv`` (EA 2010 dataset): ``Point ID,X,Y``.

The benchmark itself: Néelz & Pender (2013), *Benchmarking the latest generation of 2D
hydraulic modelling packages*, Environment Agency report SC120002 (Test 4: "speed of flood
propagation over an extended floodplain").
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TIME_UNITS_S = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0}
EDGES = ("N", "E", "S", "W")

#: Depth (m) that counts as "the flood has arrived" for both model and reference series.
ARRIVAL_DEPTH_M = 0.01


@dataclass(frozen=True)
class BdySeries:
    """One named ``.bdy`` series: ``values`` (units of the boundary type) at ``times_s``."""

    name: str
    times_s: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class BciLine:
    """One ``.bci`` boundary: an edge segment (``edge`` in NESW) or a point (``edge`` 'P').

    For an edge, ``a``/``b`` are the start/end coordinates along it (y for W/E, x for N/S);
    for a point they are x, y. ``value`` is a number, a series name, or None (``FREE``).
    """

    edge: str
    a: float
    b: float
    kind: str
    value: float | str | None


@dataclass(frozen=True)
class StageSeries:
    """A LISFLOOD-FP ``.stage`` output: ``depth_m[time, point]`` at ``xy_m[point]``."""

    times_s: np.ndarray
    depth_m: np.ndarray
    xy_m: np.ndarray
    elevation_m: np.ndarray


def _lines(path: Path) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def read_par(path: Path) -> dict[str, str | bool]:
    """``keyword value`` pairs of a LISFLOOD-FP parameter file; flags map to True."""
    out: dict[str, str | bool] = {}
    for line in _lines(path):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        out[parts[0]] = " ".join(parts[1:]) if len(parts) > 1 else True
    return out


def read_bci(path: Path) -> list[BciLine]:
    """Boundary lines of a ``.bci`` file (edge segments and point sources)."""
    out = []
    for n, line in enumerate(_lines(path), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        edge = parts[0].upper()
        if edge not in (*EDGES, "P") or len(parts) < 4:
            raise ValueError(f"{path}: line {n}: expected 'edge a b type [value]', got {line!r}")
        raw = parts[4] if len(parts) > 4 else None
        try:
            value: float | str | None = float(raw) if raw is not None else None
        except ValueError:
            value = raw
        out.append(BciLine(edge, float(parts[1]), float(parts[2]), parts[3].upper(), value))
    return out


def read_bdy(path: Path) -> dict[str, BdySeries]:
    """Named time series of a ``.bdy`` file (first line is a comment), times in seconds."""
    lines = [ln for ln in _lines(path)[1:] if ln.strip()]
    out: dict[str, BdySeries] = {}
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        count_text, unit = lines[i + 1].split()[:2]
        count = int(count_text)
        scale = TIME_UNITS_S.get(unit.lower())
        if scale is None:
            raise ValueError(f"{path}: series {name!r}: unknown time unit {unit!r}")
        rows = np.array([ln.split()[:2] for ln in lines[i + 2 : i + 2 + count]], dtype=float)
        if rows.shape != (count, 2):
            raise ValueError(f"{path}: series {name!r}: expected {count} 'value time' rows")
        out[name] = BdySeries(name, rows[:, 1] * scale, rows[:, 0])
        i += 2 + count
    return out


def read_stage_points(path: Path) -> np.ndarray:
    """(n, 2) x, y of the output points of a ``.stage`` input file."""
    lines = [ln for ln in _lines(path) if ln.strip()]
    count = int(lines[0].split()[0])
    pts = np.array([ln.split()[:2] for ln in lines[1 : 1 + count]], dtype=float)
    if pts.shape != (count, 2):
        raise ValueError(f"{path}: expected {count} 'x y' rows")
    return pts


def read_stage_output(path: Path) -> StageSeries:
    """Depth series of a LISFLOOD-FP ``.stage`` output file."""
    lines = _lines(path)
    info: list[list[float]] = []
    rows: list[list[float]] = []
    section = ""
    for line in lines:
        text = line.strip()
        if text.startswith("Stage information"):
            section = "info"
        elif text.startswith("Output"):
            section = "out"
        elif not text or text.startswith("Time"):
            continue
        elif section == "info":
            info.append([float(v) for v in text.split()])
        elif section == "out":
            rows.append([float(v) for v in text.split()])
    meta = np.array(info, dtype=float)
    data = np.array(rows, dtype=float)
    if data.ndim != 2 or data.shape[1] != meta.shape[0] + 1:
        raise ValueError(f"{path}: depth rows do not match the {len(meta)} stage points")
    return StageSeries(data[:, 0], data[:, 1:], meta[:, 1:3], meta[:, 3])


def read_output_points(path: Path) -> tuple[list[str], np.ndarray]:
    """Point ids and (n, 2) x, y of an EA ``TestNoutput.csv``."""
    with Path(path).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        recs = [{k.strip(): v.strip() for k, v in r.items()} for r in reader]
    ids = [r["Point ID"] for r in recs]
    xy = np.array([[float(r["X"]), float(r["Y"])] for r in recs], dtype=float)
    return ids, xy


# --- series metrics -------------------------------------------------------------------------


def arrival_time_s(times_s: np.ndarray, depth_m: np.ndarray,
                   threshold_m: float = ARRIVAL_DEPTH_M) -> float:
    """First time the depth reaches ``threshold_m``, linearly interpolated between samples;
    NaN if never. Applied identically to model and reference series."""
    t = np.asarray(times_s, dtype=float)
    h = np.asarray(depth_m, dtype=float)
    above = np.flatnonzero(h >= threshold_m)
    if above.size == 0:
        return float("nan")
    k = int(above[0])
    if k == 0:
        return float(t[0])
    h0, h1 = h[k - 1], h[k]
    return float(t[k - 1] + (threshold_m - h0) / (h1 - h0) * (t[k] - t[k - 1]))


def rmse_on_reference(ref_t_s: np.ndarray, ref: np.ndarray, t_s: np.ndarray,
                      values: np.ndarray) -> float:
    """Root-mean-square of (model − reference), the model interpolated to reference times
    inside the model's time span."""
    ref_t_s = np.asarray(ref_t_s, dtype=float)
    inside = (ref_t_s >= t_s[0]) & (ref_t_s <= t_s[-1])
    model = np.interp(ref_t_s[inside], t_s, values)
    return float(np.sqrt(np.mean((model - np.asarray(ref)[inside]) ** 2)))


# --- EA Test 4 set-up -----------------------------------------------------------------------


@dataclass(frozen=True)
class EA4Case:
    """EA 2D Test 4 as given by the LISFLOOD-FP files (Shaw et al. 2021 reproducibility set).

    Flat bed z = 0 over ``width_m`` × ``height_m`` (x east, y north, origin at the SW
    corner), Manning ``manning_n``, inflow ``q_m2_s(t)`` per unit width on the west edge
    between ``inflow_y_m`` (so Q = q · 20 m, peak 20 m³/s), the other edges as ``edges``.
    """

    width_m: float
    height_m: float
    manning_n: float
    sim_time_s: float
    inflow_y_m: tuple[float, float]
    inflow_times_s: np.ndarray
    inflow_q_m2_s: np.ndarray
    edges: dict[str, str]
    points_xy_m: np.ndarray
    point_ids: list[str]

    @property
    def inflow_q_m3_s(self) -> np.ndarray:
        """Total inflow (m³/s): q per unit width times the inflow line length."""
        return self.inflow_q_m2_s * (self.inflow_y_m[1] - self.inflow_y_m[0])


#: Test 4 floodplain extent (Néelz & Pender 2013, Test 4: 1000 m × 2000 m, flat, datum 0).
EA4_WIDTH_M = 1000.0
EA4_HEIGHT_M = 2000.0


def load_ea4(test_dir: Path) -> EA4Case:
    """Read ``ea4.par``, ``ea4.bci``, ``ea4.bdy``, ``ea4.stage`` and ``Test4output.csv``."""
    test_dir = Path(test_dir)
    par = read_par(test_dir / "ea4.par")
    bci = read_bci(test_dir / "ea4.bci")
    bdy = read_bdy(test_dir / "ea4.bdy")
    inflows = [b for b in bci if b.kind == "QVAR"]
    if len(inflows) != 1 or inflows[0].edge != "W":
        raise ValueError(f"{test_dir}: expected one QVAR line on the west edge, got {inflows}")
    inflow = inflows[0]
    series = bdy[str(inflow.value)]
    edges = {b.edge: b.kind for b in bci if b.kind != "QVAR"}
    ids, xy = read_output_points(test_dir / "Test4output.csv")
    stage_xy = read_stage_points(test_dir / "ea4.stage")
    if not np.allclose(stage_xy, xy):
        raise ValueError(f"{test_dir}: ea4.stage and Test4output.csv points differ")
    return EA4Case(
        width_m=EA4_WIDTH_M,
        height_m=EA4_HEIGHT_M,
        manning_n=float(par["fpfric"]),
        sim_time_s=float(par["sim_time"]),
        inflow_y_m=(inflow.a, inflow.b),
        inflow_times_s=series.times_s,
        inflow_q_m2_s=series.values,
        edges=edges,
        points_xy_m=xy,
        point_ids=ids,
    )
