"""The controller core: the parts of ``ChargerController`` (``ccs_sim/controller.py``), one job each.

Bottom to top (an import points down only):

- ``safety``      the supervisor's rules: vet commands, find a fault in a set of readings.
- ``types``       what the parts pass around: the running session, meter readings, command results.
- ``events``      the one event bus (session start, session end, fault, tick) every listener registers on.
- ``ports``       the controller's surface as the parts see it (a Protocol the façade fulfils).
- ``control_loop``  measure, meter, ramp the current, let the supervisor judge: every control period.
- ``outputs``     the device-writing path: every command to the supply, contactor, PWM and CP goes here.
- ``dc_sequence`` cable check, precharge, energy transfer, ramp-down and open.
- ``sessions``    a session's life: start, run its driver, end, wind down, finalise its record.
- ``fault_shutdown``  a fault: supply off at once, the session ended ABORTED, the contactor opened.
- ``views``       the read-only JSON views (``/status``, ``/meter``, ``/vehicle/bms``).

The session state machine (phase and stage, with its transition table) is ``ccs_sim/orchestrator.py``.
"""
