"""Classifiers of derived domains (`jgan.data.classification_sources`,
`experiments/configs/classifier_domains.py`): they read each domain as the GAN run does."""
from __future__ import annotations

import json

import ml_collections
import numpy as np
import pytest

from jgan.data.classification_sources import (
    TARGET_CLASSES,
    attribute_target,
    classification_source,
)
from jgan.data.derived_domains import AttributeDigits
from jgan.data.domain_pairs import domain_pair
from jgan.data.images import DataError, tfds_source
from jgan.eval.classifier import load_classifier
from jgan.train import classifier_trainer
from jgan.train.builders import ConfigError
from tests.helpers import load_config, require_shared_tfds


def test_attribute_targets_read_the_attribute_vector():
    #                  red green blue textured thick
    attrs = np.array([[1, 0, 0, 0, 1],
                      [0, 0, 1, 1, 0],
                      [0, 1, 0, 1, 1]], np.float32)
    np.testing.assert_array_equal(attribute_target(attrs, "colour"), [0, 2, 1])
    np.testing.assert_array_equal(attribute_target(attrs, "background"), [0, 1, 1])
    np.testing.assert_array_equal(attribute_target(attrs, "stroke"), [1, 0, 1])


@pytest.mark.parametrize("arg", ["mnist2textured,b", "mnist2textured,a", "mnist2digits8,b",
                                 "attributes,label", "attributes,colour",
                                 "attributes,background", "attributes,stroke"])
def test_every_domain_config_validates(arg):
    classifier_trainer.validate(load_config("classifier_domains", arg))


@pytest.mark.parametrize("arg", ["mnist2textured", "attributes,size", "edges2fashion,b",
                                 "mnist2textured,c"])
def test_bad_domain_config_names_the_choices(arg):
    with pytest.raises(ValueError, match="classifier_domains.py takes"):
        load_config("classifier_domains", arg)


def test_validate_names_a_target_the_data_cannot_have():
    config = load_config("classifier_domains", "attributes,colour")
    config.model.num_classes = 10
    with pytest.raises(ConfigError, match=r"config\.model\.num_classes"):
        classifier_trainer.validate(config)
    config = load_config("classifier_mnist")
    config.data.target = "colour"
    with pytest.raises(ConfigError, match=r"config\.data\.target"):
        classifier_trainer.validate(config)


def test_bad_translation_domain_names_it():
    data = ml_collections.ConfigDict({"kind": "translation_domain", "name": "mnist2textured",
                                      "data_dir": "", "resolution": 28, "channels": 3})
    with pytest.raises(DataError, match="'mnist2textured'"):
        classification_source(data, "test")


def test_sources_are_the_run_domains_with_their_labels():
    data_dir = require_shared_tfds()
    config = load_config("classifier_domains", "mnist2textured,b")
    config.data.data_dir = data_dir
    source = classification_source(config.data, "test", seed=3)
    pair = domain_pair("mnist2textured", split="test", data_dir=data_dir, resolution=28,
                       channels=3, seed=3)
    for i in (0, 7):
        np.testing.assert_array_equal(source[i]["image"], pair.b[i]["image"])
        assert source[i]["label"] == pair.b[i]["label"]

    config = load_config("classifier_domains", "attributes,stroke")
    config.data.data_dir = data_dir
    source = classification_source(config.data, "test", seed=3)
    digits = AttributeDigits(tfds_source("mnist", split="test", data_dir=data_dir), seed=3)
    labels = [source[i]["label"] for i in range(40)]
    assert labels == [int(digits[i]["attributes"][4]) for i in range(40)]
    assert set(labels) == {0, 1}
    assert TARGET_CLASSES["stroke"] == 2


def test_attribute_classifier_runlocal_end_to_end(tmp_path):
    config = load_config("classifier_domains", "attributes,colour,runlocal")
    config.data.data_dir = require_shared_tfds()
    result = classifier_trainer.train_and_evaluate(config, tmp_path)
    assert result["num_test"] == 72
    classifier = load_classifier(tmp_path)
    assert classifier.num_classes == 3 and classifier.image_shape == (32, 32, 3)
    assert json.loads((tmp_path / "config.json").read_text())["data"]["target"] == "colour"
