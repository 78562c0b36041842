"""Hardware abstraction layer: device contracts, the adapter registry and the simulated adapter."""
