"""Errors of the platform runtime that clients (the CLI, the local target) catch without loading
the runtime itself: importing this module costs nothing."""


class PlatformError(RuntimeError):
    """The platform cannot start or be reached; the message says why."""
