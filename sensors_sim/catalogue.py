"""Sensor types: what a kind of sensor measures, how well, how often and how it fails.

The shipped catalogue is ``sensors_sim/data/catalogue.yaml``; every number there is a
default a city can change, and each type carries a ``source`` saying where its numbers come
from. ``load_catalogue`` validates every field and raises ``twin.errors.InputError`` naming
the file, the sensor type id (as the field) and the reason.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from citytwin.twin.errors import InputError
from citytwin.twin.yamlfile import read_yaml_mapping

#: Seconds per day (rates in the catalogue are per day; everything inside is SI).
SECONDS_PER_DAY = 86_400.0
#: The sensor catalogue shipped with the package.
DEFAULT_CATALOGUE = "catalogue.yaml"


@dataclass(frozen=True)
class SensorType:
    """One kind of sensor. Values are in ``unit`` unless the name says otherwise.

    The measurement model (``sensors_sim.measurement``) reads a sample as
    ``lag(truth) + bias + drift·t + noise``, quantised to ``resolution`` and clipped to
    ``[range_min, range_max]``, with dropped samples, offline periods and stuck episodes.
    """

    id: str
    quantity: str  #: quantity name with its unit, e.g. ``ch4_lel_pct``
    unit: str  #: display unit, e.g. ``%LEL``
    range_min: float
    range_max: float
    resolution: float  #: readings are multiples of this (> 0)
    noise_sd: float  #: sample-to-sample Gaussian noise, standard deviation
    bias_sd: float  #: unit-to-unit bias, drawn once per sensor, standard deviation
    drift_per_day_sd: float  #: drift rate drawn once per sensor (unit/day), standard deviation
    response_t90_s: float  #: first-order lag, time to 90 % of a step (0 = instantaneous)
    interval_s: float  #: default sampling interval
    latency_s: float  #: delay from measurement to reception
    drop_probability: float  #: probability that one sample is lost
    offline_rate_per_day: float  #: Poisson rate of offline periods (battery, network)
    offline_mean_duration_s: float  #: mean of the exponential offline duration
    stuck_rate_per_day: float  #: Poisson rate of stuck-value episodes
    stuck_mean_duration_s: float  #: mean of the exponential stuck-episode duration
    description: str
    source: str  #: where the numbers come from

    @property
    def tau_s(self) -> float:
        """Time constant of the first-order lag: τ = t90 / ln 10 (s)."""
        return self.response_t90_s / math.log(10.0)


#: Field names of a catalogue entry (the mapping key is the id).
ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(SensorType) if f.name != "id")
_TEXT_FIELDS = ("quantity", "unit", "description", "source")
_NUMBER_FIELDS = tuple(f for f in ENTRY_FIELDS if f not in _TEXT_FIELDS)
#: Fields that must be > 0; all other numbers except range_min/range_max must be ≥ 0.
_POSITIVE_FIELDS = ("resolution", "interval_s", "offline_mean_duration_s",
                    "stuck_mean_duration_s")
_SIGNED_FIELDS = ("range_min", "range_max")


def default_catalogue_path() -> Path:
    """Path of the catalogue shipped in ``sensors_sim/data``."""
    return Path(str(resources.files("citytwin.sensors_sim") / "data" / DEFAULT_CATALOGUE))


def load_catalogue(path: str | Path | None = None) -> dict[str, SensorType]:
    """Read and validate a catalogue YAML file (default: the shipped one).

    The file holds ``sensor_types:``, a mapping of type id → entry with exactly the fields
    of ``SensorType`` (except ``id``). Returns the types keyed by id, in file order.
    """
    path = default_catalogue_path() if path is None else Path(path)
    src = str(path)
    doc = read_yaml_mapping(path, "sensor catalogue")
    extra = sorted(set(map(str, doc)) - {"name", "version", "sensor_types"})
    if extra:
        raise InputError(src, f"unknown top-level key(s) {extra}; expected 'sensor_types' "
                         "(and optionally 'name', 'version')")
    entries = doc.get("sensor_types")
    if not isinstance(entries, dict) or not entries:
        raise InputError(src, "must be a non-empty mapping of sensor type id → entry",
                         field="sensor_types")
    return {str(type_id): parse_sensor_type(str(type_id), entry, src)
            for type_id, entry in entries.items()}


def parse_sensor_type(type_id: str, entry: object, source: str) -> SensorType:
    """Validate one catalogue entry; errors name ``source`` and ``type_id``."""

    def fail(reason: str) -> InputError:
        return InputError(source, reason, field=type_id)

    if not type_id.strip():
        raise InputError(source, "sensor type id must be non-empty", field="sensor_types")
    if not isinstance(entry, dict):
        raise fail(f"entry must be a mapping of fields, got {type(entry).__name__}")
    keys = set(map(str, entry))
    unknown = sorted(keys - set(ENTRY_FIELDS))
    if unknown:
        raise fail(f"unknown key(s) {unknown}")
    missing = [k for k in ENTRY_FIELDS if k not in keys]
    if missing:
        raise fail(f"missing key(s) {missing}")
    values: dict[str, object] = {}
    for key in _TEXT_FIELDS:
        v = entry[key]
        if not isinstance(v, str) or not v.strip():
            raise fail(f"{key} must be a non-empty string, got {v!r}")
        values[key] = v.strip()
    for key in _NUMBER_FIELDS:
        v = entry[key]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise fail(f"{key} must be a number, got {v!r}")
        v = float(v)
        if not math.isfinite(v):
            raise fail(f"{key} must be finite, got {v!r}")
        if key in _POSITIVE_FIELDS and v <= 0:
            raise fail(f"{key} must be > 0, got {v:g}")
        if key not in _POSITIVE_FIELDS and key not in _SIGNED_FIELDS and v < 0:
            raise fail(f"{key} must be ≥ 0, got {v:g}")
        values[key] = v
    if values["range_min"] >= values["range_max"]:  # type: ignore[operator]
        raise fail(f"range_min ({values['range_min']:g}) must be below "
                   f"range_max ({values['range_max']:g})")
    if values["drop_probability"] >= 1:  # type: ignore[operator]
        raise fail(f"drop_probability must be < 1, got {values['drop_probability']:g}")
    return SensorType(id=type_id, **values)  # type: ignore[arg-type]
