"""The error the launcher reports as one clear line instead of a traceback."""


class LaunchError(Exception):
    """The SECC cannot start (or run on) this machine as configured; the message says why and what to do."""
