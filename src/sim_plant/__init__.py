"""The simulated charger and car: one physically consistent plant that every simulated sensor reads."""

from sim_plant.battery import BATTERY_PRESETS, Battery, BatteryPreset
from sim_plant.plant import ChargerPlant, PlantConfig

__all__ = ["BATTERY_PRESETS", "Battery", "BatteryPreset", "ChargerPlant", "PlantConfig"]
