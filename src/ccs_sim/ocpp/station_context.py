"""What the station's parts (transactions, commands) see of the OCPP client that owns them.

The client builds its parts and hands itself over as this context; the parts set the hooks the client calls
(``status_requests``, ``queue_depth``, ``composite_limit``, ``commands``). A Protocol, so that the parts never
import the client that imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ccs_sim.controller import ChargerController
    from ccs_sim.ocpp.config import OcppConfig
    from ccs_sim.ocpp.link import OcppLink


class StationContext(Protocol):
    controller: ChargerController
    config: OcppConfig
    link: OcppLink
    database_path: Path | None
    status_requests: Callable[[], list[Any]]
    queue_depth: Callable[[], int]
    composite_limit: Callable[[], dict[str, Any] | None]
    commands: Any
