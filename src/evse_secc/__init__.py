"""Run the ``iso15118`` SECC in-process: its configuration, pre-flight checks, controllers and timing.

This package is the one place that loads ``iso15118``, which needs the pydantic.v1 import hook of
``evse_hal.iso15118.compat``; importing ``evse_secc`` installs it (idempotent) so that every module
below may import ``iso15118`` at its top. Importing ``evse_hal`` or ``ccs_sim`` installs nothing.

iso15118's own (pydantic v1) models stay inside this package and the HAL controller; what crosses
into our code is converted to our types at the boundary (see ``options`` and ``message_timing``).
"""

from evse_hal.iso15118 import compat

compat.install()
