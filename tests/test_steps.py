"""Tests for the shared step functions (jgan.core.steps) on games built by jgan.families.

Most checks use a game whose updates are known in closed form: a generator that is a
single point theta (it ignores z, so no randomness enters its loss), a linear critic
f(x) = <w, x> + b, and plain SGD (update = -lr * grad). The expected updates are
computed with jax.grad of the losses written out by hand here.
"""
from __future__ import annotations

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from jgan.core import steps
from jgan.families.adversarial import adversarial_game
from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jgan.models.mlp import MLPDiscriminator, MLPGenerator

LR_D, LR_G, EMA = 0.5, 0.2, 0.9
B = 6
THETA0 = np.array([0.3, -0.2], np.float32)
W0 = np.array([0.8, -0.5], np.float32)
B0 = np.float32(0.1)
METRIC_KEYS = {"d_loss", "g_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake",
               "d_grad_norm", "g_grad_norm"}


class PointGenerator(nn.Module):
    """G(z) = theta for every z."""
    dim: int = 2

    @nn.compact
    def __call__(self, z):
        theta = self.param("theta", nn.initializers.zeros_init(), (self.dim,))
        return jnp.broadcast_to(theta, (z.shape[0], self.dim))


class LinearCritic(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(x)[:, 0]


class BNGenerator(nn.Module):
    """z -> Dense -> BatchNorm -> ReLU -> Dense: a cheap generator with batch statistics."""
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, z, *, train: bool = False):
        # No bias before batch norm: its exact gradient is 0 and Adam would amplify the
        # round-off into lr-sized, layout-dependent steps.
        h = nn.Dense(8, use_bias=False)(z)
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                         axis_name=self.bn_axis_name)(h)
        return nn.Dense(2)(nn.relu(h))


def _real(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 2)) + np.array([1.0, 2.0])).astype(np.float32)


def _point_game(loss_type="non_saturating", **kwargs):
    return adversarial_game(generator=PointGenerator(), discriminator=LinearCritic(),
                            latent_dim=3, loss_type=loss_type,
                            generator_optimizer=optax.sgd(LR_G),
                            discriminator_optimizer=optax.sgd(LR_D), ema_decay=EMA, **kwargs)


def _with_params(state, theta, w, b):
    gen = state.teams["generator"].replace(params={"generator": {"theta": jnp.asarray(theta)}})
    disc = state.teams["discriminator"].replace(params={"discriminator": {"Dense_0": {
        "kernel": jnp.asarray(w).reshape(2, 1), "bias": jnp.asarray(b).reshape(1)}}})
    return state.replace(teams={"generator": gen, "discriminator": disc},
                         ema={"generator": {"generator": {"theta": jnp.asarray(theta)}}})


def _theta(state):
    return state.teams["generator"].params["generator"]["theta"]


def _wb(state):
    d = state.teams["discriminator"].params["discriminator"]["Dense_0"]
    return d["kernel"][:, 0], d["bias"][0]


@functools.lru_cache(maxsize=None)
def jitted_step(game, d_steps=1, **kwargs):
    """One compiled step per (game, arguments), shared by the tests."""
    return jax.jit(steps.make_step(game, repeats={"discriminator": d_steps}, **kwargs))


@pytest.fixture(scope="module")
def point_state():
    game = _point_game()
    state = game.init(jax.random.key(0), {"image": jnp.zeros((B, 2))})
    return game, _with_params(state, THETA0, W0, B0)


# The losses of the point game, written out: log D = -log(1 + e^-l), log(1 - D) = -log(1 + e^l).
def hand_d_loss(w, b, theta, real):
    real_logits = real @ w + b
    fake_logit = theta @ w + b          # every fake is theta
    return jnp.mean(jnp.logaddexp(0.0, -real_logits)) + jnp.logaddexp(0.0, fake_logit)


def hand_g_loss(theta, w, b):
    return jnp.logaddexp(0.0, -(theta @ w + b))


@jax.jit
def hand_g_update(theta, w, b):
    return theta - LR_G * jax.grad(hand_g_loss)(theta, w, b)


@jax.jit
def hand_d_update(w, b, theta, real):
    gw, gb = jax.grad(hand_d_loss, argnums=(0, 1))(w, b, theta, real)
    return w - LR_D * gw, b - LR_D * gb


# ------------------------------------------------------------------ update rules


def test_simultaneous_vs_alternating_generator_update(point_state):
    game, state = point_state
    real = _real(B)
    batch = {"image": jnp.asarray(real)}
    sim_state, _ = jitted_step(game, update_rule="simultaneous")(state, batch)
    alt_state, _ = jitted_step(game)(state, batch)

    # Both rules make the same discriminator update from the old state.
    w1, b1 = hand_d_update(W0, B0, THETA0, real)
    for s in (sim_state, alt_state):
        chex.assert_trees_all_close(_wb(s), (w1, b1), rtol=1e-5, atol=1e-6)
        assert int(s.step) == 1

    # Simultaneous: the generator's gradient at the OLD discriminator ...
    theta_sim = hand_g_update(THETA0, W0, B0)
    chex.assert_trees_all_close(_theta(sim_state), theta_sim, rtol=1e-5, atol=1e-6)
    # ... alternating: at the NEW, already updated one.
    theta_alt = hand_g_update(THETA0, w1, b1)
    chex.assert_trees_all_close(_theta(alt_state), theta_alt, rtol=1e-5, atol=1e-6)
    # The discriminator moved, so the two rules really differ.
    assert np.max(np.abs(np.asarray(_theta(sim_state)) - np.asarray(_theta(alt_state)))) > 1e-3


def test_d_steps_updates_the_discriminator_on_each_interleaved_slice(point_state):
    game, state = point_state
    d_steps = 3
    real = _real(d_steps * B, seed=1)
    new_state, metrics = jax.jit(steps.make_step(game, repeats={"discriminator": d_steps}))(
        state, {"image": jnp.asarray(real)})

    w, b, d_losses = W0, B0, []
    for i in range(d_steps):                  # slice i: examples i, i + d_steps, ...
        d_losses.append(hand_d_loss(w, b, THETA0, real[i::d_steps]))
        w, b = hand_d_update(w, b, THETA0, real[i::d_steps])
    chex.assert_trees_all_close(_wb(new_state), (w, b), rtol=1e-5, atol=1e-6)
    theta = hand_g_update(THETA0, w, b)
    chex.assert_trees_all_close(_theta(new_state), theta, rtol=1e-5, atol=1e-6)
    # d_* metrics are averaged over the discriminator updates.
    chex.assert_trees_all_close(metrics["d_loss"], jnp.mean(jnp.stack(d_losses)), rtol=1e-5)
    # Not the same as a single update on the whole batch.
    w_one, _ = hand_d_update(W0, B0, THETA0, real)
    assert np.max(np.abs(np.asarray(w_one) - np.asarray(_wb(new_state)[0]))) > 1e-3


def test_ema_after_one_step(point_state):
    game, state = point_state
    new_state, _ = jitted_step(game)(state, {"image": jnp.asarray(_real(B))})
    theta1 = _theta(new_state)
    assert np.max(np.abs(np.asarray(theta1) - THETA0)) > 1e-3
    chex.assert_trees_all_close(new_state.ema["generator"]["generator"]["theta"],
                                EMA * THETA0 + (1 - EMA) * theta1, rtol=1e-6, atol=1e-7)


def test_ema_warmup_uses_the_smaller_of_the_decay_and_1_plus_t_over_10_plus_t(point_state):
    import dataclasses
    game, state = point_state
    generator = dataclasses.replace(game.teams["generator"], ema_warmup=True)
    game = dataclasses.replace(game, teams={**game.teams, "generator": generator})
    step = jitted_step(game)
    expected = np.asarray(THETA0, np.float64)
    for t in range(3):
        state, _ = step(state, {"image": jnp.asarray(_real(B, seed=t))})
        decay = min(EMA, (1 + t) / (10 + t))    # 0.1, 0.18, 0.25: warm-up, below EMA
        expected = decay * expected + (1 - decay) * np.asarray(_theta(state))
        chex.assert_trees_all_close(state.ema["generator"]["generator"]["theta"],
                                    expected.astype(np.float32), rtol=1e-5, atol=1e-6)
    late = state.replace(step=jnp.asarray(1000, jnp.int32))   # (1 + t) / (10 + t) > EMA
    before = np.asarray(late.ema["generator"]["generator"]["theta"])
    late, _ = step(late, {"image": jnp.asarray(_real(B))})
    chex.assert_trees_all_close(late.ema["generator"]["generator"]["theta"],
                                EMA * before + (1 - EMA) * np.asarray(_theta(late)),
                                rtol=1e-5, atol=1e-6)


def test_metrics_match_the_hand_computed_game(point_state):
    game, state = point_state
    real = _real(B, seed=2)
    _, metrics = jitted_step(game)(state, {"image": jnp.asarray(real)})
    assert METRIC_KEYS <= set(metrics), sorted(metrics)
    assert not {"gradient_penalty", "r1_penalty", "r2_penalty"} & set(metrics)
    for key in METRIC_KEYS:
        chex.assert_shape(metrics[key], ())
    real_logits = real @ W0 + B0
    fake_logit = THETA0 @ W0 + B0
    sig = lambda x: 1 / (1 + np.exp(-x))
    w1, b1 = hand_d_update(W0, B0, THETA0, real)
    d_grads = jax.jit(jax.grad(hand_d_loss, argnums=(0, 1)))(W0, B0, THETA0, real)
    expected = {
        "d_loss": hand_d_loss(W0, B0, THETA0, real),
        "d_real": np.mean(sig(real_logits)),
        "d_fake": sig(fake_logit),
        "d_acc_real": np.mean(real_logits > 0),
        "d_acc_fake": float(fake_logit <= 0),
        "d_grad_norm": np.sqrt(np.sum(np.square(d_grads[0])) + np.square(d_grads[1])),
        "g_loss": hand_g_loss(THETA0, w1, b1),
        "g_grad_norm": np.linalg.norm((THETA0 - hand_g_update(THETA0, w1, b1)) / LR_G),
    }
    chex.assert_trees_all_close({k: metrics[k] for k in expected},
                                {k: np.float32(v) for k, v in expected.items()},
                                rtol=1e-5, atol=1e-6)


def test_wgan_gp_penalty_of_the_linear_critic():
    """For f(x) = <w, x> + b the WGAN-GP penalty is (||w|| - 1)^2 at every interpolate."""
    lam = 10.0
    game = _point_game("wasserstein", gradient_penalty_weight=lam)
    state = game.init(jax.random.key(0), {"image": jnp.zeros((B, 2))})
    state = _with_params(state, THETA0, W0, B0)
    real = _real(B, seed=3)
    new_state, metrics = jax.jit(steps.make_step(game))(state, {"image": jnp.asarray(real)})

    def d_loss(w, b):   # f(theta) - mean f(real) + lam (||w|| - 1)^2
        return (THETA0 @ w + b) - jnp.mean(real @ w + b) + lam * (jnp.linalg.norm(w) - 1.0) ** 2

    chex.assert_trees_all_close(metrics["gradient_penalty"],
                                np.float32((np.linalg.norm(W0) - 1) ** 2), rtol=1e-5)
    chex.assert_trees_all_close(metrics["d_loss"], d_loss(W0, B0), rtol=1e-5)
    gw, gb = jax.jit(jax.grad(d_loss, argnums=(0, 1)))(W0, B0)
    chex.assert_trees_all_close(_wb(new_state), (W0 - LR_D * gw, B0 - LR_D * gb),
                                rtol=1e-5, atol=1e-6)
    # Wasserstein generator: L_G = -(<w1, theta> + b1), gradient -w1.
    chex.assert_trees_all_close(_theta(new_state), THETA0 + LR_G * _wb(new_state)[0],
                                rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------- a noisy MLP game


def _filled_state(game, batch, seed):
    """A GameState shaped like `game.init`'s, filled from numpy: kernels N(0, 1/fan_in),
    biases 0, batch norm scale 1 / mean 0 / var 1, spectral-norm u ~ N(0, 1), sigma 1.
    Spares the tests compiling every initializer, which on a CPU costs more than the
    step itself; `game.init` is exercised by the point game."""
    shapes = jax.eval_shape(game.init, jax.random.key(seed), batch)
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = path[-1].key
        if name in ("scale", "var", "sigma"):
            return jnp.ones(leaf.shape, leaf.dtype)
        if name in ("bias", "mean"):
            return jnp.zeros(leaf.shape, leaf.dtype)
        fan_in = int(np.prod(leaf.shape[:-1])) if name == "kernel" else 1
        return jnp.asarray(rng.normal(size=leaf.shape) / np.sqrt(fan_in), leaf.dtype)

    def team(team_shapes, optimizer):
        params = jax.tree_util.tree_map_with_path(fill, team_shapes.params)
        return team_shapes.replace(
            params=params, opt_state=optimizer.init(params),
            collections=jax.tree_util.tree_map_with_path(fill, team_shapes.collections))

    generator = team(shapes.teams["generator"], game.teams["generator"].optimizer)
    teams = {"generator": generator, "discriminator": team(shapes.teams["discriminator"],
                                                           game.teams["discriminator"].optimizer)}
    ema = {name: jax.tree.map(jnp.copy, teams[name].params) for name in shapes.ema}
    return shapes.replace(teams=teams, ema=ema, step=jnp.zeros((), jnp.int32),
                          rng=jax.random.key(seed))


def _mlp_game(loss_type="non_saturating", optimizer=None, generator=None, **kwargs):
    optimizer = optimizer or optax.sgd(0.1)
    return adversarial_game(generator=generator or MLPGenerator(hidden=(8,), output_dim=2),
                            discriminator=MLPDiscriminator(hidden=(8,), **kwargs.pop("d", {})),
                            latent_dim=4, loss_type=loss_type, generator_optimizer=optimizer,
                            discriminator_optimizer=optimizer, **kwargs)


def test_alternating_step_on_mlps_with_noise_matches_hand_gradients():
    """G(z) depends on z: reproduce the step's draws from `step_rng` (fold_in(rng, step)),
    update i of a step using fold_in(key, i), the discriminator's z from its first split."""
    game = _mlp_game("minimax")
    real = jnp.asarray(_real(8, seed=4))
    state = _filled_state(game, {"image": real}, seed=1)
    state = state.replace(step=jnp.int32(5))
    new_state, metrics = jax.jit(steps.make_step(game))(state, {"image": real})

    g_mod, d_mod = game.teams["generator"].networks["generator"], game.teams["discriminator"].networks["discriminator"]
    gp0 = state.teams["generator"].params["generator"]
    dp0 = state.teams["discriminator"].params["discriminator"]
    key = jax.random.fold_in(state.rng, 5)
    z_d = jax.random.normal(jax.random.split(jax.random.fold_in(key, 0))[0], (8, 4))
    z_g = jax.random.normal(jax.random.fold_in(key, 1), (8, 4))

    def d_loss(dp):
        fake = g_mod.apply({"params": gp0}, z_d)
        d = lambda x: d_mod.apply({"params": dp}, x)
        return jnp.mean(jnp.logaddexp(0.0, -d(real))) + jnp.mean(jnp.logaddexp(0.0, d(fake)))

    def g_loss(gp, dp):   # saturating: mean log(1 - D(G(z)))
        return -jnp.mean(jnp.logaddexp(0.0, d_mod.apply({"params": dp},
                                                          g_mod.apply({"params": gp}, z_g))))

    @jax.jit
    def hand_step(gp0, dp0):
        dp1 = jax.tree.map(lambda p, g: p - 0.1 * g, dp0, jax.grad(d_loss)(dp0))
        gp1 = jax.tree.map(lambda p, g: p - 0.1 * g, gp0, jax.grad(g_loss)(gp0, dp1))
        return dp1, gp1, d_loss(dp0), g_loss(gp0, dp1)

    dp1, gp1, d_loss0, g_loss1 = hand_step(gp0, dp0)
    chex.assert_trees_all_close(new_state.teams["discriminator"].params["discriminator"], dp1,
                                rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(new_state.teams["generator"].params["generator"], gp1,
                                rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close((metrics["d_loss"], metrics["g_loss"]),
                                (d_loss0, g_loss1), rtol=1e-5)
    assert int(new_state.step) == 6


def test_step_compiles_once_and_counts_steps(point_state):
    game, state = point_state
    data = np.random.default_rng(5).normal(size=(20, 2 * B, 2)).astype(np.float32)
    traces = []
    step = steps.make_step(game, repeats={"discriminator": 2})

    def counted(state, batch):
        traces.append(1)
        return step(state, batch)

    jitted = jax.jit(counted)
    for i, x in enumerate(data):
        state, metrics = jitted(state, {"image": jnp.asarray(x)})
        assert int(state.step) == i + 1
    assert len(traces) == 1
    assert jitted._cache_size() == 1
    chex.assert_tree_all_finite((state.teams["generator"], state.teams["discriminator"], state.ema["generator"],
                                 metrics))


def test_penalty_metrics_and_wgan_gp_under_jit():
    batch = {"image": jnp.asarray(_real(10, seed=6))}
    game = _mlp_game("wasserstein", optimizer=optax.adam(1e-4, b1=0.5, b2=0.9),
                     gradient_penalty_weight=10.0, r1_gamma=1.0, r2_gamma=2.0)
    state = _filled_state(game, batch, seed=3)
    new_state, metrics = jax.jit(steps.make_step(game, repeats={"discriminator": 5}))(state, batch)
    assert METRIC_KEYS | {"gradient_penalty", "r1_penalty", "r2_penalty"} <= set(metrics), (
        sorted(metrics))
    chex.assert_tree_all_finite((new_state.teams["generator"], new_state.teams["discriminator"], metrics))
    assert float(metrics["gradient_penalty"]) > 0
    assert int(new_state.step) == 1


def test_make_step_rejects_bad_arguments(point_state):
    game, state = point_state
    with pytest.raises(ValueError, match="update_rule"):
        steps.make_step(game, update_rule="jacobi")
    with pytest.raises(ValueError, match="one update per team"):
        steps.make_step(game, update_rule="simultaneous", repeats={"discriminator": 2})
    with pytest.raises(ValueError, match=r"repeats\['discriminator'\]"):
        steps.make_step(game, repeats={"discriminator": 0})
    with pytest.raises(KeyError, match="critic"):
        steps.make_step(game, repeats={"critic": 2})
    with pytest.raises(ValueError, match="4 equal update batches"):
        jax.jit(steps.make_step(game, repeats={"discriminator": 4}))(state, {"image": jnp.zeros((B, 2))})


# ------------------------------------------------------ discriminator batches


def test_split_update_batches_interleaves():
    batch = {"x": jnp.arange(12 * 2).reshape(12, 2), "y": jnp.arange(12)}
    out = jax.jit(steps.split_update_batches, static_argnums=1)(batch, 3)
    chex.assert_shape(out["x"], (3, 4, 2))
    chex.assert_shape(out["y"], (3, 4))
    for i in range(3):
        chex.assert_trees_all_equal(out["y"][i], batch["y"][i::3])
        chex.assert_trees_all_equal(out["x"][i], batch["x"][i::3])
    with pytest.raises(ValueError, match="5 equal update batches"):
        steps.split_update_batches(batch, 5)


def test_split_update_batches_keeps_examples_on_their_device():
    """With the batch sharded over 8 devices, device k's part of every slice holds only
    examples of device k's shard, so splitting moves no data."""
    mesh = jax.make_mesh((8,), ("data",))
    n, per_device = 2, 4
    x = jax.device_put(jnp.arange(8 * per_device), NamedSharding(mesh, P("data")))
    out = jax.jit(steps.split_update_batches, static_argnums=1,
                  out_shardings=NamedSharding(mesh, P(None, "data")))(x, n)
    owner = {int(v): s.device for s in x.addressable_shards for v in np.asarray(s.data)}
    for shard in out.addressable_shards:
        for v in np.asarray(shard.data).reshape(-1):
            assert owner[int(v)] == shard.device
    chex.assert_trees_all_equal(out, np.arange(8 * per_device).reshape(-1, n).T)


# --------------------------------------------------------------- multi-device


def _comparable(state):
    return jax.device_get(state.replace(rng=jax.random.key_data(state.rng)))


def _run(step, state, batches):
    for batch in batches:
        state, metrics = step(state, batch)
    return state, metrics


def test_same_result_on_one_and_eight_devices():
    """jit with the batch sharded over 8 devices computes the one-device step: batch norm
    statistics span the global batch, spectral-norm vectors and EMA stay replicated."""
    assert jax.device_count() == 8
    game = _mlp_game("non_saturating", optimizer=optax.adam(1e-3, b1=0.5),
                     generator=BNGenerator(), d={"spectral_norm": True}, ema_decay=0.9)
    data = np.random.default_rng(7).normal(size=(3, 32, 2)).astype(np.float32)
    batches = [{"image": jnp.asarray(x)} for x in data]
    state = _filled_state(game, batches[0], seed=5)
    step = jax.jit(steps.make_step(game, repeats={"discriminator": 2}))

    one_state, one_metrics = _run(step, state, batches)
    assert one_state.step.devices() == {jax.devices()[0]}

    mesh = jax.make_mesh((8,), ("data",))
    sharded = [jax.device_put(b, NamedSharding(mesh, P("data"))) for b in batches]
    eight_state, eight_metrics = _run(step, jax.device_put(state, NamedSharding(mesh, P())),
                                      sharded)
    assert len(eight_state.teams["generator"].params["generator"]["Dense_0"]["kernel"].devices()) == 8
    assert not np.allclose(  # the batch-norm running averages moved
        one_state.teams["generator"].collections["generator"]["batch_stats"]["BatchNorm_0"]["mean"], 0)
    chex.assert_trees_all_close(_comparable(one_state), _comparable(eight_state),
                                rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(jax.device_get(one_metrics), jax.device_get(eight_metrics),
                                rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("update_rule,d_steps,check_vma", [
    ("alternating", 2, True), ("simultaneous", 1, True), ("alternating", 2, False)])
def test_shard_map_step_averages_gradients_like_the_global_batch(point_state, check_vma,
                                                                update_rule, d_steps):
    """The point game draws no noise that matters, so the data-parallel step must be the
    global-batch step exactly: gradients averaged (not summed) over the 8 devices, and
    device k's discriminator slice i the examples of global slice i it holds."""
    game, state = point_state
    mesh = jax.make_mesh((8,), ("data",))
    batch = {"image": jnp.asarray(_real(16, seed=10))}
    ref_state, ref_metrics = jitted_step(game, update_rule=update_rule, d_steps=d_steps)(
        state, batch)
    mapped = jax.jit(jax.shard_map(
        steps.make_step(game, update_rule=update_rule, repeats={"discriminator": d_steps}, axis_name="data"),
        mesh=mesh, in_specs=(P(), P("data")), out_specs=(P(), P()), check_vma=check_vma))
    new_state, metrics = mapped(jax.device_put(state, NamedSharding(mesh, P())),
                                jax.device_put(batch, NamedSharding(mesh, P("data"))))
    chex.assert_trees_all_close(_comparable(new_state), _comparable(ref_state),
                                rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(jax.device_get(metrics), jax.device_get(ref_metrics),
                                rtol=1e-5, atol=1e-6)


def test_shard_map_step_keeps_params_replicated():
    game = _mlp_game("hinge", optimizer=optax.adam(1e-3),
                     generator=BNGenerator(bn_axis_name="data"), d={"spectral_norm": True})
    mesh = jax.make_mesh((8,), ("data",))
    data = np.random.default_rng(8).normal(size=(3, 16, 2)).astype(np.float32)
    state = _filled_state(game, {"image": data[0]}, seed=6)
    step = jax.jit(jax.shard_map(steps.make_step(game, axis_name="data"), mesh=mesh,
                                 in_specs=(P(), P("data")), out_specs=(P(), P())))
    batches = [jax.device_put({"image": x}, NamedSharding(mesh, P("data"))) for x in data]
    new_state, metrics = _run(step, jax.device_put(state, NamedSharding(mesh, P())), batches)
    assert int(new_state.step) == 3
    chex.assert_tree_all_finite((new_state.teams["generator"].params, new_state.teams["discriminator"].params,
                                 metrics))
    for leaf in jax.tree.leaves((new_state.teams["generator"], new_state.teams["discriminator"], metrics)):
        shards = [np.asarray(s.data) for s in leaf.addressable_shards]
        assert len(shards) == 8
        for s in shards[1:]:
            np.testing.assert_array_equal(s, shards[0])
    assert not np.allclose(new_state.teams["generator"].params["generator"]["Dense_0"]["kernel"],
                           state.teams["generator"].params["generator"]["Dense_0"]["kernel"])


def _dcgan_game(bn_axis_name=None):
    # The smallest DCGAN pair: 28 px, width 8, batch norm in both networks.
    return adversarial_game(
        generator=DCGANGenerator(resolution=28, channels=1, width=8, bn_axis_name=bn_axis_name),
        discriminator=DCGANDiscriminator(resolution=28, width=8, normalization="batch",
                                         bn_axis_name=bn_axis_name),
        latent_dim=8, loss_type="non_saturating", generator_optimizer=optax.sgd(0.01),
        discriminator_optimizer=optax.sgd(0.01))


def test_dcgan_with_batch_norm_under_shard_map():
    """The DCGAN pair with batch norm averaging its statistics over the mapped axis runs
    under shard_map, and every device ends with the same parameters and statistics."""
    mesh = jax.make_mesh((8,), ("data",))
    images = np.random.default_rng(9).uniform(-1, 1, size=(2, 16, 28, 28, 1)).astype(np.float32)
    batches = [jax.device_put({"image": x}, NamedSharding(mesh, P("data"))) for x in images]
    game = _dcgan_game(bn_axis_name="data")
    state = _filled_state(game, batches[0], seed=7)
    assert state.teams["generator"].collections["generator"]["batch_stats"]
    assert state.teams["discriminator"].collections["discriminator"]["batch_stats"]
    mapped = jax.jit(jax.shard_map(steps.make_step(game, axis_name="data"), mesh=mesh,
                                   in_specs=(P(), P("data")), out_specs=(P(), P())))
    new_state, metrics = _run(mapped, jax.device_put(state, NamedSharding(mesh, P())),
                              batches)
    assert int(new_state.step) == 2
    chex.assert_tree_all_finite((new_state.teams["generator"], new_state.teams["discriminator"], metrics))
    for leaf in jax.tree.leaves((new_state.teams["generator"], new_state.teams["discriminator"], metrics)):
        shards = [np.asarray(s.data) for s in leaf.addressable_shards]
        for s in shards[1:]:
            np.testing.assert_array_equal(s, shards[0])
    for team in ("generator", "discriminator"):
        before = jax.tree.leaves(state.teams[team].collections)
        after = jax.tree.leaves(new_state.teams[team].collections)
        assert any(not np.allclose(a, b) for a, b in zip(after, before)), team
