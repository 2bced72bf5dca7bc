"""FSDP-style sharded state on a (data, model) mesh (`jgan.state_sharding`): where the
arrays live, that the step is the one-device step, and runs that train and resume on it."""
from __future__ import annotations

import functools

import chex
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from helpers import load_config, require_shared_tfds
from jgan.errors import ConfigError
from jgan.runs.load import load_run
from jgan.sharding import MODEL_AXIS, on_mesh
from jgan.state_sharding import fsdp_spec, mesh_from_config, sharded_fraction, state_shardings
from jgan.train import builders, trainer
from jgan.train.setup import DataParallel

MIN_SIZE = 64  # the runlocal DCGAN's kernels are small: shard all but the biases


@pytest.mark.parametrize("shape,expected", [
    ((3, 3, 16, 32), P(None, None, None, MODEL_AXIS)),   # largest dimension
    ((128, 64), P(MODEL_AXIS)),
    ((64, 64), P(None, MODEL_AXIS)),                      # ties: the last (output features)
    ((4, 4, 3, 5), P(None, MODEL_AXIS)),                  # only dimensions 2 divides
    ((3, 5, 7), P()),                                     # none divides
    ((32,), P()),                                         # below min_size
    ((), P()),
])
def test_fsdp_spec_splits_the_largest_dimension_the_axis_divides(shape, expected):
    assert fsdp_spec(shape, 2, min_size=MIN_SIZE) == expected


def test_fsdp_spec_replicates_everything_on_an_axis_of_one():
    assert fsdp_spec((1024, 1024), 1, min_size=0) == P()


def _config(model=2):
    config = load_config("dcgan_mnist")
    config.mesh.model = model
    config.mesh.min_shard_size = MIN_SIZE
    # SGD: the updates compare gradients (Adam's first step is about lr * sign(g)).
    config.optimizer.generator.name = config.optimizer.discriminator.name = "sgd"
    return config


@functools.lru_cache(maxsize=None)
def _steps():
    """The runlocal DCGAN's step on one device and on a (4, 2) mesh with sharded state:
    (state, one-device result, mesh result, the shardings, the two compiled steps)."""
    config = _config()
    game = builders.build_game(config)
    rng = np.random.default_rng(0)
    batch = {"image": rng.uniform(-1, 1, (16, 28, 28, 1)).astype(np.float32),
             "label": rng.integers(0, 10, 16).astype(np.int32)}
    state = jax.jit(game.init)(jax.random.key(1), batch)
    step_fn = builders.build_step(config, game)
    one = jax.jit(step_fn)
    layout = DataParallel.over_all_devices(config, ("batch_size",))
    shardings = layout.state_shardings(state)
    sharded = jax.jit(step_fn, in_shardings=(shardings, layout.data),
                      out_shardings=(shardings, layout.replicated))
    args = (jax.device_put(state, shardings), jax.device_put(batch, layout.data))
    replicated = jax.jit(step_fn, in_shardings=(layout.replicated, layout.data),
                         out_shardings=(layout.replicated, layout.replicated))
    compiled = {"sharded": on_mesh(layout.mesh, sharded.lower)(*args).compile(),
                "replicated": on_mesh(layout.mesh, replicated.lower)(
                    jax.device_put(state, layout.replicated), args[1]).compile()}
    return (state, one(state, batch), on_mesh(layout.mesh, sharded)(*args), shardings,
            layout, compiled)


def test_the_config_makes_a_data_by_model_mesh():
    mesh = mesh_from_config(_config())
    assert mesh.axis_names == ("data", MODEL_AXIS) and mesh.devices.shape == (4, 2)
    with pytest.raises(ConfigError, match="mesh.model: 3 does not divide the 8 devices"):
        mesh_from_config(_config(model=3))


def test_kernels_and_their_optimizer_state_are_split_over_the_model_axis():
    state, _, (new_state, _), shardings, layout, _ = _steps()
    assert sharded_fraction(state, shardings) > 0.9
    for team in ("generator", "discriminator"):
        for leaf in jax.tree.leaves(new_state.teams[team].params):
            if leaf.size >= MIN_SIZE and any(d % 2 == 0 for d in leaf.shape):
                assert MODEL_AXIS in leaf.sharding.spec, (leaf.shape, leaf.sharding)
                # each device holds half of the array
                assert leaf.addressable_shards[0].data.size == leaf.size // 2
    chex.assert_trees_all_equal_structs(new_state, state)


def test_the_sharded_step_is_the_one_device_step():
    state, (one_state, one_metrics), (mesh_state, mesh_metrics), *_ = _steps()
    for team in ("generator", "discriminator"):
        for new_one, new_mesh, old in zip(jax.tree.leaves(one_state.teams[team].params),
                                          jax.tree.leaves(mesh_state.teams[team].params),
                                          jax.tree.leaves(state.teams[team].params)):
            update_one = np.asarray(new_one) - np.asarray(old)
            update_mesh = np.asarray(new_mesh) - np.asarray(old)
            assert np.linalg.norm(update_mesh - update_one) <= (
                1e-3 * np.linalg.norm(update_one) + 1e-9), team
    chex.assert_trees_all_close(jax.device_get(mesh_metrics), jax.device_get(one_metrics),
                                rtol=1e-4, atol=1e-6)


def test_sharding_the_state_shrinks_what_each_device_holds():
    """XLA's memory analysis of the compiled step: the state's arguments per device drop
    by about half of the sharded share (the model axis has 2 devices)."""
    state, *_, compiled = _steps()
    state_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
    sharded = compiled["sharded"].memory_analysis().argument_size_in_bytes
    replicated = compiled["replicated"].memory_analysis().argument_size_in_bytes
    assert replicated - sharded > 0.4 * state_bytes, (replicated, sharded, state_bytes)


def test_a_run_on_a_sharded_state_trains_and_resumes_on_another_layout(tmp_path):
    """Trained on the (4, 2) mesh with sharded state, the run is the data-parallel one;
    saved sharded at step 2, it resumes replicated and ends where the others do."""
    data_dir = require_shared_tfds()
    ends = {}
    for name, models in (("replicated", (1,)), ("sharded", (2,)), ("moved", (2, 1))):
        for i, model in enumerate(models):
            config = _config(model)
            config.data.data_dir = data_dir
            config.num_steps = 2 if i < len(models) - 1 else 4
            trainer.train_and_evaluate(config, tmp_path / name)
        ends[name] = load_run(tmp_path / name)[-1]
    for name in ("sharded", "moved"):
        chex.assert_trees_all_close(jax.device_get(ends[name].teams),
                                    jax.device_get(ends["replicated"].teams), rtol=1e-4,
                                    atol=1e-6)


def _temporaries(batch_size=64):
    """XLA's temporaries per device of the runlocal large-batch BigBiGAN's step on the
    (4, 2) mesh, with the state sharded and replicated; and its params' bytes."""
    config = load_config("bigbigan", "mnist,large_batch,runlocal")
    config.mesh.model, config.mesh.min_shard_size = 2, MIN_SIZE
    config.batch_size = batch_size
    game = builders.build_game(config)
    batch = {"image": jax.ShapeDtypeStruct((batch_size, 32, 32, 1), np.float32),
             "label": jax.ShapeDtypeStruct((batch_size,), np.int32)}
    state = jax.eval_shape(game.init, jax.random.key(1), batch)
    layout = DataParallel.over_all_devices(config, ())
    step_fn = builders.build_step(config, game)
    temps = {}
    for name, shardings in (("sharded", layout.state_shardings(state)),
                            ("replicated", layout.replicated)):
        step = jax.jit(step_fn, in_shardings=(shardings, layout.data),
                       out_shardings=(shardings, layout.replicated))
        compiled = on_mesh(layout.mesh, step.lower)(state, batch).compile()
        temps[name] = compiled.memory_analysis().temp_size_in_bytes
    params = sum(x.size * 4 for team in state.teams.values()
                 for x in jax.tree.leaves(team.params))
    return temps, params


def test_sharded_weights_are_gathered_so_activations_stay_split_by_examples():
    """FSDP gathers a network's weights where it runs (`jgan.sharding.gathered`): beyond
    the replicated step's temporaries a device holds at most the gathered weights and
    their whole gradients. Used as they lie, sharded kernels let XLA split some layers
    by features and gather whole-batch activations instead (here 0.92 MB more
    temporaries, 20 times the params; a large-batch BigBiGAN step of the full networks
    on a (2, 8) mesh: 3.3 GB against 1.2 GB)."""
    temps, params = _temporaries()
    assert temps["sharded"] <= temps["replicated"] + 2 * params, (temps, params)
