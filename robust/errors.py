"""Errors that mean "the user asked for something invalid" rather than "robust has a bug".

Pipelines print their one-line message and exit 2; any other exception exits 1.
"""


class RobustError(Exception):
    """Base class of robust's user-facing errors."""


class ConfigError(RobustError, ValueError):
    """A parameter is invalid: the message says what was wrong, what is allowed, what was given."""


class DataError(RobustError):
    """Input data are missing or malformed: the message names the file and what was expected."""


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM: a scheduler, ``docker stop``, Ray): handled like
    Ctrl-C, so the stage run ends KILLED with a message instead of staying RUNNING."""
