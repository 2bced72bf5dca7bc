"""Tests for the update rules beyond alternating/simultaneous and the shared options:
extragradient (jgan.core.extragradient), optimistic (jgan.core.steps.optimistic_step), Unrolled GAN
(jgan.core.unrolled), PacGAN packing (jgan.models.packing) and their config keys.

The references are written out here: the point game of tests/test_steps.py (G(z) = theta,
a linear critic, losses in closed form) updated by hand with jax.grad and explicit
optimizer formulas or optax calls.
"""
from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from experiments.configs import mixture
from jgan.core import steps
from jgan.families.adversarial import adversarial_game
from jgan.models.mlp import MLPDiscriminator
from jgan.models.packing import PackedDiscriminator, pack_samples, unpack_samples
from jgan.train import builders
from jgan.core.unrolled import unrolled_adversary
from tests.test_steps import (
    B0,
    LR_D,
    LR_G,
    THETA0,
    W0,
    LinearCritic,
    PointGenerator,
    _comparable,
    _real,
    _theta,
    _wb,
    _with_params,
    hand_d_loss,
    hand_g_loss,
)

B = 6


def point_game(generator_optimizer=None, discriminator_optimizer=None, loss_type="non_saturating",
               **kwargs):
    return adversarial_game(generator=PointGenerator(), discriminator=LinearCritic(),
                            latent_dim=3, loss_type=loss_type,
                            generator_optimizer=generator_optimizer or optax.sgd(LR_G),
                            discriminator_optimizer=discriminator_optimizer or optax.sgd(LR_D),
                            **kwargs)


def point_state(game, n=B):
    state = game.init(jax.random.key(0), {"image": jnp.zeros((n, 2))})
    return _with_params(state, THETA0, W0, B0).replace(ema={})


d_grads = jax.jit(jax.grad(hand_d_loss, argnums=(0, 1)))
g_grad = jax.jit(jax.grad(hand_g_loss))


def differs(a, b, tol=1e-3):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) > tol


# ---------------------------------------------------------------- extragradient


def test_extragradient_is_the_two_stage_update_with_sgd():
    game = point_game()
    real = _real(B, seed=11)
    new_state, metrics = jax.jit(steps.make_step(game, update_rule="extragradient"))(
        point_state(game), {"image": jnp.asarray(real)})

    gw, gb = d_grads(W0, B0, THETA0, real)                    # F(w_t)
    gt = g_grad(THETA0, W0, B0)
    w_h, b_h, t_h = W0 - LR_D * gw, B0 - LR_D * gb, THETA0 - LR_G * gt    # w_{t+1/2}
    gw2, gb2 = d_grads(w_h, b_h, t_h, real)                   # F(w_{t+1/2}) ...
    gt2 = g_grad(t_h, w_h, b_h)
    chex.assert_trees_all_close(_wb(new_state), (W0 - LR_D * gw2, B0 - LR_D * gb2),
                                rtol=1e-5, atol=1e-6)         # ... applied at w_t
    chex.assert_trees_all_close(_theta(new_state), THETA0 - LR_G * gt2, rtol=1e-5, atol=1e-6)
    assert int(new_state.step) == 1
    # Metrics are the current point's.
    chex.assert_trees_all_close((metrics["d_loss"], metrics["g_loss"]),
                                (hand_d_loss(W0, B0, THETA0, real), hand_g_loss(THETA0, W0, B0)),
                                rtol=1e-5)
    assert differs(_theta(new_state), THETA0 - LR_G * gt)     # not simultaneous GD


def test_extra_adam_advances_the_optimizer_state_through_both_stages():
    """Gidel et al.'s Extra-Adam: the moments see both gradients, the count is 2."""
    adam_g, adam_d = optax.adam(0.05, b1=0.5), optax.adam(0.1, b1=0.5)
    game = point_game(adam_g, adam_d)
    state = point_state(game)
    real = _real(B, seed=12)
    new_state, _ = jax.jit(steps.make_step(game, update_rule="extragradient"))(
        state, {"image": jnp.asarray(real)})

    d0, g0 = (jnp.asarray(W0), jnp.asarray(B0)), jnp.asarray(THETA0)
    sd, sg = adam_d.init(d0), adam_g.init(g0)
    ud, sd = adam_d.update(d_grads(*d0, g0, real), sd)
    ug, sg = adam_g.update(g_grad(g0, *d0), sg)
    d_h, g_h = optax.apply_updates(d0, ud), optax.apply_updates(g0, ug)
    ud, sd = adam_d.update(d_grads(*d_h, g_h, real), sd)
    ug, sg = adam_g.update(g_grad(g_h, *d_h), sg)
    chex.assert_trees_all_close(_wb(new_state), optax.apply_updates(d0, ud), rtol=1e-5,
                                atol=1e-6)
    chex.assert_trees_all_close(_theta(new_state), optax.apply_updates(g0, ug), rtol=1e-5,
                                atol=1e-6)
    counts = [s.count for s in jax.tree.leaves(
        new_state.teams["generator"].opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
        if isinstance(s, optax.ScaleByAdamState)]
    assert [int(c) for c in counts] == [2]


# ------------------------------------------------------------------ optimistic


def test_optimistic_is_the_ogd_formula():
    """x_{t+1} = x_t - 2 lr g_t + lr g_{t-1} for both teams, gradients at the same point;
    the first step has no g_{-1} and is plain GD (optax's convention)."""
    game = point_game(optax.optimistic_gradient_descent(LR_G),
                      optax.optimistic_gradient_descent(LR_D))
    state = point_state(game)
    real = _real(B, seed=13)
    step = jax.jit(steps.make_step(game, update_rule="optimistic"))
    theta, w, b = map(jnp.asarray, (THETA0, W0, B0))
    prev = None
    for _ in range(3):
        state, _ = step(state, {"image": jnp.asarray(real)})
        g = (g_grad(theta, w, b), *d_grads(w, b, theta, real))
        prev = g if prev is None else prev
        theta, w, b = (theta - LR_G * (2 * g[0] - prev[0]), w - LR_D * (2 * g[1] - prev[1]),
                       b - LR_D * (2 * g[2] - prev[2]))
        prev = g
        chex.assert_trees_all_close((_theta(state), *_wb(state)), (theta, w, b), rtol=1e-5,
                                    atol=1e-6)


def test_optimistic_rule_refuses_plain_optimizers():
    game = point_game()
    with pytest.raises(ValueError, match="optimistic optimizers"):
        steps.make_step(game, update_rule="optimistic")(point_state(game),
                                                        {"image": jnp.zeros((B, 2))})


def test_config_optimistic_adam_is_two_u_t_minus_u_previous():
    """Daskalakis et al.'s Optimistic Adam: 2 u_t - u_{t-1} on Adam's updates u."""
    opt = mixture.get_config("ring,minimax").optimizer.generator
    tx = builders.build_optimizer(opt, num_steps=10, optimistic=True)
    adam = optax.adam(opt.learning_rate, b1=opt.b1, b2=opt.b2)
    params = {"w": jnp.array([0.5, -1.0])}
    s, s_ref = tx.init(params), adam.init(params)
    assert steps.has_optimistic_optimizer(s) and not steps.has_optimistic_optimizer(s_ref)
    prev = None
    for g in ([0.3, -0.2], [-1.0, 0.4], [0.1, 0.1]):
        grads = {"w": jnp.array(g)}
        u, s = tx.update(grads, s, params)
        u_ref, s_ref = adam.update(grads, s_ref, params)
        prev = u_ref if prev is None else prev
        chex.assert_trees_all_close(u, jax.tree.map(lambda a, p: 2 * a - p, u_ref, prev),
                                    rtol=1e-5, atol=1e-9)
        prev = u_ref


# -------------------------------------------------------------------- unrolled


@pytest.mark.parametrize("rule", ["alternating", "simultaneous"])
def test_unroll_zero_is_the_plain_rule(rule):
    game = point_game()
    state = point_state(game)
    batch = {"image": jnp.asarray(_real(B, seed=14))}
    plain, plain_metrics = jax.jit(steps.make_step(game, update_rule=rule))(state, batch)
    zero, zero_metrics = jax.jit(steps.make_step(game, update_rule=rule, unroll_steps=0))(
        state, batch)
    chex.assert_trees_all_equal(_comparable(plain), _comparable(zero))
    chex.assert_trees_all_equal(plain_metrics, zero_metrics)
    same = unrolled_adversary(game, state, batch, jax.random.key(0), adversary="discriminator",
                              unroll_steps=0)
    chex.assert_trees_all_equal(same, state.teams["discriminator"])


@pytest.mark.parametrize("rule,d_optimizer", [("alternating", "sgd"), ("simultaneous", "adam")])
def test_unrolled_generator_gradient_goes_through_k_discriminator_updates(rule, d_optimizer):
    """theta's gradient is d/dtheta L_G(theta, D_k(theta)) with D_k after k explicit
    updates (the D optimizer's own) from the D the plain rule would face; D itself
    advances by its normal update only."""
    k = 3
    d_tx = optax.sgd(LR_D) if d_optimizer == "sgd" else optax.adam(0.1, b1=0.5)
    game = point_game(discriminator_optimizer=d_tx)
    state = point_state(game)
    real = _real(B, seed=15)
    new_state, metrics = jax.jit(steps.make_step(game, update_rule=rule, unroll_steps=k))(
        state, {"image": jnp.asarray(real)})

    d0 = (jnp.asarray(W0), jnp.asarray(B0))
    d_updated = optax.apply_updates(d0, d_tx.update(d_grads(*d0, THETA0, real),
                                                    d_tx.init(d0))[0])
    d_state = d_tx.init(d0)
    if rule == "alternating":   # G faces the updated D, with the optimizer state it left
        d_start, d_state = d_updated, d_tx.update(d_grads(*d0, THETA0, real), d_state)[1]
    else:
        d_start = d0

    def unrolled_g_loss(theta):
        d, s = d_start, d_state
        for _ in range(k):
            u, s = d_tx.update(jax.grad(hand_d_loss, argnums=(0, 1))(*d, theta, real), s)
            d = optax.apply_updates(d, u)
        return hand_g_loss(theta, *d)

    theta1 = THETA0 - LR_G * jax.jit(jax.grad(unrolled_g_loss))(jnp.asarray(THETA0))
    chex.assert_trees_all_close(_theta(new_state), theta1, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(_wb(new_state), d_updated, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(metrics["g_loss"], jax.jit(unrolled_g_loss)(THETA0), rtol=1e-5)
    plain = jax.jit(steps.make_step(game, update_rule=rule))(state, {"image": jnp.asarray(real)})
    assert differs(_theta(new_state), _theta(plain[0]), tol=1e-4)


# ---------------------------------------------------------------------- PacGAN


def test_pack_samples_layout_and_inverse():
    images = jnp.arange(6 * 2 * 2 * 3, dtype=jnp.float32).reshape(6, 2, 2, 3)
    packed = jax.jit(pack_samples, static_argnums=1)(images, 3)
    chex.assert_shape(packed, (2, 2, 2, 9))
    for i in range(2):
        for j in range(3):   # sample j of pack i holds channels 3j..3j+2
            chex.assert_trees_all_equal(packed[i, ..., 3 * j:3 * j + 3], images[3 * i + j])
    chex.assert_trees_all_equal(jax.jit(unpack_samples, static_argnums=1)(packed, 3), images)
    points = jnp.arange(8 * 2, dtype=jnp.float32).reshape(8, 2)
    chex.assert_trees_all_equal(pack_samples(points, 4)[1], points[4:].reshape(-1))
    chex.assert_trees_all_equal(pack_samples(points, 1), points)
    with pytest.raises(ValueError, match="pack=3"):
        pack_samples(points, 3)


def test_packed_discriminator_judges_packs():
    inner = MLPDiscriminator(hidden=(4,))
    packed = PackedDiscriminator(discriminator=inner, pack=2)
    x = jnp.asarray(_real(6, seed=16))
    variables = packed.init(jax.random.key(0), x)
    logits = jax.jit(packed.apply)(variables, x)
    chex.assert_shape(logits, (3,))
    direct = inner.apply({"params": variables["params"]["discriminator"]}, pack_samples(x, 2))
    chex.assert_trees_all_close(logits, direct, rtol=1e-6)
    chex.assert_shape(variables["params"]["discriminator"]["Dense_0"]["kernel"], (4, 4))
    with pytest.raises(ValueError, match="pack=2"):
        packed.apply(variables, x[:5])


def test_packed_discriminator_forwards_features_and_with_features():
    inner = MLPDiscriminator(hidden=(5, 3), spectral_norm=True)
    packed = PackedDiscriminator(discriminator=inner, pack=2)
    x = jnp.asarray(_real(6, seed=18))
    variables = packed.init(jax.random.key(0), x)
    inner_vars = {k: v["discriminator"] for k, v in variables.items()}
    packs = pack_samples(x, 2)
    features = jax.jit(lambda v, x: packed.apply(v, x, features=True))(variables, x)
    chex.assert_shape(features, (3, 3))
    chex.assert_trees_all_close(features, inner.apply(inner_vars, packs, features=True),
                                rtol=1e-6)
    # One pass in training mode: the same logits, features and spectral-norm updates as
    # the two separate calls.
    (logits, feats), updated = jax.jit(lambda v, x: packed.apply(
        v, x, train=True, with_features=True, mutable=["batch_stats"]))(variables, x)
    separate, updated_separately = packed.apply(variables, x, train=True,
                                                mutable=["batch_stats"])
    separate_features, _ = packed.apply(variables, x, train=True, features=True,
                                        mutable=["batch_stats"])
    chex.assert_trees_all_close((logits, feats), (separate, separate_features), rtol=1e-6)
    chex.assert_trees_all_close(updated, updated_separately, rtol=1e-6)
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), updated["batch_stats"],
                         variables["batch_stats"])
    assert max(jax.tree.leaves(moved)) > 0.1   # the power iteration did run


def test_feature_flags_name_a_discriminator_without_features():
    from jgan.models import calling

    class LogitsOnly(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(x)[:, 0]

    packed = PackedDiscriminator(discriminator=LogitsOnly(), pack=2)
    x = jnp.ones((4, 2))
    variables = packed.init(jax.random.key(0), x)
    chex.assert_shape(packed.apply(variables, x), (2,))
    with pytest.raises(TypeError, match="LogitsOnly takes no with_features=True"):
        packed.apply(variables, x, with_features=True)
    assert calling.train_kwargs(LogitsOnly(), True) == {}
    assert calling.train_kwargs(MLPDiscriminator(), True) == {"train": True}


def test_pacgan_wgan_gp_step_with_a_linear_critic():
    """pack=2 with the linear critic f(p) = <w, p> + b on packs p in R^4: fake packs are
    (theta, theta), real packs pairs of consecutive examples, and the gradient penalty
    of a pack is (||w|| - 1)^2."""
    lam, m = 10.0, 2
    game = point_game(loss_type="wasserstein", gradient_penalty_weight=lam, pack=m)
    state = game.init(jax.random.key(0), {"image": jnp.zeros((B, 2))})
    w0 = np.array([0.8, -0.5, 0.3, 0.2], np.float32)
    disc = {"discriminator": {"discriminator": {"Dense_0": {
        "kernel": jnp.asarray(w0).reshape(4, 1), "bias": jnp.asarray([B0])}}}}
    chex.assert_trees_all_equal_shapes(disc, state.teams["discriminator"].params)
    state = state.replace(teams={
        "discriminator": state.teams["discriminator"].replace(params=disc),
        "generator": state.teams["generator"].replace(
            params={"generator": {"theta": jnp.asarray(THETA0)}})})
    real = _real(B, seed=17)
    new_state, metrics = jax.jit(steps.make_step(game))(state, {"image": jnp.asarray(real)})

    real_packs = real.reshape(B // m, m * 2)
    fake_pack = np.tile(THETA0, m)

    def d_loss(w, b):
        return (fake_pack @ w + b) - jnp.mean(real_packs @ w + b) + lam * (
            jnp.linalg.norm(w) - 1.0) ** 2

    chex.assert_trees_all_close(metrics["gradient_penalty"],
                                np.float32((np.linalg.norm(w0) - 1) ** 2), rtol=1e-5)
    chex.assert_trees_all_close(metrics["d_loss"], d_loss(w0, B0), rtol=1e-5)
    gw, gb = jax.jit(jax.grad(d_loss, argnums=(0, 1)))(w0, B0)
    dense = new_state.teams["discriminator"].params["discriminator"]["discriminator"]["Dense_0"]
    chex.assert_trees_all_close((dense["kernel"][:, 0], dense["bias"][0]),
                                (w0 - LR_D * gw, B0 - LR_D * gb), rtol=1e-5, atol=1e-6)
    # G: L = -f((theta, theta)), so d/dtheta = -(w1[:2] + w1[2:]).
    w1 = dense["kernel"][:, 0]
    chex.assert_trees_all_close(_theta(new_state), THETA0 + LR_G * (w1[:2] + w1[2:]),
                                rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="pack=4"):
        game4 = point_game(pack=4)
        steps.make_step(game4)(game4.init(jax.random.key(0), {"image": jnp.zeros((8, 2))}),
                               {"image": jnp.zeros((B, 2))})


# --------------------------------------------------------- compile once, devices


@pytest.mark.parametrize("rule,kwargs", [
    ("extragradient", {}), ("optimistic", {}), ("alternating", {"unroll_steps": 2, "repeats": {"discriminator": 2}})])
def test_new_rules_compile_once(rule, kwargs):
    tx = optax.optimistic_gradient_descent if rule == "optimistic" else optax.sgd
    game = point_game(tx(LR_G), tx(LR_D), pack=2)
    state = game.init(jax.random.key(0), {"image": jnp.zeros((B, 2))})
    data = np.random.default_rng(18).normal(size=(4, 2 * B, 2)).astype(np.float32)
    traces = []
    step = steps.make_step(game, update_rule=rule, **kwargs)

    def counted(state, batch):
        traces.append(1)
        return step(state, batch)

    jitted = jax.jit(counted)
    for i, x in enumerate(data):
        state, metrics = jitted(state, {"image": jnp.asarray(x)})
        assert int(state.step) == i + 1
    assert len(traces) == 1 and jitted._cache_size() == 1
    chex.assert_tree_all_finite((state.teams["generator"].params, state.teams["discriminator"].params, metrics))


@pytest.mark.parametrize("rule,unroll_steps", [("extragradient", 0), ("alternating", 2)])
def test_shard_map_matches_one_device(rule, unroll_steps):
    """The point game draws no noise that matters: the data-parallel step under shard_map
    over 8 devices must equal the one-device jit step on the global batch."""
    game = point_game(optax.adam(0.05, b1=0.5), optax.adam(0.1, b1=0.5))
    state = point_state(game)
    batch = {"image": jnp.asarray(_real(16, seed=19))}
    make = lambda axis_name: steps.make_step(game, update_rule=rule, unroll_steps=unroll_steps,
                                             axis_name=axis_name)
    ref_state, ref_metrics = jax.jit(make(None))(state, batch)
    mesh = jax.make_mesh((8,), ("data",))
    mapped = jax.jit(jax.shard_map(make("data"), mesh=mesh, in_specs=(P(), P("data")),
                                   out_specs=(P(), P())))
    new_state, metrics = mapped(jax.device_put(state, NamedSharding(mesh, P())),
                                jax.device_put(batch, NamedSharding(mesh, P("data"))))
    chex.assert_trees_all_close(_comparable(new_state), _comparable(ref_state), rtol=1e-5,
                                atol=1e-6)
    chex.assert_trees_all_close(jax.device_get(metrics), jax.device_get(ref_metrics),
                                rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- configs


def test_make_step_rejects_bad_arguments():
    game = point_game()
    with pytest.raises(ValueError, match="one update per team"):
        steps.make_step(game, update_rule="extragradient", repeats={"discriminator": 2})
    with pytest.raises(ValueError, match="unroll_steps"):
        steps.make_step(game, unroll_steps=-1)
    with pytest.raises(ValueError, match="pack"):
        point_game(pack=0)


@pytest.mark.parametrize("key,value,message", [
    ("game.unroll_steps", -1, "config.game.unroll_steps"),
    ("game.pack", 0, "config.game.pack"),
    ("game.pack", 3, "config.game.pack"),        # batch_size 256 is not a multiple of 3
    ("game.d_steps", 2, "config.game.d_steps"),  # with update_rule = "extragradient"
])
def test_config_validation_names_the_new_keys(key, value, message):
    config = mixture.get_config("ring,minimax")
    config.game.update_rule = "extragradient"
    section, leaf = key.split(".")
    config[section][leaf] = value
    with pytest.raises(builders.ConfigError, match=message.replace(".", r"\.")):
        builders.validate(config)


@pytest.mark.parametrize("rule", steps.UPDATE_RULES)
def test_config_builds_a_game_for_every_rule(rule):
    config = mixture.get_config("ring,minimax,runlocal")
    config.game.update_rule, config.game.unroll_steps, config.game.pack = rule, 1, 2
    builders.validate(config)
    game = builders.build_game(config)
    batch = {"image": jnp.zeros((config.batch_size, 2))}
    state = jax.eval_shape(game.init, jax.random.key(0), batch)
    for team in ("generator", "discriminator"):
        assert steps.has_optimistic_optimizer(state.teams[team].opt_state) == (
            rule == "optimistic")
    # The packed discriminator's first layer sees pack * 2 features.
    kernel = state.teams["discriminator"].params["discriminator"]["discriminator"]["Dense_0"]["kernel"]
    assert kernel.shape[0] == 4
    assert builders.optimizer_updates_per_step(config.game) == (
        (2, 2) if rule == "extragradient" else (1, 1))


def test_configs_saved_before_the_new_keys_still_build_and_resume(tmp_path):
    """A run's config.json written before the keys of KEYS_ADDED_LATER existed (game.pack,
    family, data.on_device, ...) rebuilds the same game (jgan.runs.load_run) and
    resumes under today's config."""
    import json

    from jgan.saved_configs import upgrade_config
    from jgan.train import trainer

    config = mixture.get_config("ring,minimax,runlocal")
    old = json.loads(config.to_json_best_effort())
    for key in builders.KEYS_ADDED_LATER:
        *section, leaf = key.split(".")
        (old[section[0]] if section else old).pop(leaf, None)  # a moved key is elsewhere
    game = builders.build_game(upgrade_config(old))
    batch = {"image": jnp.zeros((config.batch_size, 2))}
    chex.assert_trees_all_equal_shapes(jax.eval_shape(game.init, jax.random.key(0), batch),
                                       jax.eval_shape(builders.build_game(config).init,
                                                      jax.random.key(0), batch))
    (tmp_path / "config.json").write_text(json.dumps(old))
    # EMA warm-up became the default after such runs: today's config names the key,
    # and the old value resumes them.
    with pytest.raises(builders.ConfigError, match=r"game\.ema_warmup \(False -> True\)"):
        trainer._check_resumable(config, tmp_path)
    config.game.ema_warmup = False
    trainer._check_resumable(config, tmp_path)          # raises if any key differs
    config.game.pack = 2
    with pytest.raises(builders.ConfigError, match="game.pack"):
        trainer._check_resumable(config, tmp_path)



def test_configs_saved_before_family_sections_resume_with_their_keys_moved(tmp_path):
    """InfoGAN's keys were `game.*` and `model.*` before `config.infogan` existed: a run
    saved then resumes under today's config, and a section compares key by key."""
    import json

    from experiments.configs import conditional
    from jgan.saved_configs import MOVED_KEYS
    from jgan.train import trainer

    config = conditional.get_config("infogan,mnist,augmented,runlocal")
    old = json.loads(config.to_json_best_effort())
    for old_key, new_key in MOVED_KEYS.items():
        section, leaf = new_key.split(".")
        if section == "infogan":
            old_section, old_leaf = old_key.split(".")
            old[old_section][old_leaf] = old["infogan"][leaf]
    del old["infogan"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    trainer._check_resumable(config, tmp_path)          # raises if any key differs
    config.infogan.info_augmentation.max_rotation = 30.0
    with pytest.raises(builders.ConfigError,
                       match=r"these keys differ: infogan\.info_augmentation\.max_rotation "
                             r"\(15\.0 -> 30\.0\)\. "):
        trainer._check_resumable(config, tmp_path)
