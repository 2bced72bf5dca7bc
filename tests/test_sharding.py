"""Data-parallel layout of the examples a step draws itself (`jgan.sharding`)."""
from __future__ import annotations

import functools
import importlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from jgan.core import game as game_module
from jgan.families import adversarial_game
from jgan.models import MLPDiscriminator, MLPGenerator
from jgan.sharding import data_mesh, on_mesh, place_on_mesh, shard_examples
from jgan.core.steps import make_step
from jgan.train import builders, trainer


def _auto_mesh(n=8):
    return Mesh(np.array(jax.devices()[:n]), ("data",))


def _draw(key):
    # Per-example arrays as a loss draws them from a replicated key, and a scalar.
    return shard_examples({"z": jax.random.normal(key, (16, 3)),
                           "odd": jax.random.normal(key, (5, 3)),
                           "scale": jnp.float32(2.0)})


def test_shard_examples_without_a_mesh_returns_its_input():
    tree = {"z": jnp.ones((16, 3)), "n": 3}
    out = shard_examples(tree)
    assert out["z"] is tree["z"] and out["n"] == 3
    with jax.set_mesh(_auto_mesh()):  # a mesh without the axis
        assert shard_examples(tree, axis_name="model")["z"] is tree["z"]


@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit])
def test_shard_examples_splits_the_leading_axis_over_the_context_mesh(axis_type):
    mesh = jax.make_mesh((8,), ("data",), axis_types=(axis_type,))
    key = jax.random.key(0)
    with jax.set_mesh(mesh):
        out = jax.jit(_draw)(key)
    assert out["z"].sharding.is_equivalent_to(NamedSharding(mesh, P("data")), 2)
    assert len({s.device for s in out["z"].addressable_shards}) == 8
    assert all(s.data.shape == (2, 3) for s in out["z"].addressable_shards)
    # 5 examples do not split over 8 devices, a scalar has no example axis.
    assert out["odd"].sharding.is_fully_replicated
    assert out["scale"].sharding.is_fully_replicated
    # The layout changes, the values do not (threefry draws are partitionable).
    chex.assert_trees_all_equal(jax.device_get(out), jax.device_get(jax.jit(_draw)(key)))


def test_shard_examples_leaves_a_manual_axis_alone():
    """Inside shard_map the axis is manual: each device already holds its examples."""
    mesh = _auto_mesh()
    x = jax.device_put(jnp.arange(32.0).reshape(16, 2), NamedSharding(mesh, P("data")))
    with jax.set_mesh(mesh):
        out = jax.jit(jax.shard_map(lambda v: shard_examples(v) * 2, mesh=mesh,
                                    in_specs=P("data"), out_specs=P("data")))(x)
    np.testing.assert_array_equal(out, np.arange(32.0).reshape(16, 2) * 2)


def test_on_mesh_sets_the_context_mesh_for_the_call_only():
    mesh = _auto_mesh()
    seen = []
    on_mesh(mesh, lambda: seen.append(jax.sharding.get_abstract_mesh()))()
    assert seen[0].axis_names == ("data",) and seen[0].shape["data"] == 8
    assert jax.sharding.get_abstract_mesh().empty


_CONFIGS = [("dcgan_mnist", "runlocal"), ("wgan_gp_mnist", "runlocal"),
            ("conditional", "acgan,mnist,runlocal"), ("mixture", "ring,non_saturating,runlocal"),
            # BigBiGAN's large-batch variant: batch norm over the global batch (cross-replica)
            ("bigbigan", "mnist,large_batch,runlocal")]
# Compared in losses and FLOPs only: InfoGAN's D has 64 x 1024 leaky-ReLU units after
# batch norm, and on this draw one fake's pre-activation is 4e-7, within the ~5e-6
# rounding difference of the two layouts, so its slope flips and D's update moves ~1 %.
_INFOGAN_CONFIGS = [("conditional", "infogan,mnist,runlocal"),
                    ("conditional", "infogan,mnist,augmented,runlocal")]


def _game_and_batch(module, arg, batch_size=64):
    config = importlib.import_module(f"experiments.configs.{module}").get_config(arg)
    # SGD, so that the step's parameters compare gradients: Adam's first update is about
    # lr * sign(g), which turns a gradient of float-rounding size into +-lr.
    config.optimizer.generator.name = config.optimizer.discriminator.name = "sgd"
    game = builders.build_game(config)
    rng = np.random.default_rng(0)
    if config.data.kind == "mixture":
        batch = {"image": rng.normal(size=(batch_size, 2))}
    else:
        r, c = config.data.resolution, config.data.channels
        batch = {"image": rng.uniform(-1, 1, (batch_size, r, r, c)),
                 "label": rng.integers(0, 10, batch_size)}
    batch = {k: jnp.asarray(v, jnp.int32 if k == "label" else jnp.float32)
             for k, v in batch.items()}
    step_fn = builders.build_step(config, game)
    return game, game.init(jax.random.key(1), batch), batch, step_fn


@functools.lru_cache(maxsize=None)  # two tests read each config's pair of steps
def _one_and_eight_devices(module, arg):
    """The step of a shipped config on one device and over 8 (the trainer's layout):
    `(state, (one_state, one_metrics, one_flops), (eight_state, ...))`, FLOPs per device
    by XLA's count."""
    game, state, batch, step_fn = _game_and_batch(module, arg)
    one = jax.jit(step_fn)
    one_flops = one.lower(state, batch).compile().cost_analysis()["flops"]
    mesh = _auto_mesh()
    rep, split = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    eight = jax.jit(step_fn, in_shardings=(rep, split), out_shardings=(rep, rep))
    args = (jax.device_put(state, rep), jax.device_put(batch, split))
    eight_flops = on_mesh(mesh, eight.lower)(*args).compile().cost_analysis()["flops"]
    return (state, (*one(state, batch), one_flops),
            (*on_mesh(mesh, eight)(*args), eight_flops))


@pytest.mark.parametrize("module,arg", _CONFIGS + _INFOGAN_CONFIGS)
def test_data_parallel_step_splits_the_fakes(module, arg):
    """jit over 8 devices with the mesh in context: each device does about an eighth of
    the one-device step's FLOPs. Without the constraint the generator's passes and D's
    passes over fakes stayed whole on every device (44-87 % of the FLOPs, by XLA's
    count, in these configs)."""
    _, (_, one_metrics, one_flops), (_, eight_metrics, eight_flops) = (
        _one_and_eight_devices(module, arg))
    # 1/8 of the examples' work, plus the replicated optimizer updates.
    assert eight_flops < 0.2 * one_flops, eight_flops / one_flops
    for key in ("d_loss", "g_loss"):
        np.testing.assert_allclose(eight_metrics[key], one_metrics[key], rtol=1e-4)


@pytest.mark.parametrize("module,arg", _CONFIGS)
def test_data_parallel_step_is_the_one_device_step(module, arg):
    """Splitting the fakes over devices changes where the work runs, not the step: the
    same draws, the same updates up to float rounding (batch statistics are summed in
    another order over 8 devices)."""
    state, (one_state, one_metrics, _), (eight_state, eight_metrics, _) = (
        _one_and_eight_devices(module, arg))
    for team in ("generator", "discriminator"):
        for new_one, new_eight, old in zip(jax.tree.leaves(one_state.teams[team].params),
                                           jax.tree.leaves(eight_state.teams[team].params),
                                           jax.tree.leaves(state.teams[team].params)):
            update_one, update_eight = np.asarray(new_one - old), np.asarray(new_eight - old)
            assert np.linalg.norm(update_eight - update_one) <= (
                1e-3 * np.linalg.norm(update_one) + 1e-9), team
    chex.assert_trees_all_close(jax.device_get(eight_state.teams["generator"].collections),
                                jax.device_get(one_state.teams["generator"].collections), rtol=1e-4,
                                atol=1e-6)
    chex.assert_trees_all_close(jax.device_get(eight_metrics), jax.device_get(one_metrics),
                                rtol=1e-4, atol=1e-6)


def test_trainer_traces_its_step_and_sampler_with_the_mesh_in_context(tmp_path, monkeypatch):
    """The trainer's networks see its 8-device mesh when their inputs are laid out, in
    the training step and in the sampler."""
    seen = []

    def spy(tree, *args, **kwargs):
        mesh = jax.sharding.get_abstract_mesh()
        seen.append(None if mesh.empty else dict(mesh.shape))
        return shard_examples(tree, *args, **kwargs)

    monkeypatch.setattr(game_module, "shard_examples", spy)
    config = importlib.import_module("experiments.configs.mixture").get_config(
        "ring,non_saturating,runlocal")
    config.num_steps = 20
    trainer.train_and_evaluate(config, tmp_path)
    assert seen and all(mesh == {"data": 8} for mesh in seen), seen


def test_data_mesh_is_the_trainers_one_axis_mesh():
    mesh = data_mesh()
    assert mesh.axis_names == ("data",) and dict(mesh.shape) == {"data": 8}
    assert list(mesh.devices) == jax.devices()
    assert mesh.axis_types == Mesh(np.array(jax.devices()), ("data",)).axis_types
    assert dict(data_mesh(jax.devices()[:2]).shape) == {"data": 2}


def _small_game_state_and_batch(batch_size=16):
    # SGD, so that the two layouts' parameters compare gradients (see _game_and_batch).
    game = adversarial_game(generator=MLPGenerator(hidden=(16,)),
                            discriminator=MLPDiscriminator(hidden=(16,)), latent_dim=4,
                            loss_type="non_saturating", generator_optimizer=optax.sgd(0.1),
                            discriminator_optimizer=optax.sgd(0.1), ema_decay=0.9)
    batch = {"image": jnp.asarray(np.random.default_rng(3).normal(size=(batch_size, 2)),
                                  jnp.float32)}
    return game, game.init(jax.random.key(2), batch), batch


def test_place_on_mesh_replicates_the_state_and_splits_the_batch():
    game, state, batch = _small_game_state_and_batch()
    step_fn = make_step(game, update_rule="alternating", repeats={"discriminator": 2})
    one_state, one_metrics = jax.jit(step_fn)(state, batch)

    mesh = data_mesh()
    placed_state, placed_batch = place_on_mesh(mesh, state, batch)
    image = placed_batch["image"]
    assert image.sharding.is_equivalent_to(NamedSharding(mesh, P("data")), image.ndim)
    assert len({s.device for s in image.addressable_shards}) == 8
    assert all(s.data.shape == (2, 2) for s in image.addressable_shards)
    for leaf in jax.tree.leaves(placed_state):
        assert leaf.sharding.is_fully_replicated and len(leaf.devices()) == 8, leaf.sharding
    chex.assert_trees_all_equal(jax.device_get(placed_batch), jax.device_get(batch))

    with jax.set_mesh(mesh):
        eight_state, eight_metrics = jax.jit(step_fn)(placed_state, placed_batch)
    assert len(eight_state.teams["generator"].params["generator"]["Dense_0"]["kernel"].devices()) == 8
    comparable = lambda s: jax.device_get(s.replace(rng=jax.random.key_data(s.rng)))
    chex.assert_trees_all_close(comparable(eight_state), comparable(one_state),
                                rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(jax.device_get(eight_metrics), jax.device_get(one_metrics),
                                rtol=1e-5, atol=1e-6)


def test_place_on_mesh_names_the_leaf_that_does_not_split():
    _, state, batch = _small_game_state_and_batch(batch_size=12)
    batch = {"image": batch["image"], "label": jnp.zeros((16,), jnp.int32)}
    with pytest.raises(ValueError, match=r"batch\['image'\]: leading size 12 does not split "
                                         r"over the 8 devices of mesh axis 'data'"):
        place_on_mesh(data_mesh(), state, batch)
    with pytest.raises(ValueError, match=r"batch\['step'\]: leading size none \(a scalar\)"):
        place_on_mesh(data_mesh(), state, {"image": jnp.zeros((16, 2)), "step": 3})
    # Twelve examples split over four devices.
    _, placed = place_on_mesh(data_mesh(jax.devices()[:4]), state, {"image": batch["image"]})
    assert all(s.data.shape == (3, 2) for s in placed["image"].addressable_shards)
    with pytest.raises(ValueError, match=r"mesh has axes \('batch',\)"):
        place_on_mesh(Mesh(np.array(jax.devices()), ("batch",)), state, batch)
