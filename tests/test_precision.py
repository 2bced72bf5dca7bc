"""Mixed precision per network (jgan.precision): bfloat16 / float16 compute with float32
parameters, optimizer state, collections, losses and penalties; float16 loss scaling;
the config keys `precision.*`."""
from __future__ import annotations

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgan import precision
from jgan.core.game import Game, Team
from jgan.core.step_parts import team_gradients
from jgan.core.steps import make_step
from jgan.errors import ConfigError
from jgan.precision import LossScale, LossScaleState, Policy
from jgan.train import builders
from tests.helpers import load_config

BF16, F32 = np.dtype(jnp.bfloat16), np.dtype(jnp.float32)


def _dcgan_config(compute_dtype="float32", networks="", sgd=False):
    config = load_config("dcgan_mnist", "runlocal")
    config.precision.compute_dtype = compute_dtype
    config.precision.networks = networks
    if sgd:
        for team in config.optimizer.values():
            team.name = "sgd"
            team.learning_rate = 0.01
    builders.validate(config)
    return config


def _image_batch(config, seed=0):
    rng = np.random.default_rng(seed)
    shape = (config.batch_size, config.data.resolution, config.data.resolution,
             config.data.channels)
    return {"image": jnp.asarray(rng.uniform(-1, 1, shape), jnp.float32),
            "label": jnp.zeros((config.batch_size,), jnp.int32)}


def _game_state_step(config, batch):
    game = builders.build_game(config)
    state = game.init(jax.random.key(0), batch)
    return game, state, builders.build_step(config, game)


# --- the policy ------------------------------------------------------------------------


def test_policy_casts_floating_leaves_only():
    policy = Policy.from_name("bfloat16")
    tree = {"w": jnp.ones((2, 3)), "n": jnp.arange(3), "key": jax.random.key(0),
            "flag": jnp.array(True), "lr": 0.5, "none": None}
    cast = policy.cast_to_compute(tree)
    assert cast["w"].dtype == BF16 and cast["w"].shape == (2, 3)
    assert cast["n"].dtype == jnp.int32 and cast["flag"].dtype == jnp.bool_
    assert cast["key"] is tree["key"] and cast["lr"] == 0.5 and cast["none"] is None
    back = policy.cast_to_output(cast)
    assert back["w"].dtype == F32 and back["n"].dtype == jnp.int32
    assert policy.param_dtype == F32 and policy.output_dtype == F32 and policy.casts
    assert not Policy.from_name("float32").casts


def test_a_bad_dtype_name_is_named():
    with pytest.raises(ValueError, match="'float8'"):
        Policy.from_name("float8")


def test_a_policy_for_a_network_the_game_lacks_is_refused():
    game = builders.build_game(_dcgan_config())
    with pytest.raises(ValueError, match=r"\['critic'\].*discriminator.*generator"):
        Game(teams=game.teams, example_inputs=game.example_inputs,
             precision={"critic": Policy.from_name("bfloat16")})


def test_float32_default_changes_nothing():
    game = builders.build_game(_dcgan_config())
    assert game.precision == {}
    assert not any(isinstance(t.optimizer, precision.LossScaledTransformation)
                   for t in game.teams.values())


# --- bfloat16 against float32 -----------------------------------------------------------


def _relative(a, b) -> float:
    diff = optax.tree.norm(jax.tree.map(lambda x, y: x - y, a, b))
    return float(diff / optax.tree.norm(b))


def _blobs(config, seed=0):
    """Real images a discriminator tells from the generator's first noise: one Gaussian
    blob each (uniform noise as "real" data would make the real and fake halves of D's
    gradient nearly cancel, and any rounding look large against their difference)."""
    rng = np.random.default_rng(seed)
    n, r = config.batch_size, config.data.resolution
    yy, xx = np.mgrid[:r, :r]
    cy, cx = rng.uniform(8, r - 8, (2, n, 1, 1))
    images = 2 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0) - 1
    return {"image": jnp.asarray(images[..., None], jnp.float32),
            "label": jnp.zeros((n,), jnp.int32)}


def _updates(new, old, team):
    return jax.tree.map(lambda a, b: a - b, new.teams[team].params, old.teams[team].params)


def test_a_bf16_step_is_close_to_the_fp32_step():
    """The DCGAN runlocal config (batch norm, batch 8), SGD (an update is -lr times the
    gradient, so its error is the gradient's), simultaneous updates (both gradients at
    the same point: the generator's does not also inherit the change of the
    discriminator's update), the same state, batch and keys.

    Tolerances. bfloat16 keeps 8 significant bits (relative rounding up to 2^-9 = 0.2 %
    per value). The losses agree to 0.1 %. The gradients of this tiny network are far
    more sensitive than its losses: merely storing the float32 weights rounded to
    bfloat16 (compute still float32; `baseline`) moves D's update by 1-1.5 % and G's by
    7 % (G's batch norm over 8 examples); bfloat16 compute moves them by 2.5 % and 10 %
    (measured over 3 seeds). The bound 5 % + 1.5 x baseline (D about 7 %, G 15 %) holds
    that with room, while a gradient off by a factor (a loss scale not undone) or
    computed from the wrong outputs would be off by 100 % or more. The dtypes of every
    layer are `test_every_layer_of_the_step_computes_in_its_networks_dtype`'s."""
    config32 = _dcgan_config(sgd=True)
    config16 = _dcgan_config("bfloat16", sgd=True)
    for config in (config32, config16):
        config.game.update_rule = "simultaneous"
    batch = _blobs(config32)
    _, state, step32 = _game_state_step(config32, batch)
    _, _, step16 = _game_state_step(config16, batch)
    step32 = jax.jit(step32)
    new32, m32 = step32(state, batch)
    new16, m16 = jax.jit(step16)(state, batch)
    rounded = state.replace(teams={name: team.replace(params=jax.tree.map(
        lambda x: x.astype(jnp.bfloat16).astype(jnp.float32), team.params))
        for name, team in state.teams.items()})
    new_rounded, _ = step32(rounded, batch)
    for key in ("d_loss", "g_loss"):
        assert m16[key].dtype == F32
        assert float(m16[key]) == pytest.approx(float(m32[key]), rel=1e-3), key
    for team in ("discriminator", "generator"):
        reference = _updates(new32, state, team)
        baseline = _relative(_updates(new_rounded, rounded, team), reference)
        error = _relative(_updates(new16, state, team), reference)
        assert error < 0.05 + 1.5 * baseline, (team, error, baseline)
    # The generator's batch statistics, updated from bfloat16 activations in float32.
    stats32 = new32.teams["generator"].collections
    stats16 = new16.teams["generator"].collections
    assert _relative(stats16, stats32) < 0.01


# --- the policy reaches every layer -------------------------------------------------------


def _network_of(name_stack: str) -> str:
    """'transpose(jvp(generator))/DCGANGenerator/up0' -> 'generator'."""
    first = name_stack.split("/")[0]
    while (m := re.fullmatch(r"\w+\((.*)\)", first)):
        first = m.group(1)
    return first


def _products(jaxpr, prefix=""):
    """Every conv_general_dilated and dot_general equation, sub-jaxprs (pjit, custom_vjp,
    scan, cond, remat) included: `(name stack, primitive, operand dtypes, shapes)`."""
    out = []
    for eqn in jaxpr.eqns:
        stack = "/".join(s for s in (prefix, str(eqn.source_info.name_stack)) if s)
        if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
            out.append((stack, eqn.primitive.name,
                        tuple(np.dtype(v.aval.dtype) for v in eqn.invars),
                        tuple(v.aval.shape for v in eqn.invars)))
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else (param,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    out += _products(sub.jaxpr, stack)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    out += _products(sub, stack)
    return out


def _step_products(config, batch):
    _, state, step = _game_state_step(config, batch)
    return _products(jax.make_jaxpr(jax.jit(step))(state, batch).jaxpr)


@pytest.mark.parametrize("networks,expected", [
    ("", {"discriminator": BF16, "generator": BF16}),
    ("discriminator=float32", {"discriminator": F32, "generator": BF16}),
    ("generator=float32", {"discriminator": BF16, "generator": F32})])
def test_every_layer_of_the_step_computes_in_its_networks_dtype(networks, expected):
    """Forward and backward passes of both teams' updates (the generator's gradient
    runs through the discriminator's backward pass too)."""
    config = _dcgan_config("bfloat16", networks)
    products = _step_products(config, _image_batch(config))
    convs = [p for p in products if p[1] == "conv_general_dilated"]
    assert len(convs) >= 8 and any(p[0].startswith("transpose") for p in products)
    seen = set()
    for stack, primitive, dtypes, _ in products:
        network = _network_of(stack)
        assert network in expected, f"{primitive} outside a network: {stack}"
        assert set(dtypes) == {expected[network]}, (stack, primitive, dtypes)
        seen.add((network, stack.startswith("transpose")))
    assert seen == {(n, t) for n in expected for t in (False, True)}


def test_spectral_norm_layers_compute_in_bf16_with_float32_power_iteration():
    """nn.SpectralNorm divides the kernel by a float32 sigma (a collection); the policy
    casts it back, so the layer runs in bfloat16, and only the power iteration over
    the float32 vectors u, v (operands with a leading axis of 1) stays float32."""
    config = load_config("mixture", "ring,hinge_sn,runlocal")
    config.precision.compute_dtype = "bfloat16"
    batch = {"image": jnp.asarray(np.random.default_rng(0).normal(size=(config.batch_size, 2)),
                                  jnp.float32)}
    products = _step_products(config, batch)
    layers = [p for p in products if "_spectral_normalize" not in p[0]]
    power = [p for p in products if "_spectral_normalize" in p[0]]
    assert layers and power
    for stack, primitive, dtypes, _ in layers:
        assert set(dtypes) == {BF16}, (stack, primitive, dtypes)
    for stack, _, dtypes, shapes in power:
        assert F32 in dtypes and any(s[0] == 1 for s in shapes), (stack, dtypes, shapes)


# --- what stays float32 --------------------------------------------------------------------


def _float_dtypes(tree):
    return {np.dtype(x.dtype) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.floating)}


def test_the_state_stays_float32_after_a_bf16_step():
    config = _dcgan_config("bfloat16")
    batch = _image_batch(config)
    _, state, step = _game_state_step(config, batch)
    new, metrics = jax.jit(step)(state, batch)
    assert new.ema, "the DCGAN config keeps EMA weights"
    assert _float_dtypes(new) == {F32}
    assert jax.tree.map(lambda x: (x.shape, x.dtype), new) == \
        jax.tree.map(lambda x: (x.shape, x.dtype), state)
    stats = new.teams["generator"].collections
    assert _float_dtypes(stats) == {F32}
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), stats,
                           state.teams["generator"].collections)
    assert all(jax.tree.leaves(changed)), "a training step updates the batch statistics"
    assert {np.dtype(m.dtype) for m in metrics.values()} == {F32}


def test_losses_and_penalties_read_float32():
    """WGAN-GP: the critic computes in bfloat16; its outputs, the gradient penalty (the
    input gradient comes back through the cast as float32) and the losses are float32."""
    config = load_config("wgan_gp_mnist", "runlocal")
    config.precision.compute_dtype = "bfloat16"
    config.game.d_steps = 1
    batch = _image_batch(config)
    game, state, step = _game_state_step(config, batch)
    nets = game.bind(state, train=True, rng=jax.random.key(1))
    assert nets("discriminator", batch["image"]).dtype == F32
    _, metrics = jax.jit(step)(state, batch)
    penalty = [k for k in metrics if "penalty" in k]
    assert penalty, sorted(metrics)
    assert {np.dtype(metrics[k].dtype) for k in metrics} == {F32}


# --- float16 and loss scaling ---------------------------------------------------------------


def _tiny_game(loss_weight, optimizer):
    """One team, one dense layer; its loss is `loss_weight` times the mean output."""
    def loss(nets, batch, rng):
        del rng
        return loss_weight * jnp.mean(nets("net", batch["x"])), {}
    team = Team(networks={"net": nn.Dense(4)}, loss=loss, optimizer=optimizer)
    return Game(teams={"fit": team}, example_inputs=lambda b: {"net": (b["x"],)})


def _tiny_batch():
    return {"x": jnp.asarray(np.random.default_rng(0).normal(size=(8, 3)), jnp.float32)}


def test_loss_scaling_keeps_a_tiny_float16_gradient():
    """The loss 1e-7 * mean(output): the gradient reaching the float16 output is
    1e-7 / 32 = 3e-9, below float16's smallest subnormal (6e-8), so it flushes to zero;
    scaled by 2^15 it is 1e-4, and the unscaled gradient matches float32's."""
    batch = _tiny_batch()
    f16 = {"net": Policy.from_name("float16")}
    base = _tiny_game(1e-7, optax.sgd(1.0))
    state = base.init(jax.random.key(0), batch)
    rng = jax.random.key(1)

    def grads(game):
        s = game.init(jax.random.key(0), batch)
        return jax.jit(lambda s: team_gradients(game, s, batch, rng, team="fit",
                                                axis_name=None).grads)(s)
    reference = grads(base)
    unscaled = grads(precision.apply_to_game(base, f16, LossScale(1.0, dynamic=False)))
    scaled = grads(precision.apply_to_game(base, f16, LossScale(2.0 ** 15, dynamic=False)))
    assert float(optax.tree.norm(reference)) > 0
    assert float(optax.tree.norm(unscaled["net"]["kernel"])) == 0.0
    assert _relative(scaled, reference) < 0.01
    assert jax.tree.map(lambda x: x.dtype, scaled) == jax.tree.map(lambda x: x.dtype,
                                                                   state.teams["fit"].params)


def test_dynamic_loss_scale_halves_and_skips_on_overflow_and_grows_after_finite_steps():
    batch = _tiny_batch()
    f16 = {"net": Policy.from_name("float16")}
    base = _tiny_game(1.0, optax.adam(0.1))
    # 2^30 / 32 at the float16 output overflows (float16's largest is 65504).
    game = precision.apply_to_game(base, f16, LossScale(2.0 ** 30, period=2))
    step = jax.jit(make_step(game))
    state = game.init(jax.random.key(0), batch)
    assert isinstance(state.teams["fit"].opt_state, LossScaleState)
    new, metrics = step(state, batch)
    opt = new.teams["fit"].opt_state
    assert float(opt.scale) == 2.0 ** 29 and int(opt.finite_steps) == 0
    assert np.isfinite(float(metrics["fit_loss"])), "the reported loss is unscaled"
    assert not np.isfinite(float(metrics["fit_grad_norm"]))
    for a, b in zip(jax.tree.leaves((new.teams["fit"].params, opt.inner_state)),
                    jax.tree.leaves((state.teams["fit"].params,
                                     state.teams["fit"].opt_state.inner_state))):
        np.testing.assert_array_equal(a, b)   # skipped: Adam's count and moments too

    game = precision.apply_to_game(base, f16, LossScale(4.0, period=2))
    state = game.init(jax.random.key(0), batch)
    step = jax.jit(make_step(game))
    once, _ = step(state, batch)
    assert float(once.teams["fit"].opt_state.scale) == 4.0
    assert int(once.teams["fit"].opt_state.finite_steps) == 1
    assert _relative(once.teams["fit"].params, state.teams["fit"].params) > 0
    twice, _ = step(once, batch)
    assert float(twice.teams["fit"].opt_state.scale) == 8.0
    assert int(twice.teams["fit"].opt_state.finite_steps) == 0


def test_a_float16_config_scales_every_teams_loss():
    config = _dcgan_config("float16", "discriminator=float32")
    config.precision.loss_scale = "1024"
    game = builders.build_game(config)
    assert set(game.precision) == {"generator"}
    batch = _image_batch(config)
    state = game.init(jax.random.key(0), batch)
    for team in ("discriminator", "generator"):
        assert float(state.teams[team].opt_state.scale) == 1024.0
    new, metrics = jax.jit(builders.build_step(config, game))(state, batch)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert _float_dtypes(new) == {F32}
    # Wrapping is idempotent: applying the config again does not nest the scaling.
    again = precision.apply_config(config, game)
    for team in ("discriminator", "generator"):
        assert again.teams[team].optimizer is game.teams[team].optimizer


# --- the config -----------------------------------------------------------------------------


@pytest.mark.parametrize("key,value,message", [
    ("compute_dtype", "float8", "precision.compute_dtype: 'float8'"),
    ("networks", "generator:bfloat16", "precision.networks: 'generator:bfloat16'"),
    ("networks", "generator=bf16", "precision.networks: 'bf16'"),
    ("loss_scale", "-1", "precision.loss_scale: '-1'"),
    ("loss_scale", "auto", "precision.loss_scale: 'auto'")])
def test_validate_names_the_bad_precision_key(key, value, message):
    config = load_config("dcgan_mnist", "runlocal")
    config.precision[key] = value
    with pytest.raises(ConfigError, match=re.escape(message)):
        builders.validate(config)


def test_an_unknown_network_name_is_a_config_error():
    config = _dcgan_config("float32", "critic=bfloat16")
    with pytest.raises(ConfigError, match=r"precision\.networks.*'critic'.*discriminator"):
        builders.build_game(config)


def test_build_stages_applies_the_policy_to_every_stage(monkeypatch):
    import dataclasses

    from jgan.core.stages import Stage
    from jgan.families import registry

    def two_stages(config):
        game = registry.get_family("gan").build_game(config)
        return (Stage("first", game, 2), Stage("second", game, config.num_steps - 2))

    monkeypatch.setitem(registry._FAMILIES, "staged_precision", dataclasses.replace(
        registry.get_family("gan"), name="staged_precision", build_stages=two_stages))
    config = _dcgan_config("float32", "generator=bfloat16")
    config.family = "staged_precision"
    stages = builders.build_stages(config)
    assert [set(s.game.precision) for s in stages] == [{"generator"}, {"generator"}]
    config.precision.networks = "critic=bfloat16"
    with pytest.raises(ConfigError, match=r"precision\.networks.*'critic'"):
        builders.build_stages(config)
