"""EVSE launcher: SLAC + ISO 15118 SECC + controller (+ the Live Controller API)."""


def main() -> None:  # replaced by the launcher implementation
    raise SystemExit("evse_main: not implemented yet")
