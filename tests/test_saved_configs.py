"""Saved configs read as today's (jgan.saved_configs): keys added since a run was saved
come back with the values that reproduce it, and nothing else changes."""
from __future__ import annotations

import json

import pytest

from jgan.saved_configs import (CLASSIFIER_KEYS_ADDED_LATER, KEYS_ADDED_LATER, MOVED_KEYS,
                                SECTION_KEYS_ADDED_LATER,
                                load_saved_config, upgrade_config)
from tests.helpers import load_config


def saved_before_sections(config) -> dict:
    """`config` as its config.json read before family sections: their keys in the old
    places (`MOVED_KEYS`)."""
    tree = json.loads(config.to_json_best_effort())
    for old, new in MOVED_KEYS.items():
        section, leaf = new.split(".")
        if section in tree:
            old_section, old_leaf = old.split(".")
            tree[old_section][old_leaf] = tree[section].pop(leaf)
    for section in {new.split(".")[0] for new in MOVED_KEYS.values()}:
        if tree.get(section) == {}:
            del tree[section]
    return tree


def saved_without(config, keys) -> dict:
    tree = saved_before_sections(config)
    for key in keys:
        *sections, leaf = key.split(".")
        node = tree
        for section in sections:
            node = node[section]
        del node[leaf]
    return tree


@pytest.mark.parametrize("name,arg,added", [
    ("mixture", "ring,minimax,runlocal", KEYS_ADDED_LATER),
    ("conditional", "infogan,mnist,runlocal", KEYS_ADDED_LATER),
    ("classifier_mnist", "runlocal", CLASSIFIER_KEYS_ADDED_LATER)])
def test_a_config_saved_before_the_keys_existed_reads_as_todays(name, arg, added):
    config = load_config(name, arg)
    # Today's shipped configs leave every later key at the value older runs had,
    # except where the config sets it (those keys keep their saved value below).
    saved = saved_before_sections(config)
    old = saved_without(config, [k for k in added if _value(saved, k) == added[k]])
    if name != "classifier_mnist":
        del old["task"]                     # runs saved before tasks existed were GANs
    upgraded = json.loads(upgrade_config(old).to_json_best_effort())
    want = json.loads(config.to_json_best_effort())
    if name != "classifier_mnist":
        want.pop("task")
        upgraded.pop("task", None)
    assert upgraded == want


def _value(config, key):
    node = config
    for part in key.split("."):
        if part not in node:
            return None
        node = node[part]
    return node.to_dict() if hasattr(node, "to_dict") else (
        list(node) if isinstance(node, tuple) else node)


def test_upgrading_keeps_saved_values_and_is_idempotent(tmp_path):
    config = load_config("mixture", "ring,minimax,runlocal")
    config.game.pack = 4
    once = upgrade_config(json.loads(config.to_json_best_effort()))
    assert once.game.pack == 4
    assert upgrade_config(once).to_dict() == once.to_dict()
    (tmp_path / "config.json").write_text(config.to_json_best_effort())
    assert load_saved_config(tmp_path).to_dict() == once.to_dict()


def test_bad_saved_configs_are_named(tmp_path):
    with pytest.raises(ValueError, match="config.task: 'painting'"):
        upgrade_config({"task": "painting"})
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_saved_config(tmp_path)


def test_keys_that_moved_to_a_family_section_move_on_upgrade():
    acgan = saved_before_sections(load_config("conditional", "acgan,mnist,runlocal"))
    acgan["game"]["class_loss_weight"] = 0.5
    upgraded = upgrade_config(acgan)
    assert upgraded.acgan.to_dict() == {"class_loss_weight": 0.5, "fake_class_loss": True}
    assert "class_loss_weight" not in upgraded.game and "infogan" not in upgraded
    # Another family's keys held their neutral values in old configs: they go.
    gan = saved_before_sections(load_config("mixture", "ring,minimax,runlocal"))
    gan["game"]["info_weight"], gan["model"]["categorical_codes"] = 1.0, [10]
    upgraded = upgrade_config(gan)
    assert "info_weight" not in upgraded.game and "categorical_codes" not in upgraded.model
    assert not {"infogan", "acgan", "conditional"} & set(upgraded.keys())


@pytest.mark.parametrize("name,arg", [("autoencoder", "mnist"), ("aae", "mnist"),
                                      ("progan", "fashion_mnist"), ("stylegan", "")])
def test_section_keys_added_later_come_back_only_in_their_family(name, arg):
    config = load_config(name, arg)
    saved = json.loads(config.to_json_best_effort())
    family = saved["family"]
    for key in SECTION_KEYS_ADDED_LATER:
        section, leaf = key.split(".")
        if section == family:
            del saved[section][leaf]
    upgraded = upgrade_config(saved)
    assert json.loads(upgraded.to_json_best_effort()) == json.loads(config.to_json_best_effort())
    others = {key.split(".")[0] for key in SECTION_KEYS_ADDED_LATER} - {family}
    assert not others & set(upgraded.keys())
