"""CCS DC charger controller and physically consistent simulator (the Live Controller)."""

__version__ = "0.1.0"
