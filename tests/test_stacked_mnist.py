"""Stacked MNIST: the data source, its training config, and PacGAN's mode/KL protocol."""
from __future__ import annotations

import pickle

import chex
import numpy as np
import pytest

from experiments.configs import dcgan_stacked_mnist
from jgan.data.images import DataError, tfds_source
from jgan.data.stacked_mnist import (
    DEFAULT_NUM_EXAMPLES,
    StackedMNISTSource,
    stacked_mnist_source,
)
from jgan.eval.stacked_mnist import (
    histogram_statistics,
    mode_histogram,
    stacked_mnist_modes,
)
from jgan.train import builders
from jgan.train.input import build_input
from tests.helpers import require_shared_tfds

# --- the source ----------------------------------------------------------------------


def test_examples_stack_the_indexed_mnist_digits():
    data_dir = require_shared_tfds()
    source = stacked_mnist_source("test", data_dir, num_examples=300, seed=3)
    mnist = tfds_source("mnist", split="test", data_dir=data_dir)
    assert len(source) == 300 and source.mnist_indices.shape == (300, 3)
    assert source.mnist_indices.min() >= 0 and source.mnist_indices.max() < len(mnist)
    for i in (0, 1, 157, 299, -1):
        example = source[i]
        chex.assert_shape(example["image"], (28, 28, 3))
        chex.assert_type(example["image"], np.uint8)
        digits = []
        for channel, j in enumerate(source.mnist_indices[i]):
            record = mnist[int(j)]
            np.testing.assert_array_equal(example["image"][..., channel], record["image"][..., 0])
            digits.append(int(record["label"]))
        assert example["label"] == 100 * digits[0] + 10 * digits[1] + digits[2]
    batch = source.__getitems__([5, 0, 5, 299])
    for i, example in zip([5, 0, 5, 299], batch):
        np.testing.assert_array_equal(example["image"], source[i]["image"])
        assert example["label"] == source[i]["label"]
    with pytest.raises(IndexError, match="300"):
        source[300]


def test_source_is_deterministic_and_picklable():
    data_dir = require_shared_tfds()
    a = stacked_mnist_source("train", data_dir, seed=7)
    b = stacked_mnist_source("train", data_dir, seed=7)
    other = stacked_mnist_source("train", data_dir, seed=8)
    assert len(a) == DEFAULT_NUM_EXAMPLES
    np.testing.assert_array_equal(a.mnist_indices, b.mnist_indices)
    assert not np.array_equal(a.mnist_indices, other.mnist_indices)
    restored = pickle.loads(pickle.dumps(a))
    for i in (0, 12345, len(a) - 1):
        np.testing.assert_array_equal(restored[i]["image"], a[i]["image"])
        assert restored[i]["label"] == a[i]["label"] == b[i]["label"]


def test_source_rejects_bad_arguments():
    fake_mnist = [{"image": np.zeros((28, 28, 1), np.uint8), "label": 1}] * 4
    with pytest.raises(DataError, match="num_examples"):
        StackedMNISTSource(fake_mnist, num_examples=0)
    with pytest.raises(DataError, match="seed"):
        StackedMNISTSource(fake_mnist, seed=-1)
    with pytest.raises(DataError, match="empty"):
        StackedMNISTSource([])
    wrong = StackedMNISTSource([{"image": np.zeros((32, 32, 3), np.uint8), "label": 0}],
                               num_examples=2)
    with pytest.raises(DataError, match=r"\(32, 32, 3\)"):
        wrong[0]


# --- the training config -------------------------------------------------------------


def test_config_validates_and_names_bad_channels_and_resolution():
    config = dcgan_stacked_mnist.get_config("runlocal")
    builders.validate(config)
    config.data.channels = 1
    with pytest.raises(builders.ConfigError, match=r"config\.data\.channels"):
        builders.validate(config)
    config = dcgan_stacked_mnist.get_config()
    config.data.resolution = 64
    with pytest.raises(builders.ConfigError, match=r"config\.data\.resolution"):
        builders.validate(config)


def test_training_input_gives_rgb_batches_in_range():
    config = dcgan_stacked_mnist.get_config("runlocal")
    config.data.data_dir = require_shared_tfds()
    config.data.num_examples = 64
    batch = build_input(config).example_batch()
    chex.assert_shape(batch["image"], (config.batch_size, 28, 28, 3))
    assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
    assert 0 <= batch["label"].min() and batch["label"].max() < 1000
    # The three channels are different digits' images, not a repeated grayscale one.
    assert np.any(batch["image"][..., 0] != batch["image"][..., 1])


# --- the protocol --------------------------------------------------------------------


def test_histogram_statistics_analytic_values():
    uniform = histogram_statistics(np.full(1000, 26))
    assert uniform["modes"] == 1000 and abs(uniform["kl"]) < 1e-12
    single = histogram_statistics(np.eye(1000, dtype=int)[417] * 26000)
    assert single["modes"] == 1 and np.isclose(single["kl"], np.log(1000))
    # Mass 3/4 and 1/4 on two modes: sum p log(1000 p).
    two = histogram_statistics(np.bincount([3, 3, 3, 998], minlength=1000))
    expected = 0.75 * np.log(750) + 0.25 * np.log(250)
    assert two["modes"] == 2 and np.isclose(two["kl"], expected)
    assert histogram_statistics(np.zeros(1000, int)) == {"modes": 0, "kl": None}


def test_mode_histogram_counts_digit_triples():
    counts = mode_histogram(np.array([[1, 2, 3], [1, 2, 3], [0, 0, 0], [9, 9, 9]]))
    chex.assert_shape(counts, (1000,))
    assert counts[123] == 2 and counts[0] == 1 and counts[999] == 1 and counts.sum() == 4
    with pytest.raises(ValueError, match="0..9"):
        mode_histogram(np.array([[1, 2, 10]]))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        mode_histogram(np.zeros((4, 2), int))


def _constant_digit_images(digits: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28, 3) whose channel c is the constant 20 * digits[:, c] + 10."""
    values = (20 * digits + 10).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, :], (len(digits), 28, 28, 3)).copy()


def _read_constant_digit(images):
    """Toy classifier of `_constant_digit_images`: (M, 28, 28, 1) in [-1, 1] -> digits."""
    chex.assert_shape(images, (None, 28, 28, 1))
    pixel = (np.asarray(images)[:, 0, 0, 0] + 1.0) * 127.5
    return np.rint((pixel - 10) / 20).astype(np.int32)


def _logits_of_constant_digit(images):
    return np.eye(10)[_read_constant_digit(images)] * 5.0 - 1.0


@pytest.mark.parametrize("as_float", [False, True])
@pytest.mark.parametrize("classifier", [_read_constant_digit, _logits_of_constant_digit])
def test_collapsed_sample_gives_half_the_modes_and_log2(as_float, classifier):
    # Digits 0-4 only in the first channel: each of the 500 reachable triples 52 times.
    triples = np.array([(a, b, c) for a in range(5) for b in range(10) for c in range(10)])
    digits = np.random.default_rng(0).permutation(np.repeat(triples, 52, axis=0))
    samples = _constant_digit_images(digits)
    if as_float:
        samples = samples.astype(np.float32) / 127.5 - 1.0
    result = stacked_mnist_modes(samples, classifier, batch_size=999)
    assert result["modes"] == 500 and result["num_samples"] == 26000
    np.testing.assert_allclose(result["kl"], np.log(2.0), rtol=1e-12)
    assert result["protocol"]["follows_protocol"] and result["protocol"]["warning"] is None


def test_channels_are_classified_separately_in_order():
    digits = np.array([[1, 2, 3], [3, 2, 1], [7, 0, 9]])
    result = stacked_mnist_modes(_constant_digit_images(digits), _read_constant_digit)
    assert result["modes"] == 3 and result["num_samples"] == 3
    assert not result["protocol"]["follows_protocol"]
    assert "26000" in result["protocol"]["warning"]
    np.testing.assert_allclose(result["kl"], np.log(1000 / 3))


def test_protocol_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 3\).*\(4, 32, 32, 3\)"):
        stacked_mnist_modes(np.zeros((4, 32, 32, 3), np.float32), _read_constant_digit)
    with pytest.raises(ValueError, match="classify_digits"):
        stacked_mnist_modes(np.zeros((4, 28, 28, 3), np.float32), lambda x: np.zeros((4, 3)))


def _mnist_oracle(data_dir: str):
    """classify_digits that looks each image up among MNIST train's images (all distinct)."""
    mnist = tfds_source("mnist", split="train", data_dir=data_dir)
    records = mnist.__getitems__(list(range(len(mnist))))
    label_of = {r["image"].tobytes(): int(r["label"]) for r in records}
    assert len(label_of) == len(mnist)
    frequencies = np.bincount([int(r["label"]) for r in records], minlength=10) / len(mnist)

    def classify(images):
        pixels = np.rint((np.asarray(images) + 1.0) * 127.5).astype(np.uint8)
        return np.array([label_of[p.tobytes()] for p in pixels])

    return classify, frequencies


def test_real_stacked_mnist_covers_all_modes_with_kl_near_zero():
    data_dir = require_shared_tfds()
    classify, frequencies = _mnist_oracle(data_dir)
    source = stacked_mnist_source("train", data_dir)
    examples = source.__getitems__(range(26000))
    samples = np.stack([e["image"] for e in examples]).astype(np.float32) / 127.5 - 1.0
    result = stacked_mnist_modes(samples, classify)
    assert result["modes"] == 1000 and result["protocol"]["follows_protocol"]
    # The digits are independent draws from MNIST's (slightly non-uniform) class
    # frequencies, so the plug-in KL of 26,000 draws is distributed as that of a
    # multinomial sample of the product distribution: simulate it (about
    # 999 / 52000 + 3 KL(freq || uniform_10) ~ 0.024, sd ~ 0.001).
    p_true = np.einsum("a,b,c->abc", frequencies, frequencies, frequencies).ravel()
    rng = np.random.default_rng(0)
    simulated = [histogram_statistics(rng.multinomial(26000, p_true))["kl"] for _ in range(400)]
    mean, sd = np.mean(simulated), np.std(simulated)
    assert abs(result["kl"] - mean) < 5 * sd, (result["kl"], mean, sd)
    assert result["kl"] < 0.03
