"""Errors every part of jgan raises, in a module that imports nothing of jgan's."""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


def require(condition: bool, key: str, message: str) -> None:
    """Raises `ConfigError("config.KEY: MESSAGE")` unless `condition` holds."""
    if not condition:
        raise ConfigError(f"config.{key}: {message}")


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the message names the step and the loss."""


class NonFiniteStateError(FloatingPointError):
    """A parameter (or other state value) became NaN or infinite; the message names the
    step and the value's path in the state."""
