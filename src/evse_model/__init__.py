"""What every layer of the charger speaks: constants from the standards, the session's vocabulary, the fault
catalogue and the clock. Imports nothing of the project."""
