"""Claim 1 on min_x max_y x y, through the shared step machinery (jgan.dynamics.bilinear).

The references are closed forms of plain SGD with step eta on w = x + i y, computed
here in complex float64 numpy, independently of jax: simultaneous w' = (1 + i eta) w,
extragradient w' = (1 + i eta - eta^2) w, optimistic w' = (1 + 2 i eta) w - i eta w_prev
(first step plain GD, as optax's OGD), alternating y' = y + eta x then x' = x - eta y',
which preserves Q(x, y) = x^2 + eta x y + y^2.
"""
from __future__ import annotations

import functools

import chex
import numpy as np
import pytest

from jgan.dynamics.bilinear import (
    BILINEAR_RULES,
    bilinear_game,
    bilinear_trajectory,
    distance_to_equilibrium,
)

ETA, STEPS = 0.2, 150
X0, Y0 = 1.0, 0.5


@functools.cache
def trajectory(rule: str, unroll_steps: int = 0) -> np.ndarray:
    path = bilinear_trajectory(rule, learning_rate=ETA, num_steps=STEPS, x0=X0, y0=Y0,
                               unroll_steps=unroll_steps)
    chex.assert_shape(path, (STEPS + 1, 2))
    chex.assert_tree_all_finite(path)
    return np.asarray(path, np.float64)


def complex_reference(multiplier: complex) -> np.ndarray:
    w = (X0 + 1j * Y0) * multiplier ** np.arange(STEPS + 1)
    return np.stack([w.real, w.imag], axis=1)


def test_simultaneous_spirals_out_by_sqrt_one_plus_eta_squared_per_step():
    path = trajectory("simultaneous")
    dist = distance_to_equilibrium(path)
    np.testing.assert_allclose(dist[1:] / dist[:-1], np.sqrt(1 + ETA**2), rtol=1e-5)
    np.testing.assert_allclose(path, complex_reference(1 + 1j * ETA), rtol=1e-4, atol=1e-5)
    assert np.all(np.diff(dist) > 0) and dist[-1] > 10 * dist[0]


def test_alternating_stays_on_a_bounded_orbit_and_does_not_converge():
    path = trajectory("alternating")
    x, y = path[:, 0], path[:, 1]
    q = x**2 + ETA * x * y + y**2                     # conserved by the symplectic map
    np.testing.assert_allclose(q, q[0], rtol=1e-4)
    # Q's eigenvalues are 1 -+ eta/2, so |w|^2 stays within [Q / (1 + eta/2), Q / (1 - eta/2)].
    dist = distance_to_equilibrium(path)
    assert np.all(dist <= np.sqrt(q[0] / (1 - ETA / 2)) * (1 + 1e-4))
    assert np.all(dist >= np.sqrt(q[0] / (1 + ETA / 2)) * (1 - 1e-4))
    # The orbit goes around: both signs of x and of y are visited.
    assert x.min() < 0 < x.max() and y.min() < 0 < y.max()


def test_extragradient_converges_at_the_extra_sgd_rate():
    path = trajectory("extragradient")
    dist = distance_to_equilibrium(path)
    rate = np.sqrt(1 - ETA**2 + ETA**4)
    np.testing.assert_allclose(dist[1:] / dist[:-1], rate, rtol=1e-5)
    np.testing.assert_allclose(path, complex_reference(1 + 1j * ETA - ETA**2), rtol=1e-4,
                               atol=1e-6)
    assert dist[-1] < 0.1 * dist[0]


def test_optimistic_converges_as_the_ogd_recurrence():
    path = trajectory("optimistic")
    w = np.zeros(STEPS + 1, complex)
    w[0] = X0 + 1j * Y0
    w[1] = (1 + 1j * ETA) * w[0]
    for t in range(1, STEPS):
        w[t + 1] = (1 + 2j * ETA) * w[t] - 1j * ETA * w[t - 1]
    np.testing.assert_allclose(path, np.stack([w.real, w.imag], 1), rtol=1e-4, atol=1e-6)
    # Asymptotic rate: the larger root of lambda^2 - (1 + 2 i eta) lambda + i eta.
    rho = np.max(np.abs(np.roots([1, -(1 + 2j * ETA), 1j * ETA])))
    assert rho < 1
    dist = distance_to_equilibrium(path)
    np.testing.assert_allclose(dist[-1] / dist[-11], rho**10, rtol=1e-3)
    assert dist[-1] < 0.1 * dist[0]


def test_unrolled_simultaneous_damps_x_by_two_k_eta_squared():
    """With k unrolled y updates, y_k = y + k eta x, so x's gradient is y + 2 k eta x."""
    k = 2
    path = trajectory("simultaneous", unroll_steps=k)
    m = np.array([[1 - 2 * k * ETA**2, -ETA], [ETA, 1.0]])
    expected = [np.array([X0, Y0])]
    for _ in range(STEPS):
        expected.append(m @ expected[-1])
    np.testing.assert_allclose(path, np.stack(expected), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("rule", BILINEAR_RULES)
def test_every_rule_starts_at_the_given_point(rule):
    chex.assert_trees_all_close(trajectory(rule)[0], np.array([X0, Y0]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="learning_rate"):
        bilinear_game(0.0)
    with pytest.raises(ValueError, match="update_rule"):
        bilinear_game(0.1, update_rule="jacobi")
    with pytest.raises(ValueError, match="trajectory"):
        distance_to_equilibrium(np.zeros((3, 3)))


@pytest.mark.parametrize("k", [0, 1, 3])
def test_unrolled_gradient_terms_on_the_bilinear_game(k):
    """x's loss x y against y_k = y + k eta x (k SGD ascent steps on x y): the plain
    gradient is y, the direct part (y_k held) y + k eta x, the second-order part
    x dy_k/dx = k eta x, and their sum is the gradient the unrolled step uses."""
    import jax

    from jgan.dynamics.bilinear import X
    from jgan.core.unrolled import unrolled_gradient_terms, unrolled_team_gradients

    x0, y0 = 0.7, -0.4
    game = bilinear_game(ETA, x0=x0, y0=y0)
    state = game.init(jax.random.key(0), {})
    terms = jax.jit(lambda s: unrolled_gradient_terms(game, s, {}, jax.random.key(1), team="x",
                                                      adversary="y", unroll_steps=k))(state)
    value = lambda tree: float(tree[X]["value"])
    np.testing.assert_allclose(value(terms.plain), y0, rtol=1e-6)
    np.testing.assert_allclose(value(terms.direct), y0 + k * ETA * x0, rtol=1e-6)
    np.testing.assert_allclose(value(terms.second_order), k * ETA * x0, rtol=1e-6, atol=1e-7)
    full = unrolled_team_gradients(game, state, {}, jax.random.key(1), team="x", adversary="y",
                                   unroll_steps=k, axis_name=None).grads
    np.testing.assert_allclose(value(full), value(terms.direct) + value(terms.second_order),
                               rtol=1e-6)
