"""Files of a study folder: atomic writes, JSON-safe values, each member's metrics file."""

from __future__ import annotations

import json
import math
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

METRICS_FILE = "metrics.json"


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON via a temporary file and ``os.replace``: readers see all or nothing."""
    text = json.dumps(jsonable(data), indent=1, sort_keys=False, allow_nan=False)
    write_atomic(Path(path), text.encode("utf-8"))


def jsonable(obj: Any) -> Any:
    """NaN/inf → None; NumPy scalars → Python numbers."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes via a temporary file, fsync and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
