"""How jgan's command-line programs end when something is wrong: an expected error as
a line or two on stderr, an unexpected one with its traceback.

Every `python -m` program (`experiments.main`, `jgan.sample`, `jgan.evaluate`,
`jgan.probe`) starts with `run(main)`. Expected errors are flag errors (a misspelt
`--config.KEY`, a value of the wrong type, a config file that is missing or rejects its
argument) and `jgan.errors.JganError`s (a config value, missing data, a workdir that
cannot be written, a non-finite loss). Each prints `error: MESSAGE` and exits with 2
(what the command line asks cannot work) or the error's `exit_status`; nothing else is
printed, not even the usage text. Any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence

from absl import app, flags

from jgan.errors import JganError

USAGE_STATUS = 2
_TRACEBACK = "Traceback (most recent call last):"


def fail(message: str, status: int) -> None:
    """Prints `error: MESSAGE` on stderr and exits with `status`."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


def _innermost_message(error: BaseException) -> str:
    # ml_collections raises AttributeError(KeyError("'key'\nDid you mean ...?")): the text
    # is the innermost argument that is not itself an exception.
    while error.args and isinstance(error.args[0], BaseException):
        error = error.args[0]
    return str(error.args[0]) if error.args else str(error)


def _flag_naming(key: str, argv: Sequence[str]) -> str:
    """`--config.a.KEY`, from the argument `--config.a.KEY[.b]=...` that names `key`, or
    `--config`."""
    for arg in argv:
        parts = arg.split("=", 1)[0].split(".")
        if parts[0].startswith("--") and key in parts[1:]:
            return ".".join(parts[:parts.index(key, 1) + 1])
    return "--config"


def _section_keys(flag: str, argv: Sequence[str], flag_values: flags.FlagValues) -> list[str]:
    """The keys of the config section that `--config.a.b.KEY` looks in ([] if unknown)."""
    root, *path = flag.removeprefix("--").split(".")
    # ml_collections parses overrides before the config flag holds its value: load the
    # config file again from its own argument.
    given = [arg.split("=", 1)[1] for arg in argv if arg.startswith(f"--{root}=")]
    try:
        section = flag_values[root].parser.parse(given[-1])
        for part in path[:-1]:
            section = section[part]
        return sorted(section.keys())
    except Exception:  # noqa: BLE001  (only a hint: the error itself is reported anyway)
        return []


def unknown_key_message(error: BaseException, argv: Sequence[str],
                        flag_values: flags.FlagValues | None = None) -> str:
    """One line for ml_collections' error on an override of a key the config lacks:
    the flag, the key, and ml_collections' guess or else the section's keys."""
    lines = [line.strip() for line in _innermost_message(error).splitlines() if line.strip()]
    key = lines[0].strip("'\"") if lines else "?"
    flag = _flag_naming(key, argv)
    hint = " ".join(lines[1:])
    if not hint and flag_values is not None:
        keys = _section_keys(flag, argv, flag_values)
        hint = f"Its keys there: {', '.join(keys)}." if keys else ""
    return f"{flag}: the config has no key {key!r}." + (f" {hint}" if hint else "")


def flag_error_message(error: flags.Error) -> str:
    """One line for absl's flag error, whose text may embed the traceback of a config
    file's `get_config` (ml_collections): its last line is the reason."""
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if _TRACEBACK not in text:
        return " ".join(lines).removeprefix("flag ")
    head = lines[0].split(": Error whilst parsing")[0].removeprefix("flag ").rstrip(":")
    reason = lines[-1]
    exception, sep, message = reason.partition(": ")
    if sep and exception.isidentifier():
        reason = message
    return f"{head}: {reason}"


def config_file_message(error: OSError) -> str:
    """One line for ml_collections' error on a config file it cannot load."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"--config: cannot load the config file: {lines[-1] if lines else error}"


def _config_load_error(flag_values: flags.FlagValues) -> OSError | None:
    # ml_collections defers a config file's IOError to the config's first use; its
    # stand-in config keeps the error as `_error` (a ConfigDict has no such attribute).
    for name in flag_values:
        error = getattr(flag_values[name].value, "_error", None)
        if isinstance(error, OSError):
            return error
    return None


def parse_flags(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
    """Parses `argv` into `flag_values`; a bad flag ends the program with one line
    (`fail`, status 2) instead of absl's usage text or a chained traceback."""
    try:
        args = flag_values(argv)
    except flags.Error as e:
        fail(f"{flag_error_message(e)} (--helpshort lists the flags)", USAGE_STATUS)
    except (AttributeError, KeyError) as e:  # ml_collections: an override of an unknown key
        fail(unknown_key_message(e, argv, flag_values), USAGE_STATUS)
    error = _config_load_error(flag_values)
    if error is not None:
        fail(config_file_message(error), USAGE_STATUS)
    return args


def guarded(main: Callable[[list[str]], object]) -> Callable[[list[str]], object]:
    """`main`, with a `JganError` ending the program as `error: MESSAGE` and the
    error's exit status."""
    @functools.wraps(main)
    def call(argv):
        try:
            return main(argv)
        except JganError as e:
            fail(str(e), e.exit_status)
    return call


def run(main: Callable[[list[str]], object]) -> None:
    """`absl.app.run(main)` with jgan's handling of expected errors (module doc)."""
    app.run(guarded(main), flags_parser=parse_flags)
