"""The examples under examples/ run, on the 8 host devices of tests/conftest.py."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import chex
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from jgan.data import ring
from jgan.sharding import data_mesh, place_on_mesh

_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    # examples/ is not a package (and not shipped): import the script by its path.
    spec = importlib.util.spec_from_file_location(f"examples_{name}", _EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


own_loop = _load("own_loop")


def _game_state_and_batch(batch_size=64):
    game = own_loop.build_game(hidden=(32, 32))
    batch = {"x": ring().sample(jax.random.key(5), batch_size)}
    return game, jax.jit(game.init)(jax.random.key(4), batch), batch


def test_own_loop_trains_on_the_mesh(capsys):
    # Through the command line, as a user runs it. The step is wrapped in
    # chex.assert_max_traces(n=1): a second trace would raise here.
    results = own_loop.main(["--num_steps=30", "--batch_size=64", "--seed=1"])
    for key in ("d_loss", "g_loss", "r1"):
        assert np.isfinite(results[key]), (key, results[key])
    assert [entry["step"] for entry in results["history"]] == [30]
    assert 0 <= results["modes"] <= 8 and 0.0 <= results["high_quality"] <= 1.0
    assert sum(results["mode_counts"]) == round(2500 * results["high_quality"])
    # The batch of 64 was split over the 8 devices, 8 examples each.
    assert results["num_devices"] == 8
    assert results["batch_shard_shapes"] == [(8, 2)] * 8
    assert '"modes"' in capsys.readouterr().out


def test_own_loop_step_on_the_mesh_is_the_one_device_step():
    """The example's layout splits the work, not the step: two steps over the 8 devices
    are the one-device steps up to float rounding; and its step raises when traced
    again."""
    game, state, batch = _game_state_and_batch()
    one_step = jax.jit(own_loop.jgan.make_step(game))
    one_state, one_metrics = one_step(state, batch)
    one_state, _ = one_step(one_state, batch)

    mesh = data_mesh()
    placed_state, placed_batch = place_on_mesh(mesh, state, batch)
    assert placed_batch["x"].sharding.is_equivalent_to(NamedSharding(mesh, P("data")), 2)
    assert all(s.data.shape == (8, 2) for s in placed_batch["x"].addressable_shards)
    step = own_loop.make_train_step(game)
    with jax.set_mesh(mesh):
        eight_state, eight_metrics = step(placed_state, placed_batch)
        # The step's replicated output goes back in without a new trace.
        eight_state, _ = step(*place_on_mesh(mesh, eight_state, batch))
        # Another batch size is another trace: chex.assert_max_traces(n=1) refuses it.
        with pytest.raises(AssertionError, match="traced > 1 times"):
            step(eight_state, {"x": batch["x"][:32]})
    kernel = eight_state.teams["generator"].params["generator"]["Dense_0"]["kernel"]
    assert kernel.sharding.is_fully_replicated and len(kernel.devices()) == 8
    comparable = lambda s: jax.device_get(s.replace(rng=jax.random.key_data(s.rng)))
    chex.assert_trees_all_close(comparable(eight_state), comparable(one_state),
                                rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(jax.device_get(eight_metrics), jax.device_get(one_metrics),
                                rtol=1e-5, atol=1e-6)
