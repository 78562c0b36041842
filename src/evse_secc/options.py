"""What the launcher was asked to run: our own (pydantic v2) model, converted to iso15118's settings in
``secc_config`` and nowhere else."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evse_secc.codecs import DEFAULT_EXI_CODEC, ExiCodecName
from evse_secc.protocols import HlcProtocol

ControllerName = Literal["sim", "hal"]


class LaunchOptions(BaseModel):
    """The launcher's command line and environment, resolved."""

    model_config = ConfigDict(frozen=True)

    controller: ControllerName = "sim"
    evse_id: str | None = Field(None, description="EVSE ID; None keeps the controller's own")
    iface: str | None = Field(None, description="None: NETWORK_INTERFACE from the SECC settings")
    cert_store: Path | None = Field(None, description="iso15118 PKI_PATH; None: PKI_PATH env/.env")
    secc_config: Path | None = Field(None, description="SECC .env; None: iso15118 reads $CWD/.env")
    slac_config: Path | None = None
    slac: bool = Field(True, description="False: run the SECC on a link without a PLC modem (veth)")
    protocols: tuple[HlcProtocol, ...] | None = Field(None, description="None: PROTOCOLS or DC default")
    api_host: str | None = None
    api_port: int | None = Field(None, ge=1, le=65535)
    #: The API's public address served by a front process (ccs_sim.front): None = the default, on (with api_port).
    api_front_process: bool | None = None
    message_log: Path | None = Field(None, description="JSON lines, one per request/response exchange")
    exi_codec: ExiCodecName = Field(DEFAULT_EXI_CODEC, description="native (pure Python) or java (JVM child)")
    adapter: str | None = Field(None, description="HAL adapter (--adapter); None: CCS_SIM_ADAPTER, else sim")
    adapter_options_file: Path | None = Field(None, description="--adapter-options (TOML); None: "
                                                                 "CCS_SIM_ADAPTER_OPTIONS_FILE")
    adapter_options: dict[str, Any] | None = Field(None, description="--adapter-option pairs; None: "
                                                                      "CCS_SIM_ADAPTER_OPTIONS")
    ocpp: Any = Field(None, description="the OCPP client's OcppConfig (--ocpp-url ...); None: OCPP off")
