"""Errors every part of jgan raises, in a module that imports nothing of jgan's."""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""
