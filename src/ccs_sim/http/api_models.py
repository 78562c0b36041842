"""Request and response bodies of the Live Controller API (the spec's fields; extras are additive)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, field_validator


class _Body(BaseModel):
    """Numbers are JSON numbers (StrictFloat: 400 and 400.0 yes; true, "400" no), finite, in range."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class StartSessionRequest(_Body):
    target_voltage: StrictFloat = Field(400.0, gt=0, le=1500, description="DC target voltage (V)")
    initial_current: StrictFloat = Field(50.0, ge=0, le=1000, description="initial current request (A)")
    duration_s: StrictFloat = Field(10.0, gt=0, le=86_400, description="charging duration after precharge (s)")
    # additive
    ev_preset: Literal["follow", "ev400", "ev800", "ev_small"] | None = Field(
        None, description="simulated car: 'follow' (pack follows target_voltage, the default) or a preset")
    start_soc: StrictFloat | None = Field(None, ge=0, le=100, description="simulated car's SOC at plug-in (%)")
    target_soc: StrictFloat | None = Field(None, ge=0, le=100, description="SOC at which the car stops (%)")
    precharge_timeout_s: StrictFloat | None = Field(None, gt=0, le=60)
    id_token: str | None = Field(None, min_length=1, max_length=36, pattern=r"^[\x21-\x7e]+$",
                                 description="the driver's id token, sent to the OCPP CSMS (Authorize, idTag)")


class ContactorRequest(_Body):
    closed: StrictBool


class PWMRequest(_Body):
    duty: StrictFloat = Field(..., ge=0, le=100, description="duty cycle in percent")

    @field_validator("duty")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("duty must be a finite number")
        return value


class CPStateRequest(_Body):
    state: str = Field(..., pattern=r"^[ABCDE]$", description="simulated CP state A..E")


class FaultRequest(_Body):
    type: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$",
                      description="fault type, e.g. E_STOP, OVERCURRENT (see GET /faults)")


class SimCarRequest(_Body):
    preset: Literal["follow", "ev400", "ev800", "ev_small"] | None = None
    start_soc: StrictFloat | None = Field(None, ge=0, le=100)
    target_soc: StrictFloat | None = Field(None, ge=0, le=100)


class SimSpeedRequest(_Body):
    speed: StrictFloat = Field(..., gt=0, le=10_000, description="simulated seconds per wall second")


class SimPlantRequest(_Body):
    isolation_resistance_ohm: StrictFloat | None = Field(None, gt=0, le=1e12)
    ambient_temperature_C: StrictFloat | None = Field(None, ge=-40, le=150)
    estop_pressed: StrictBool | None = None
