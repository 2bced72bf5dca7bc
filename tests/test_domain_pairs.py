"""Two-domain input (`jgan.data.domain_pairs`, `jgan.train.input.TwoDomainInput`):
pairs stay pairs, unpaired domains are independent, folders in the layouts users have,
and the position restores."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from experiments.configs.base import base_config
from helpers import require_shared_tfds
from jgan.data.derived_domains import edge_map
from jgan.data.domain_pairs import DomainPair, domain_pair
from jgan.data.images import DataError
from jgan.train.input import TwoDomainInput, build_input


def _config(name, *, channels=1, resolution=28, root="", data_dir=""):
    c = base_config()
    c.data.kind = "translation"
    c.data.name, c.data.root, c.data.data_dir = name, root, data_dir
    c.data.channels, c.data.resolution = channels, resolution
    c.batch_size = 8
    return c


def _uint8(x):
    return np.rint((np.asarray(x) + 1.0) * 127.5).astype(np.uint8)


def test_paired_edges_stay_with_their_items():
    inp = build_input(_config("edges2fashion", data_dir=require_shared_tfds()))
    assert isinstance(inp, TwoDomainInput) and inp.pair.paired
    for _ in range(2):
        batch = inp.next()
        assert set(batch) == {"image_a", "label_a", "image_b", "label_b"}
        np.testing.assert_array_equal(batch["label_a"], batch["label_b"])
        for a, b in zip(batch["image_a"], batch["image_b"]):
            np.testing.assert_array_equal(_uint8(a), edge_map(_uint8(b)))


def test_unpaired_domains_are_independent_and_resume_where_they_stopped():
    config = _config("mnist2textured", channels=3, data_dir=require_shared_tfds())
    inp = build_input(config)
    first = [inp.next() for _ in range(3)]
    assert first[0]["image_a"].shape == first[0]["image_b"].shape == (8, 28, 28, 3)
    assert any((b["label_a"] != b["label_b"]).any() for b in first)
    # A is grey MNIST in 3 channels; B is coloured.
    assert np.ptp(first[0]["image_a"], axis=-1).max() == 0
    assert np.ptp(first[0]["image_b"], axis=-1).max() > 0.1
    resumed = build_input(config)
    resumed.set_state({"global_batches": 2})
    for key, value in resumed.next().items():
        np.testing.assert_array_equal(value, first[2][key])


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_side_by_side_files_split_into_a_and_b(tmp_path):
    for i in range(4):
        pair = np.zeros((16, 32, 3), np.uint8)
        pair[:, :16, 0] = 40 + 50 * i       # A: red, brighter with i
        pair[:, 16:, 2] = 40 + 50 * i       # B: blue
        _write(tmp_path / "pairs" / "train" / f"{i}.png", pair)
    batch = build_input(_config("folder_pairs", channels=3, resolution=8,
                                root=str(tmp_path / "pairs"))).next()
    # Through the pipeline (shuffled) each A still sits beside its own B.
    np.testing.assert_array_equal(batch["image_a"][..., 0], batch["image_b"][..., 2])
    assert len(np.unique(batch["image_a"][:, 0, 0, 0])) > 1
    pair = domain_pair("folder_pairs", root=str(tmp_path / "pairs"), resolution=8, channels=3)
    assert pair.paired and len(pair.a) == 4
    for i in range(4):
        a, b = pair.a[i]["image"], pair.b[i]["image"]
        assert a.shape == (8, 8, 3) and (a[..., 0] == 40 + 50 * i).all() and not a[..., 2].any()
        assert (b[..., 2] == 40 + 50 * i).all() and not b[..., 0].any()


def test_a_file_that_is_not_two_images_side_by_side_is_named(tmp_path):
    _write(tmp_path / "pairs" / "square.png", np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(DataError, match=r"square.png: 16 x 16 pixels is not two images side"):
        domain_pair("folder_pairs", root=str(tmp_path / "pairs"), resolution=8, channels=3)


def test_cyclegan_folders_are_two_unpaired_domains(tmp_path):
    for domain, colour in (("A", 0), ("B", 1)):
        for i in range(3 if domain == "A" else 5):
            image = np.zeros((12, 12, 3), np.uint8)
            image[..., colour] = 200
            _write(tmp_path / f"train{domain}" / f"{i}.png", image)
    pair = domain_pair("folder_domains", root=str(tmp_path), resolution=8, channels=3)
    assert not pair.paired and (len(pair.a), len(pair.b)) == (3, 5)
    assert pair.a[0]["image"][..., 0].all() and pair.b[0]["image"][..., 1].all()
    with pytest.raises(DataError, match=r"testA does not exist: an unpaired folder"):
        domain_pair("folder_domains", split="test", root=str(tmp_path))


def test_unknown_tasks_and_uneven_pairs_are_refused():
    with pytest.raises(DataError, match="Unknown translation task 'edges2shoes'"):
        domain_pair("edges2shoes")
    with pytest.raises(DataError, match="as many A as B records, got 2 and 3"):
        DomainPair([{}] * 2, [{}] * 3, True, "uneven")
