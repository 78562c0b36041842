"""The simulated charger and car: one physically consistent plant that every simulated sensor reads."""

from ccs_sim.plant.battery import BATTERY_PRESETS, Battery, BatteryPreset
from ccs_sim.plant.plant import ChargerPlant, PlantConfig

__all__ = ["BATTERY_PRESETS", "Battery", "BatteryPreset", "ChargerPlant", "PlantConfig"]
