"""The charger's limits in force: its rating and every external source's limit, the minimum taken here only.

``LimitsInForce`` holds the rating (the settings' maxima within the supply's capabilities) and the limits
external sources set (``set_external_limit("ocpp", current_A=..., power_W=...)``: an operator's charging
profile; an energy manager could be another source). ``current_A`` / ``power_W`` are the minimum of the
rating and every source in force: the controller's ``evse_max_current_A`` / ``evse_max_power_W`` read them, so
the control loop's current ramp, the supply's power limit (``set_charge_targets``) and the maxima the SECC
glue tells the EV in ISO 15118 sessions all follow the same number. Lowering a limit under a running session
brings the current down at the controller's ramp-down rate (never faster than a normal shutdown, DG L4110);
``view()`` is ``/status``'s ``limits_in_force``.

Availability (``unavailable_reason``) lives here too: an operator may take the connector out of service
(OCPP ChangeAvailability Inoperative); no session starts while it is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RATING_SOURCE = "rating"


@dataclass(frozen=True)
class SourceLimit:
    current_A: float | None = None
    power_W: float | None = None


class LimitsInForce:
    def __init__(self, rated_current_A: float, rated_power_W: float) -> None:
        self._sources: dict[str, SourceLimit] = {}
        #: The minima in force, worked out when a rating or a source changes (the control loop and each car
        #: request read them): (current_A, power_W).
        self._in_force: tuple[float, float] = (0.0, 0.0)
        self._rated_current_A = rated_current_A
        self._rated_power_W = rated_power_W
        self._work_out()
        #: Why no session may start (an operator took the connector out of service), else None.
        self.unavailable_reason: str | None = None

    @property
    def rated_current_A(self) -> float:
        return self._rated_current_A

    @rated_current_A.setter
    def rated_current_A(self, current_A: float) -> None:
        self._rated_current_A = current_A
        self._work_out()

    @property
    def rated_power_W(self) -> float:
        return self._rated_power_W

    @rated_power_W.setter
    def rated_power_W(self, power_W: float) -> None:
        self._rated_power_W = power_W
        self._work_out()

    def _work_out(self) -> None:
        sources = self._sources.values()
        self._in_force = (
            min([self._rated_current_A, *(s.current_A for s in sources if s.current_A is not None)]),
            min([self._rated_power_W, *(s.power_W for s in sources if s.power_W is not None)]))

    def set_external_limit(self, source: str, current_A: float | None = None, power_W: float | None = None) -> None:
        """``source``'s limit (None: that quantity unlimited by it); both None removes the source."""
        if current_A is None and power_W is None:
            self._sources.pop(source, None)
        else:
            self._sources[source] = SourceLimit(None if current_A is None else max(0.0, float(current_A)),
                                                None if power_W is None else max(0.0, float(power_W)))
        self._work_out()

    def clear_external_limit(self, source: str) -> None:
        self._sources.pop(source, None)
        self._work_out()

    def external(self, source: str) -> SourceLimit | None:
        return self._sources.get(source)

    @property
    def current_A(self) -> float:
        """The current limit in force: the minimum of the rating and every source's."""
        return self._in_force[0]

    @property
    def power_W(self) -> float:
        """The power limit in force: the minimum of the rating and every source's."""
        return self._in_force[1]

    def _binding(self, attribute: str) -> str:
        value = getattr(self, attribute)
        for source, limit in self._sources.items():
            if getattr(limit, attribute) == value:
                return source
        return RATING_SOURCE

    def state_key(self) -> tuple[Any, ...]:
        """Everything the limits in force depend on, as one comparable value (a reader's cache keys on it)."""
        return (self.rated_current_A, self.rated_power_W, self.unavailable_reason, tuple(self._sources.items()))

    def view(self) -> dict[str, Any]:
        """``/status``'s ``limits_in_force``: the limits in force, which source sets each, and every source."""
        sources = [{"source": RATING_SOURCE, "current_A": self.rated_current_A, "power_W": self.rated_power_W}]
        sources += [{"source": name, "current_A": limit.current_A, "power_W": limit.power_W}
                    for name, limit in self._sources.items()]
        return {"current_A": self.current_A, "power_W": self.power_W, "current_source": self._binding("current_A"),
                "power_source": self._binding("power_W"), "sources": sources,
                "available": self.unavailable_reason is None, "unavailable_reason": self.unavailable_reason}
