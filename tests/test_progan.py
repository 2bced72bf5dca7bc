"""Progressive growing (`jgan.families.progan`): stages by resolution, the fade, the
stage's reals, and exact resume at any step, mid-fade included."""
from __future__ import annotations

import json
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jgan.checkpoints import RunCheckpoints
from jgan.errors import ConfigError
from jgan.families import progan
from jgan.models.progressive import downscale2d, upscale2d
from jgan.runs.load import load_run
from jgan.train import builders, trainer
from tests.helpers import load_config, require_shared_tfds

KILLED_AT = 5   # the second stage (8 px) starts at 4 and fades over steps 4..6


def test_alpha_rises_linearly_over_the_fade_then_stays_at_one():
    alpha = jax.jit(lambda step: progan.fade_alpha(step, start=100, fade_steps=50))
    got = [float(alpha(jnp.int32(s))) for s in (100, 110, 125, 150, 180)]
    np.testing.assert_allclose(got, [0.0, 0.2, 0.5, 1.0, 1.0])
    assert float(progan.fade_alpha(jnp.int32(3), start=0, fade_steps=0)) == 1.0


def test_stage_reals_are_pooled_and_faded_like_the_reference():
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 16, 16, 3), minval=-1, maxval=1)
    reals = jax.jit(progan.stage_reals, static_argnames=("level", "num_levels"))
    low = downscale2d(downscale2d(x))            # 4 px: level 0 of a 16-px run
    chex.assert_trees_all_close(reals(x, level=0, num_levels=3, alpha=0.3), low, atol=1e-6)
    mid = downscale2d(x)                          # 8 px: level 1
    chex.assert_trees_all_close(reals(x, level=1, num_levels=3, alpha=1.0), mid, atol=1e-6)
    chex.assert_trees_all_close(reals(x, level=1, num_levels=3, alpha=0.0),
                                upscale2d(low), atol=1e-6)
    chex.assert_trees_all_close(reals(x, level=2, num_levels=3, alpha=0.25),
                                0.25 * x + 0.75 * upscale2d(mid), atol=1e-6)


def test_the_config_checks_name_their_key():
    config = load_config("progan")
    config.num_steps += 1
    with pytest.raises(ConfigError, match=r"num_steps.*2 stages"):
        builders.validate(config)
    config = load_config("progan")
    config.data.resolution = 12
    with pytest.raises(ConfigError, match=r"data\.resolution"):
        builders.validate(config)
    with pytest.raises(ValueError, match="progan.py takes"):
        load_config("progan", "cifar10")


def test_every_stage_is_a_resolution_with_one_parameter_tree():
    config = load_config("progan", "fashion_mnist")
    stages = builders.build_stages(config)
    assert [s.name for s in stages] == ["4px", "8px", "16px", "32px"]
    assert sum(s.num_steps for s in stages) == config.num_steps == 4 * 2_000
    batch = {"image": jnp.zeros((4, 32, 32, 1)), "label": jnp.zeros((4,), jnp.int32)}
    shapes = [jax.eval_shape(s.game.init, jax.random.PRNGKey(0), batch) for s in stages]
    for other in shapes[1:]:
        assert jax.tree.structure(other.teams) == jax.tree.structure(shapes[0].teams)
        chex.assert_trees_all_equal_shapes(other.teams, shapes[0].teams)


def test_without_growing_one_stage_trains_the_top_level_from_the_start(tmp_path):
    config = load_config("progan", "runlocal")
    config.data.data_dir = require_shared_tfds()
    config.progan.grow, config.num_steps = False, 3
    builders.validate(config)
    grown = load_config("progan", "runlocal")
    stages, grown_stages = builders.build_stages(config), builders.build_stages(grown)
    assert [(s.name, s.num_steps) for s in stages] == [("8px", 3)]
    batch = {"image": jnp.zeros((8, 8, 8, 1)), "label": jnp.zeros((8,), jnp.int32)}
    shape = jax.eval_shape(stages[0].game.init, jax.random.PRNGKey(0), batch)
    chex.assert_trees_all_equal_shapes(
        shape.teams, jax.eval_shape(grown_stages[-1].game.init, jax.random.PRNGKey(0),
                                    batch).teams)
    result = trainer.train_and_evaluate(config, tmp_path)
    assert result["final_metrics"]["d_alpha"] == 1.0   # no fade: the top level alone
    _, game, state = load_run(tmp_path)
    assert game.apply(state, "generator", jnp.zeros((2, config.progan.latent_dim))).shape == (
        2, 8, 8, 1)


class _Killed(Exception):
    """Stands for SIGKILL right after a checkpoint."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The runlocal run (8 px: stages 4 px and 8 px of 4 steps each) straight through,
    and killed right after its checkpoint at step KILLED_AT (mid-fade), then rerun."""
    config = load_config("progan", "runlocal")
    config.data.data_dir = require_shared_tfds()
    config.checkpoint_every = 1
    root = tmp_path_factory.mktemp("progan")
    trainer.train_and_evaluate(config, root / "straight")
    save = RunCheckpoints.save

    def save_then_die(self, step, *args, **kwargs):
        save(self, step, *args, **kwargs)
        if step == KILLED_AT:
            self.close()
            raise _Killed
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(RunCheckpoints, "save", save_then_die)
        with pytest.raises(_Killed):
            trainer.train_and_evaluate(config, root / "resumed")
    shutil.copytree(root / "resumed", root / "killed")
    trainer.train_and_evaluate(config, root / "resumed")
    return root


def test_a_run_killed_mid_fade_resumes_exactly(runs):
    _, _, killed = load_run(runs / "killed")
    assert int(killed.step) == KILLED_AT
    straight, resumed = load_run(runs / "straight")[-1], load_run(runs / "resumed")[-1]
    assert int(resumed.step) == int(straight.step) == 8
    chex.assert_trees_all_close(jax.device_get(resumed.teams), jax.device_get(straight.teams),
                                rtol=1e-6, atol=1e-7)


def test_the_fade_and_the_sample_grids_follow_the_stages(runs):
    lines = [json.loads(l) for l in (runs / "straight" / "metrics.jsonl").read_text().splitlines()]
    alpha = {m["step"]: m["d_alpha"] for m in lines if "d_alpha" in m}
    # Logged values average the steps since the last log: steps 5-6 see alpha 0 and 0.5.
    assert alpha[2] == alpha[4] == 1.0 and alpha[6] == pytest.approx(0.25) and alpha[8] == 1.0
    sizes = {p.name: Image.open(p).size for p in (runs / "straight" / "samples").iterdir()}
    assert sorted(sizes) == [f"step_{s:07d}.png" for s in (2, 4, 6, 8)]
    # Stage 0 draws 4-px samples, stage 1 (from step 4) 8-px ones: a larger grid.
    assert sizes["step_0000002.png"][0] < sizes["step_0000004.png"][0] == sizes["step_0000008.png"][0]
    _, game, state = load_run(runs / "straight")
    config = load_config("progan", "runlocal")
    fake = game.apply(state, "generator", jnp.zeros((2, config.progan.latent_dim)))
    assert fake.shape == (2, 8, 8, 1)
