"""Errors every part of jgan raises, in a module that imports nothing of jgan's.

Each is a `JganError`: an expected problem whose message names what is wrong (the key,
the file, the shape) and how to fix it. Command-line programs print such a message in a
line or two without a traceback (`jgan.cli`); any other exception is a bug and keeps it.
"""


class JganError(Exception):
    """An expected problem, named by its message; `exit_status` is what a command-line
    program exits with: 2 for what the command line or config asks, 1 for what a run
    met (data, files, non-finite values)."""
    exit_status = 1


class UsageError(JganError):
    """Flags that cannot work together (a required one missing, extra arguments)."""
    exit_status = 2


class ConfigError(JganError, ValueError):
    """A config value that cannot work; the message names the key."""
    exit_status = 2


class WorkdirError(JganError, OSError):
    """A workdir that cannot be created or written."""


class MissingFileError(JganError, FileNotFoundError):
    """A file that was named, or that a run needs (its config.json, a checkpoint), does
    not exist; the message names the path."""


def require(condition: bool, key: str, message: str) -> None:
    """Raises `ConfigError("config.KEY: MESSAGE")` unless `condition` holds."""
    if not condition:
        raise ConfigError(f"config.{key}: {message}")


class NonFiniteLossError(JganError, FloatingPointError):
    """A loss became NaN or infinite; the message names the step and the loss."""


class NonFiniteStateError(JganError, FloatingPointError):
    """A parameter (or other state value) became NaN or infinite; the message names the
    step and the value's path in the state."""
