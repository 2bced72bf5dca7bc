"""Datasets held in device memory: the data order, the arrays, Stacked MNIST's fast path."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from jgan.data.images import DataError, _PrepareExample
from jgan.data.in_memory import batch_indices, load_examples, to_model_range
from jgan.data.permutation import index_shuffle
from jgan.data.stacked_mnist import StackedMNISTSource


def reference_indices(key, step: int, batch_size: int, n: int) -> np.ndarray:
    """Python-int positions step * B + j, epoch = pos // N, order of that epoch."""
    out = []
    for pos in range(step * batch_size, step * batch_size + batch_size):
        order = np.asarray(index_shuffle(jax.random.fold_in(key, pos // n), np.arange(n), n))
        out.append(order[pos % n])
    return np.array(out)


@pytest.mark.parametrize("batch_size,n", [(4, 10), (10, 10), (3, 7)])
def test_every_epoch_visits_every_example_once(batch_size, n):
    key = jax.random.PRNGKey(3)
    draw = jax.jit(lambda s: batch_indices(key, s, batch_size, n))
    epochs = 5
    seq = np.concatenate([np.asarray(draw(s)) for s in range(epochs * n // batch_size + 1)])
    for e in range(epochs):
        assert sorted(seq[e * n:(e + 1) * n]) == list(range(n))
    # Different epochs come in different orders.
    assert any((seq[:n] != seq[e * n:(e + 1) * n]).any() for e in range(1, epochs))


@pytest.mark.parametrize("step", [0, 1, 2, 17, 2**28 + 3, 2**31 - 1])
def test_batch_indices_match_the_python_int_reference(step):
    # Large steps: step * B overflows int32, the indices must not.
    key = jax.random.PRNGKey(0)
    got = jax.jit(lambda s: batch_indices(key, s, 6, 9))(step)
    np.testing.assert_array_equal(np.asarray(got), reference_indices(key, step, 6, 9))


def test_batch_larger_than_the_dataset_is_refused():
    with pytest.raises(ValueError, match="larger than the 3 examples"):
        batch_indices(jax.random.PRNGKey(0), 0, 4, 3)


class ListSource:
    def __init__(self, records):
        self.records = records

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]


def digit_source(n: int = 30) -> ListSource:
    rng = np.random.default_rng(0)
    return ListSource([{"image": rng.integers(0, 256, (28, 28, 1), np.uint8), "label": i % 10}
                       for i in range(n)])


def test_native_images_stay_uint8_and_map_to_the_pipeline_range():
    source = digit_source()
    arrays = load_examples(source, resolution=28, channels=1)
    assert arrays["image"].dtype == np.uint8 and arrays["image"].shape == (30, 28, 28, 1)
    prepare = _PrepareExample(28, 1)
    for i in (0, 7, 29):
        expected = prepare(source[i])
        np.testing.assert_allclose(np.asarray(to_model_range(arrays["image"][i])),
                                   expected["image"], atol=1e-6)
        assert arrays["label"][i] == expected["label"]


def test_other_shapes_go_through_the_pipeline_conversion():
    source = digit_source(5)
    arrays = load_examples(source, resolution=32, channels=3)
    assert arrays["image"].dtype == np.float32 and arrays["image"].shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(arrays["image"][2], _PrepareExample(32, 3)(source[2])["image"])


def test_too_large_a_dataset_names_the_setting():
    with pytest.raises(DataError, match="data.on_device=False"):
        load_examples(digit_source(), resolution=28, channels=1, max_bytes=1000)


def test_stacked_mnist_arrays_equal_the_examples():
    stacked = StackedMNISTSource(digit_source(), num_examples=50, seed=1)
    arrays = load_examples(stacked, resolution=28, channels=3)
    assert arrays["image"].shape == (50, 28, 28, 3) and arrays["image"].dtype == np.uint8
    for i in range(50):
        example = stacked[i]
        np.testing.assert_array_equal(arrays["image"][i], example["image"])
        assert arrays["label"][i] == example["label"]
