"""Controller settings: defaults, environment variables (prefix ``CCS_SIM_``) and a ``.env`` file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from evse_model import standards


class ControllerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CCS_SIM_", env_file=".env", extra="ignore")

    # --- server ---
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # --- hardware and time ---
    adapter: str = Field("sim", description="HAL adapter name (see evse_hal.registry)")
    adapter_options_file: Path | None = Field(
        None, description="TOML file of options for the adapter's factory (its top-level keys); "
                          "CCS_SIM_ADAPTER_OPTIONS_FILE")
    adapter_options: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict,
        description="options for the adapter's factory, on top of the file's (a key in both: this one wins). "
                    "CCS_SIM_ADAPTER_OPTIONS: a JSON object, e.g. {\"serial_port\": \"/dev/ttyACM0\"}")
    speed: float = Field(1.0, gt=0, le=10_000, description="simulated seconds per wall second (sim only)")
    control_period_s: float = Field(0.01, gt=0, le=1.0, description="control loop period, simulated seconds")
    # --- session flow (the spec's timings) ---
    handshake_s: float = Field(2.0, ge=0.0, description="HANDSHAKE phase length (simulated SLAC/ISO 15118 setup)")
    pwm_start_delay_s: float = Field(0.5, ge=0.0, description="CP B → 5 % PWM (EVerest waits 500 ms)")
    cable_check_s: float = Field(1.0, ge=0.0, description="minimum cable-check length")
    cable_check_timeout_s: float = Field(25.0, gt=0, description="EVs give up after 30 s (standards.md §2.2)")
    precharge_timeout_s: float = Field(standards.PRECHARGE_TIMEOUT_S, gt=0,
                                       description="ISO 15118-2 V2G_EVCC_PreCharge_Timeout")
    discharge_after_cable_check: bool = Field(
        True, description="after the insulation test, switch the supply off and wait for the output to fall below "
                          "60 V before the cable check finishes; precharge then rises from there at ≤ 2 A "
                          "(IEC 61851-23:2023 CC.4.1.2; EVerest cable_check_wait_below_60V_before_finish)")
    discharge_timeout_s: float = Field(5.0, gt=0, description="the output must be below 60 V this long after the "
                                                               "insulation test, else CABLE_CHECK_FAILED")
    current_ramp_up_A_per_s: float = Field(100.0, gt=0)
    current_ramp_down_A_per_s: float = Field(standards.NORMAL_RAMP_DOWN_A_PER_S, gt=0,
                                              le=standards.NORMAL_RAMP_DOWN_A_PER_S,
                                              description="normal shutdown ramp ≤ 100 A/s (DG L4110)")
    ramp_down_timeout_s: float = Field(10.0, gt=0)
    isolation_edition: Literal["2014", "2023"] = "2023"
    # --- EVSE limits announced to the EV (the power stage may be smaller) ---
    evse_max_voltage_V: float = Field(1000.0, gt=0)
    evse_max_current_A: float = Field(400.0, gt=0)
    evse_max_power_W: float = Field(350_000.0, gt=0)
    # --- records ---
    data_dir: Path = Field(Path("data"), description="where the session database lives")
    records_db: Path | None = Field(None, description="session database file (default: data_dir/sessions.db)")
    # --- logs ---
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object per line, with session_id")
    # --- access control ---
    api_token: str | None = Field(None, description="token required by state-changing endpoints")
    allow_insecure_bind: bool = False
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="names (Host header) this server also answers to, besides localhost, loopback addresses and "
                    "the address a request arrived on; every other Host is refused (DNS rebinding). "
                    "CCS_SIM_ALLOWED_HOSTS: comma-separated or a JSON list")

    # --- request rate limit, per client address (ccs_sim.http.rate_limit; HTTP 429 beyond it) ---
    rate_limit_per_s: float = Field(
        500.0, ge=0, description="requests per second each client address may sustain (token-bucket refill); "
                                 "0: no rate limit and no stream cap. CCS_SIM_RATE_LIMIT_PER_S")
    rate_limit_burst: int = Field(2000, ge=1, description="requests a client address may send at once before "
                                                          "the sustained rate applies. CCS_SIM_RATE_LIMIT_BURST")
    max_streams_per_client: int = Field(16, ge=0, description="GET /stream responses open at once per client "
                                                              "address; 0: no cap. CCS_SIM_MAX_STREAMS_PER_CLIENT")
    # --- where HTTP is served (ccs-sim serve; ccs_sim.front) ---
    api_front_process: bool = Field(
        True, description="ccs-sim serve: serve the public address from a process of its own (readings from a copy "
                          "at most one control period old, commands forwarded over a private socket), so API load "
                          "cannot delay the control loop, the supervisor or the SECC. false: one process. "
                          "CCS_SIM_API_FRONT_PROCESS")

    @field_validator("adapter_options", mode="before")
    @classmethod
    def _decode_adapter_options(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as error:
                raise ValueError(f"adapter options must be a JSON object: {error}") from None
            if not isinstance(value, dict):
                raise ValueError("adapter options must be a JSON object, e.g. {\"can_channel\": \"can0\"}")
        return value

    def resolved_adapter_options(self) -> dict[str, Any]:
        """What the adapter's factory receives: the options file's, then ``adapter_options`` on top
        (``evse_hal.registry.AdapterOptionError`` if the file cannot be read)."""
        from evse_hal.registry import merge_adapter_options

        return merge_adapter_options(self.adapter_options_file, self.adapter_options)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_host_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [name.strip() for name in text.split(",") if name.strip()]
        return value
