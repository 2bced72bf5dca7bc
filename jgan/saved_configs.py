"""Configs saved by earlier versions of jgan, read as today's.

A run's `config.json` records the config it was trained with. Keys added to jgan since
then are missing from it, and keys that moved to their family's section are in their old
place; `upgrade_config` adds each missing key with the value that reproduces what the
run did and moves the others, so that every part of jgan (builders, trainer, sampler, evaluator)
reads a complete config and none needs a default of its own. It is the one place that
knows how configs changed: apply it wherever a saved config is loaded
(`load_saved_config`), and compare a saved config with a new one after upgrading it.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import ml_collections

from jgan.errors import MissingFileError

# Keys added after runs were saved, with the values that reproduce those runs.
KEYS_ADDED_LATER = {"game.unroll_steps": 0, "game.pack": 1,
                    "model.discriminator_hidden": (), "data.on_device": False, "family": "gan",
                    "model.num_classes": 10, "model.categorical_codes": (10,),
                    "model.continuous_codes": 2, "game.fake_labels": "uniform",
                    "game.class_loss_weight": 1.0, "game.fake_class_loss": True,
                    "game.info_weight": 1.0,
                    "game.continuous_weight": 1.0, "data.resize": "bicubic",
                    "model.dense_hidden": 0, "model.discriminator_width": 0, "max_train_seconds": 0.0,
                    "data.mixture_scale": 1.0, "model.noise_distribution": "normal",
                    "game.info_in_discriminator": True, "game.q_team": "generator",
                    "model.q_batch_norm": False, "game.ema_warmup": False,
                    "model.leaky_slope": 0.2, "game.info_start_step": 0,
                    "mesh.model": 1, "mesh.min_shard_size": 2**14,
                    "game.micro_batches": 1,
                    "game.info_ramp_steps": 0, "game.info_augmented_weight": 0.0,
                    "precision.compute_dtype": "float32", "precision.networks": "",
                    "precision.loss_scale": "dynamic", "checkpoints_kept": 3,
                    "game.info_augmentation": {
                        "max_rotation": 15.0, "max_shear": 0.3, "max_scale": 0.1,
                        "max_shift": 2.0, "max_stroke": 0.5}}

# Keys added to family sections after runs were saved; added to a saved config that holds
# the section (its family's), with the values that reproduce those runs.
SECTION_KEYS_ADDED_LATER = {
    **{f"{family}.residual_blocks": 2 for family in ("autoencoder", "vae", "aae", "vaegan")},
    # Runs saved before small-data augmentation existed trained without it (policy "";
    # the other keys at jgan.families.discriminator_augmentation.augment_section's).
    **{f"{family}.augment": {"policy": "", "probability": 1.0, "ada": False,
                             "ada_target": 0.6, "ada_interval": 4,
                             "ada_speed_images": 500_000}
       for family in ("progan", "stylegan")},
    "progan.grow": True,
}

# Keys that moved into their family's own section (`config.<family>.*`), old -> new. A
# saved config's old key goes to the new place when the run's family is the section's,
# and is dropped otherwise (it held the neutral value: other families refused it).
MOVED_KEYS = {
    "game.fake_labels": "conditional.fake_labels",
    "game.class_loss_weight": "acgan.class_loss_weight",
    "game.fake_class_loss": "acgan.fake_class_loss",
    **{f"game.{k}": f"infogan.{k}" for k in (
        "info_weight", "info_start_step", "info_ramp_steps", "continuous_weight",
        "info_augmented_weight", "info_augmentation", "info_in_discriminator", "q_team")},
    **{f"model.{k}": f"infogan.{k}" for k in (
        "categorical_codes", "continuous_codes", "q_batch_norm")},
}

# The same for the classifier runs (`task = "classifier"`).
CLASSIFIER_KEYS_ADDED_LATER = {"data.resize": "bicubic", "data.on_device": False,
                               "data.target": "label"}
# A saved config without a task is a GAN's: runs saved before tasks existed were GANs.
_ADDED_BY_TASK = {"gan": KEYS_ADDED_LATER, "classifier": CLASSIFIER_KEYS_ADDED_LATER}


def upgrade_config(saved: dict | ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A saved config with every key added since filled in as the run had it.

    Args:
      saved: a config as `config.json` holds it (a dict from JSON, or a ConfigDict).
    Returns:
      A new ConfigDict; keys already present keep their values.
    Raises:
      ValueError: the config's `task` is not one jgan trains (names it).
    """
    tree = saved.to_dict() if isinstance(saved, ml_collections.ConfigDict) else copy.deepcopy(saved)
    task = tree.get("task", "gan")
    if task not in _ADDED_BY_TASK:
        raise ValueError(f"config.task: {task!r} is not one of {sorted(_ADDED_BY_TASK)}.")
    for key, value in _ADDED_BY_TASK[task].items():
        *sections, leaf = key.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        # Through JSON, as a saved config went: tuples read back as lists.
        node.setdefault(leaf, json.loads(json.dumps(value)))
    if task == "gan":
        _move_keys(tree)
        for key, value in SECTION_KEYS_ADDED_LATER.items():
            section, leaf = key.split(".")
            if isinstance(tree.get(section), dict):
                tree[section].setdefault(leaf, json.loads(json.dumps(value)))
    return ml_collections.ConfigDict(tree)


def _move_keys(tree: dict) -> None:
    for old, new in MOVED_KEYS.items():
        old_section, old_leaf = old.split(".")
        new_section, new_leaf = new.split(".")
        value = tree.get(old_section, {}).pop(old_leaf, None)
        if value is not None and new_section == tree["family"]:
            tree.setdefault(new_section, {}).setdefault(new_leaf, value)


def load_saved_config(workdir: str | Path) -> ml_collections.ConfigDict:
    """`workdir/config.json`, upgraded (`upgrade_config`).

    Raises:
      MissingFileError: there is no config.json in `workdir` (names the path).
    """
    path = Path(workdir) / "config.json"
    if not path.exists():
        raise MissingFileError(f"{path} not found: is {workdir} a jgan run's workdir?")
    return upgrade_config(json.loads(path.read_text()))
