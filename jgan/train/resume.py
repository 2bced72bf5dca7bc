"""Whether a workdir's run may be resumed with a config: only keys that do not change
what is trained (how long, how often to log) may differ."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import ml_collections

from jgan.errors import ConfigError


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_resumable(config: ml_collections.ConfigDict, workdir: Path, *,
                    resumable: Iterable[str], ignored_prefixes: tuple[str, ...] = (),
                    upgrade: Callable[[dict], ml_collections.ConfigDict] | None = None,
                    what: str = "run") -> None:
    """Raises ConfigError naming every key whose value differs from `workdir/config.json`.

    Args:
      resumable: flat keys that may change ("num_steps", "log_every", ...).
      ignored_prefixes: keys starting with these may change too (e.g. "eval.").
      upgrade: reads the saved config as today's (`jgan.saved_configs.upgrade_config`),
        so that keys added since it was saved compare with the values it had.
      what: how the message names the run ("run", "classifier run").
    """
    saved_path = Path(workdir) / "config.json"
    if not saved_path.exists():
        return
    saved = json.loads(saved_path.read_text())
    if upgrade is not None:
        saved = json.loads(upgrade(saved).to_json_best_effort())
    # Both through JSON, as the saved config went: a tuple compares equal to its list.
    saved, now = flatten(saved), flatten(json.loads(config.to_json_best_effort()))
    resumable = set(resumable)
    changed = sorted(k for k in set(saved) | set(now)
                     if saved.get(k) != now.get(k) and k not in resumable
                     and not k.startswith(ignored_prefixes))
    if changed:
        raise ConfigError(
            f"{workdir} holds a {what} with another config; these keys differ: "
            + ", ".join(f"{k} ({saved.get(k)!r} -> {now.get(k)!r})" for k in changed)
            + ". Use a new --workdir, or the original values to resume.")
