"""index_shuffle: a bijection of [0, N), random access, and distributed like a shuffle."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.data.permutation import index_shuffle


def full_order(key, n: int) -> np.ndarray:
    return np.asarray(jax.jit(lambda k: index_shuffle(k, jnp.arange(n), n))(key))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 255, 256, 257, 1000, 60000])
def test_every_position_maps_to_a_distinct_element(n):
    order = full_order(jax.random.PRNGKey(n), n)
    assert order.dtype == np.int32
    np.testing.assert_array_equal(np.sort(order), np.arange(n))


def test_any_positions_read_the_same_order_as_the_whole():
    key, n = jax.random.PRNGKey(1), 1000
    order = full_order(key, n)
    positions = np.array([[999, 0, 5], [5, 500, 1]])  # any shape, repeats allowed
    got = jax.jit(lambda i: index_shuffle(key, i, n))(positions)
    np.testing.assert_array_equal(np.asarray(got), order[positions])


def test_the_key_chooses_the_permutation():
    n = 1000
    a, b = full_order(jax.random.PRNGKey(0), n), full_order(jax.random.PRNGKey(1), n)
    np.testing.assert_array_equal(a, full_order(jax.random.PRNGKey(0), n))
    # Two independent shuffles agree at ~1 position; far from the identity too.
    assert np.sum(a == b) < 10
    assert np.sum(a == np.arange(n)) < 10


def test_all_orders_of_three_are_equally_likely():
    keys = jax.random.split(jax.random.PRNGKey(7), 6000)
    orders = np.asarray(jax.jit(jax.vmap(lambda k: index_shuffle(k, jnp.arange(3), 3)))(keys))
    counts = np.array([np.sum(np.all(orders == np.array(p), axis=1))
                       for p in itertools.permutations(range(3))])
    assert counts.sum() == 6000
    chi2 = np.sum((counts - 1000.0) ** 2 / 1000.0)
    assert chi2 < 25.0, counts  # 5 degrees of freedom: P(chi2 > 25) ~ 1e-4


def test_a_large_order_has_no_structure_left():
    n = 60000
    order = full_order(jax.random.PRNGKey(3), n).astype(np.float64)
    positions = np.arange(n, dtype=np.float64)
    assert abs(np.corrcoef(positions, order)[0, 1]) < 0.02  # ~N(0, 1/sqrt(n)) = 0.004
    # Neighbouring positions hold unrelated elements: E|X - Y| = n / 3 for a shuffle.
    assert abs(np.mean(np.abs(np.diff(order))) / (n / 3) - 1) < 0.02
    # Each fifth of the positions draws evenly from each fifth of the elements
    # (2,400 per cell, a standard deviation of 2 %).
    table = np.histogram2d(positions, order, bins=5)[0]
    np.testing.assert_allclose(table, n / 25, rtol=0.1)


@pytest.mark.parametrize("n,dtype", [(2**31 - 1, np.int32), (2**31, np.int32),
                                     (3_000_000_000, np.uint32)])
def test_sizes_up_to_32_bits(n, dtype):
    positions = np.array([0, 1, 2, 123456, n - 1], np.int64).astype(np.uint32)
    got = np.asarray(jax.jit(lambda i: index_shuffle(jax.random.PRNGKey(0), i, n))(positions))
    assert got.dtype == dtype
    values = got.astype(np.int64)
    assert np.all((values >= 0) & (values < n)) and len(set(values)) == len(values)


@pytest.mark.parametrize("n", [0, 2**32])
def test_sizes_outside_32_bits_are_refused(n):
    with pytest.raises(ValueError, match=r"num_elements must be in \[1, 2\*\*32\)"):
        index_shuffle(jax.random.PRNGKey(0), jnp.arange(1), n)
