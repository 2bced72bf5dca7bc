"""The small-data set-up: the example folder derived offline from Fashion-MNIST
(deterministic, its items the split's), and `image_folder.py`'s small-data configs
training end to end on it."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from jgan.data.example_folder import example_indices, to_picture, write_example_folder
from jgan.data.images import DataError, tfds_source
from jgan.errors import ConfigError
from jgan.runs.load import load_run
from jgan.train import builders, trainer
from tests.helpers import load_config, require_shared_tfds


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_example_folder(tmp_path_factory.mktemp("fashion") / "pictures", num=16,
                                resolution=16, data_dir=require_shared_tfds())


def test_the_folder_holds_the_splits_items_picked_by_the_seed(folder):
    manifest = json.loads((folder / "example_folder.json").read_text())
    source = tfds_source("fashion_mnist", split="train", data_dir=require_shared_tfds())
    assert manifest["indices"] == example_indices(len(source), 16, 0).tolist()
    files = sorted(folder.glob("*.png"))
    assert len(files) == 16 and len(set(manifest["indices"])) == 16
    for path, index in zip(files[:3], manifest["indices"]):
        picture = np.asarray(Image.open(path))
        assert picture.shape == (16, 16, 3)
        np.testing.assert_array_equal(
            picture, np.asarray(to_picture(source[index]["image"], 16)))
        # Grey items: the three channels are equal, and the picture is the item's.
        item = source[index]["image"][..., 0].astype(np.float32)
        small = np.asarray(Image.fromarray(picture[..., 0]).resize((28, 28), Image.BICUBIC))
        assert np.corrcoef(item.ravel(), small.ravel())[0, 1] > 0.9


def test_the_same_arguments_write_the_same_bytes(folder, tmp_path):
    again = write_example_folder(tmp_path / "again", num=16, resolution=16,
                                 data_dir=require_shared_tfds())
    for a, b in zip(sorted(folder.iterdir()), sorted(again.iterdir())):
        assert a.name == b.name and a.read_bytes() == b.read_bytes()


def test_a_folder_with_files_is_not_overwritten(folder):
    with pytest.raises(DataError, match=str(folder)):
        write_example_folder(folder, num=4, data_dir=require_shared_tfds())


def test_more_items_than_the_split_holds_are_named():
    with pytest.raises(DataError, match="--num=70001"):
        example_indices(70_000, 70_001, 0)


def test_ada_is_refused_for_progans_wgan_critic():
    with pytest.raises(ValueError, match="logistic discriminator"):
        load_config("image_folder", "progan,small,ada,runlocal")
    config = load_config("image_folder", "progan,small,runlocal")
    config.progan.augment.ada = True
    with pytest.raises(ConfigError, match="progan.augment.ada: .*no such zero"):
        builders.validate(config)


@pytest.mark.parametrize("arg", ["progan,small,runlocal", "stylegan,small,ada,runlocal"])
def test_the_small_data_configs_train_on_the_folder(folder, tmp_path, arg):
    config = load_config("image_folder", arg)
    assert config.data.root == "workdirs/fashion500"
    config.data.root = str(folder)
    family = config.family
    assert config[family].augment.policy == "color,translation,cutout"
    result = trainer.train_and_evaluate(config, tmp_path)
    assert "augment_p" in result["final_metrics"]
    _, _, state = load_run(tmp_path)
    assert ("augment" in state.extras) == config[family].augment.ada
