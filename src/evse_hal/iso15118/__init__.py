"""The SECC's side of the HAL: what HalEVSEController (evse_hal/iso15118_hal_controller.py) is made of: the port
it speaks to the charger through, message builders, views, session handling, the pydantic-v1 import hook."""
