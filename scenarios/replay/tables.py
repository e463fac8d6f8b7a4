"""Table files of an incident — CSV, Parquet or JSON Lines — and their time columns.

Times are seconds from the incident's *anchor* (its wall clock of t = 0): ISO 8601 with a
UTC offset, or seconds; several columns are parsed on one time base (``parse_times``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from citytwin.twin.errors import InputError

_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


def read_raw_table(path: str | Path) -> pd.DataFrame:
    """A CSV, Parquet or JSON Lines file as a frame (no validation); empty → InputError."""
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if not path.is_file():
        raise InputError(str(path), "no such file")
    if ext == "csv":
        try:
            df = pd.read_csv(path, dtype={"sensor_id": str, "unit": str}, keep_default_na=False,
                             na_values=["", "NaN", "nan", "null"])
        except pd.errors.EmptyDataError:
            raise InputError(str(path), "empty file") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(str(path), f"not a readable CSV file ({exc})") from exc
    elif ext == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = pq.ParquetFile(path).schema_arrow.names
            dict_cols = [c for c in ("sensor_id", "unit") if c in names]
            df = pq.read_table(path, read_dictionary=dict_cols).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise InputError(str(path), f"corrupt or not a Parquet file ({exc})") from exc
    elif ext in ("jsonl", "ndjson"):
        rows = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(str(path), f"not valid JSON ({exc.msg})",
                                     feature_id=f"line {n}") from None
                if not isinstance(rec, dict):
                    raise InputError(str(path), "each line must be a JSON object",
                                     feature_id=f"line {n}")
                rows.append(rec)
        df = pd.DataFrame(rows)
    else:
        raise InputError(str(path), f"unsupported format {path.suffix!r} (use .csv, .parquet "
                         "or .jsonl)")
    if df.empty:
        raise InputError(str(path), "empty file: no rows")
    return df


def parse_times(values: pd.Series, source: str, column: str | tuple[str, ...],
                anchor: datetime | None) -> tuple[np.ndarray, datetime | None]:
    """Seconds from ``anchor`` for ISO 8601 (with offset) or numeric times.

    Returns the seconds and the anchor used (the earliest time when none was given for ISO
    times; None for numeric times with no anchor). ``column`` may name several columns whose
    values are concatenated in ``values`` (equal lengths, in that order): they are parsed
    on one time base, so seconds in one and ISO times in another are refused, and an error
    names the column and row of the bad value.
    """
    columns = (column,) if isinstance(column, str) else tuple(column)
    n = len(values) // len(columns)

    def fail(reason: str, k: int) -> InputError:
        return InputError(source, reason, field=columns[k // n], feature_id=f"row {k % n + 1}")

    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is None:
            raise InputError(source, "timestamps need a UTC offset (time zone)",
                             field=columns[0])
        stamps = values
    elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        secs = values.to_numpy(dtype=float)
        bad = ~np.isfinite(secs)
        if bad.any():
            raise fail("unparseable time (empty or not finite)", int(np.flatnonzero(bad)[0]))
        return secs, anchor
    else:
        text = values.astype(str).str.strip()
        numeric = pd.to_numeric(text, errors="coerce")
        if numeric.notna().all():
            return parse_times(numeric, source, columns, anchor)
        if numeric.notna().any():
            k = int(np.flatnonzero(numeric.isna().to_numpy())[0])
            raise fail(f"mixes seconds and ISO 8601 times ({text.iloc[k]!r})", k)
        no_offset = ~text.str.contains(_OFFSET)
        stamps = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        bad = (stamps.isna() | no_offset).to_numpy()
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            why = ("needs a UTC offset, e.g. 2026-06-01T05:30:00+08:00"
                   if not stamps.isna().iloc[k] else "not an ISO 8601 time or seconds")
            raise fail(f"unparseable time {text.iloc[k]!r}: {why}", k)
    stamps = stamps.dt.tz_convert("UTC")
    if anchor is None:
        anchor = stamps.min().to_pydatetime()
    base = pd.Timestamp(anchor).tz_convert("UTC")
    return ((stamps - base).dt.total_seconds()).to_numpy(dtype=float), anchor


def time_columns(raw: pd.DataFrame, src: str, columns: tuple[str, ...],
                  anchor: datetime | None) -> tuple[list[np.ndarray], datetime | None]:
    """Several time columns parsed on one time base (``parse_times``): seconds per column."""
    parts = []
    for c in columns:
        v = raw[c].reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(v):
            if getattr(v.dt, "tz", None) is None:
                raise InputError(src, "timestamps need a UTC offset (time zone)", field=c)
            v = v.dt.tz_convert("UTC")  # one dtype across the columns
        parts.append(v)
    values = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    secs, anchor = parse_times(values, src, columns, anchor)
    return np.split(secs, len(columns)), anchor
