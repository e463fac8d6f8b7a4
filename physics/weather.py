"""The scenario's weather block (wind, stability, air state) and the wind forcing built
from it; every hazard that needs weather reads it from here."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from citytwin.physics.forcing import WindSeries


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class WindPoint(_Strict):
    """Wind from ``t_s`` on (s from scenario start): speed (m/s) and direction it blows
    from (degrees clockwise from north)."""

    t_s: float = Field(ge=0)
    speed_m_s: float = Field(ge=0, le=60)
    from_deg: float = Field(ge=0, le=360)


class Weather(_Strict):
    """Pasquill–Gifford stability class, terrain roughness class, air state and wind."""

    stability: Literal["A", "B", "C", "D", "E", "F"] = "D"
    terrain: Literal["urban", "rural"] = "urban"
    air_temperature_c: float = Field(15.0, ge=-60, le=60)
    pressure_pa: float = Field(101325.0, gt=50_000, lt=110_000)
    wind: list[WindPoint] = Field(min_length=1)

    @field_validator("wind")
    @classmethod
    def _sorted(cls, wind: list[WindPoint]) -> list[WindPoint]:
        times = [w.t_s for w in wind]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("wind times must strictly increase")
        return wind

    @property
    def temperature_k(self) -> float:
        """Air temperature (K)."""
        return self.air_temperature_c + 273.15


def wind_series(weather: Weather) -> WindSeries:
    """The scenario's wind points as a forcing series."""
    w = weather.wind
    return WindSeries(times_s=np.array([p.t_s for p in w], float),
                      speed_m_s=np.array([p.speed_m_s for p in w], float),
                      from_deg=np.array([p.from_deg for p in w], float))
