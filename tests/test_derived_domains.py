"""Second domains derived from MNIST-like sources (`jgan.data.derived_domains`):
deterministic from their seed, and each shows the property it is made for."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import require_shared_tfds
from jgan.data.derived_domains import (ATTRIBUTE_NAMES, AttributeDigits, EdgeMaps,
                                       SmallDigits, TexturedDigits, edge_map,
                                       natural_images)
from jgan.data.images import DataError, tfds_source


def _digits(n=12):
    """A stand-in for MNIST: a bright bar of a different place and length per example."""
    out = []
    for i in range(n):
        image = np.zeros((28, 28, 1), np.uint8)
        image[6 + i % 8:22, 10 + i % 5:14 + i % 5] = 255
        out.append({"image": image, "label": i % 10})
    return out


def test_the_edges_of_a_square_are_its_border():
    image = np.zeros((16, 16, 1), np.uint8)
    image[4:12, 4:12] = 255
    edges = edge_map(image)[..., 0] > 0
    assert edges.shape == (16, 16)
    assert edges[4:12, 3].all() and edges[4:12, 4].all()      # both sides of the step
    assert not edges[6:10, 6:10].any() and not edges[:2].any()  # flat inside and outside


def test_edge_maps_pair_each_item_with_its_edges():
    source = EdgeMaps(_digits())
    record = source[3]
    assert set(record) == {"image", "edges", "label"} and record["label"] == 3
    np.testing.assert_array_equal(record["image"], _digits()[3]["image"])
    np.testing.assert_array_equal(record["edges"], edge_map(record["image"]))


@pytest.mark.parametrize("make", [TexturedDigits, AttributeDigits])
def test_a_derived_source_is_a_function_of_its_seed_and_index(make):
    a, b, other = make(_digits(), seed=1), make(_digits(), seed=1), make(_digits(), seed=2)
    for i in (0, 5):
        np.testing.assert_array_equal(a[i]["image"], b[i]["image"])
    assert any(not np.array_equal(a[i]["image"], other[i]["image"]) for i in range(len(a)))
    np.testing.assert_array_equal(a.__getitems__([5, 0])[0]["image"], a[5]["image"])
    with pytest.raises(IndexError):
        a[len(a)]


def test_textured_digits_invert_a_photograph_where_the_digit_is_drawn():
    source = TexturedDigits(_digits(), seed=0)
    for i in range(len(source)):
        image = source[i]["image"].astype(np.int64)
        digit = _digits()[i]["image"][..., 0] > 0
        assert image.shape == (28, 28, 3)
        # Off the digit the image is the crop itself: some crop of some photograph.
        # On a full-intensity digit it is 255 - crop.
        patch = np.where(digit[..., None], 255 - image, image)
        assert any(_is_crop(patch, photo) for photo in natural_images())


def _is_crop(patch: np.ndarray, photo: np.ndarray) -> bool:
    h, w = patch.shape[:2]
    corner = patch[0, 0]
    for top, left in zip(*np.nonzero((photo[:-h + 1, :-w + 1] == corner).all(-1))):
        if np.array_equal(photo[top:top + h, left:left + w], patch):
            return True
    return False


def test_attribute_digits_show_their_attributes():
    source = AttributeDigits(_digits(40), seed=0)
    seen = np.zeros(len(ATTRIBUTE_NAMES))
    for i in range(len(source)):
        record = source[i]
        image, attrs = record["image"].astype(np.float32), record["attributes"]
        assert attrs.shape == (5,) and attrs[:3].sum() == 1
        seen += attrs
        digit = _digits(40)[i]["image"][..., 0] > 0
        core = image[digit].mean(axis=0)   # the drawn pixels: the colour dominates
        assert np.argmax(core) == np.argmax(attrs[:3])
        off = image[~_dilated(digit)]
        assert (off.max() > 0) == bool(attrs[3])   # a black or a textured background
    assert (seen > 0).all()  # every attribute occurs
    thin, thick = _stroke_areas()
    assert thick > 1.5 * thin


def _dilated(mask, n=3):
    from scipy import ndimage
    return ndimage.binary_dilation(mask, iterations=n)


def _stroke_areas():
    """Lit pixels of the same digit drawn thin and thick (plain backgrounds)."""
    areas = {0: [], 1: []}
    source = AttributeDigits(_digits(40), seed=0)
    for i in range(len(source)):
        record = source[i]
        if record["attributes"][3] == 0:
            areas[int(record["attributes"][4])].append(
                (record["image"].max(-1) > 60).sum() / (_digits(40)[i]["image"] > 0).sum())
    return np.mean(areas[0]), np.mean(areas[1])


def test_small_digits_are_framed_like_mnist_and_split_once():
    train, test = SmallDigits("train"), SmallDigits("test")
    assert (len(train), len(test)) == (1500, 297)
    assert set(train.labels) == set(range(10)) == set(test.labels)
    record = train[0]
    assert record["image"].shape == (28, 28, 1) and record["image"].dtype == np.uint8
    assert not record["image"][:4].any() and not record["image"][24:].any()
    assert record["image"].max() > 200
    np.testing.assert_array_equal(SmallDigits("train").images, train.images)
    together = np.concatenate([train.images, test.images]).reshape(1797, -1)
    assert len(np.unique(together, axis=0)) > 1700   # the splits are the 1,797 digits
    with pytest.raises(DataError, match="split 'validation'"):
        SmallDigits("validation")


def test_derived_domains_over_the_shared_datasets():
    data_dir = require_shared_tfds()
    items = EdgeMaps(tfds_source("fashion_mnist", split="test", data_dir=data_dir))
    record = items[0]
    lit = record["edges"] > 0
    assert 0.03 < lit.mean() < 0.5, lit.mean()
    digits = TexturedDigits(tfds_source("mnist", split="test", data_dir=data_dir), seed=0)
    assert digits[0]["image"].shape == (28, 28, 3) and len(digits) == 10_000
