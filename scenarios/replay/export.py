"""A citytwin run archive written as an incident folder (``citytwin replay export``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from citytwin.scenarios.replay.incident import MANIFEST_KEYS, Incident, read_archive_incident
from citytwin.scenarios.replay.inventory import write_inventory_geojson
from citytwin.scenarios.replay.observations import OBSERVATION_FORMATS
from citytwin.scenarios.run.archive import WARNING_COLUMNS
from citytwin.scenarios.run.archive_reader import read_table
from citytwin.twin.errors import InputError


def export_incident(archive: str | Path, out_dir: str | Path, fmt: str = "parquet", *,
                    incident: Incident | None = None) -> Path:
    """Write a citytwin run archive as an incident folder: observations.<fmt>,
    sensors.geojson, warnings.csv, work_orders.csv and incident.json. Times are ISO 8601
    with the run's offset. ``incident``: the archive already read
    (``read_archive_incident``). Returns the folder."""
    if fmt not in OBSERVATION_FORMATS:
        raise InputError("--format", f"unsupported format {fmt!r} (use one of "
                         f"{OBSERVATION_FORMATS})")
    inc = incident if incident is not None else read_archive_incident(archive)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    anchor = pd.Timestamp(inc.anchor)
    o = inc.observations
    obs = pd.DataFrame({
        "sensor_id": o["sensor_id"].astype(str),
        "phenomenon_time": anchor + pd.to_timedelta(o["time_s"], unit="s"),
        "result": o["value"], "unit": o["unit"].astype(str),
        "result_time": anchor + pd.to_timedelta(o["received_s"], unit="s"),
        "quality": o["quality"].astype(int)})
    for old in out.glob("observations.*"):
        old.unlink()
    path = out / f"observations.{fmt}"
    if fmt == "parquet":
        obs.to_parquet(path, index=False)
    else:
        for c in ("phenomenon_time", "result_time"):
            obs[c] = obs[c].map(lambda ts: ts.isoformat())
        if fmt == "csv":
            obs.to_csv(path, index=False, float_format="%.17g")
        else:
            with path.open("w", encoding="utf-8") as fh:
                for rec in obs.to_dict(orient="records"):
                    fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
    write_inventory_geojson(inc.sensors, inc.crs, out / "sensors.geojson")
    w = read_table(inc.source, "warnings").sort_values("seq")
    w.insert(2, "time", [(anchor + pd.Timedelta(seconds=t)).isoformat() for t in w["time_s"]])
    w[list(WARNING_COLUMNS[:1]) + ["time"] + list(WARNING_COLUMNS[1:])].to_csv(
        out / "warnings.csv", index=False)
    if inc.work_orders is not None:
        wo = inc.work_orders.copy()
        wo.insert(3, "time", [(anchor + pd.Timedelta(seconds=t)).isoformat()
                              for t in wo["time_s"]])
        wo.drop(columns="time_s").to_csv(out / "work_orders.csv", index=False)
    m = inc.manifest
    meta = {"format": "citytwin-incident/1", "anchor": anchor.isoformat(), "crs": inc.crs,
            "source_archive": str(Path(archive)), "observations": path.name,
            **{k: m[k] for k in MANIFEST_KEYS if k in m}}
    (out / "incident.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n",
                                       encoding="utf-8")
    return out
