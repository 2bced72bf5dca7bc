"""Rewriting a trained generator's layer (`jgan.generator_rewriting`, `python -m
jgan.rewrite`): the pasted keys map to the copied values, keys elsewhere move much less,
strength 0 is the identity, the edited workdir reads as a run, and bad flags are named.

One tiny ProGAN run (runlocal: 8 px, 8 steps) is shared by every test. The CLI runs in a
subprocess only: jgan.rewrite's absl flags would collide with jgan.sample's in a shared
pytest worker.
"""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import generator_layers as gl
from jgan import generator_rewriting as rw
from jgan import rank_one_edit as roe
from jgan.errors import UsageError
from jgan.runs.load import load_run
from jgan.train import trainer
from jgan.train.builders import build_generator_inputs
from tests.helpers import REPO_ROOT, load_config, require_shared_tfds

LAYER = "network/blocks_1/conv0"   # level 1's first conv (8 px), after the upsampling
NUM = 8                            # samples the boxes' indices refer to
# One layer pixel pasted (its key maps exactly under a rank-one edit), the context the
# paste box itself in two samples.
REQUEST = dict(copy=rw.Box(0, 1, 1, 2, 2), paste=rw.Box(1, 4, 4, 5, 5),
               context=(rw.Box(1, 4, 4, 5, 5), rw.Box(2, 4, 4, 5, 5)))
STATS = dict(num_samples=NUM, seed=0, num_stat_samples=64, stat_batch=32)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """`(workdir, game, state, sampler, layer)` of the trained runlocal ProGAN."""
    config = load_config("progan", "runlocal")
    config.data.data_dir = require_shared_tfds()
    workdir = tmp_path_factory.mktemp("rewrite") / "run"
    trainer.train_and_evaluate(config, workdir)
    config, game, state = load_run(workdir)
    sampler = build_generator_inputs(config, required=True)
    layer = gl.find_layer(gl.survey_layers(game, state, sampler, use_ema=True), LAYER,
                          "generator")
    return workdir, game, state, sampler, layer


@pytest.fixture(scope="module")
def edited(run):
    """`(edited state, diagnostics)` of REQUEST at strength 1."""
    _, game, state, sampler, layer = run
    return rw.rewrite_state(game, state, sampler, layer, rw.EditRequest(**REQUEST), **STATS)


def _values(run, state, use_ema=True):
    """The layer's values `[NUM, 8, 8, Cout]` and keys on the NUM samples, under jit."""
    _, game, _, sampler, layer = run
    inputs = rw.sample_inputs(sampler, num=NUM, seed=0)
    _, x, y = jax.jit(lambda s, i: gl.capture(game, s, sampler, layer, i, use_ema=use_ema))(
        state, inputs)
    bias = gl.layer_params(state.params(use_ema=use_ema)["generator"], layer)["bias"]
    keys, values = gl.keys_and_values(layer, x, y, bias)
    return keys, values


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def test_the_layer_is_the_equalized_conv_and_its_keys_give_its_values(run):
    _, _, state, _, layer = run
    assert layer.kind == "EqualizedConv" and layer.kernel_size == (3, 3)
    keys, values = _values(run, state)
    kernel = gl.layer_params(state.params(use_ema=True)["generator"], layer)["kernel"]
    w = roe.kernel_to_matrix(kernel * layer.scale)
    np.testing.assert_allclose(keys @ w.T, values, atol=1e-4 * float(jnp.abs(values).max()))


@pytest.mark.parametrize("use_ema", [True, False])
def test_the_pasted_keys_map_to_the_copied_values(run, edited, use_ema):
    new, diagnostics = edited
    _, before = _values(run, run[2], use_ema)
    _, after = _values(run, new, use_ema)
    copied, pasted = before[0, 1, 1], after[1, 4, 4]   # layer px = image px at 8 px
    assert _rel(before[1, 4, 4], copied) > 0.1        # there was something to change
    assert _rel(pasted, copied) < 1e-3
    d = diagnostics["ema" if use_ema else "raw"]
    assert d["rank"] == 1 and d["residual"] < 1e-3 * d["initial_residual"]
    assert d["pasted_keys"] == 1 and d["context_keys"] == 2


def test_values_outside_the_context_move_much_less(run, edited):
    _, before = _values(run, run[2])
    _, after = _values(run, edited[0])
    inside = _rel(after[1, 4, 4], before[1, 4, 4])
    others = [_rel(after[s], before[s]) for s in range(3, NUM)]   # samples not involved
    assert np.mean(others) < 0.25 * inside, (others, inside)


def test_strength_zero_is_the_identity(run):
    _, game, state, sampler, layer = run
    new, diagnostics = rw.rewrite_state(game, state, sampler, layer,
                                        rw.EditRequest(**REQUEST, strength=0.0), **STATS)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)),
                                     (new.teams, new.ema), (state.teams, state.ema)))
    assert diagnostics["ema"]["rank"] == 0
    inputs = rw.sample_inputs(sampler, num=NUM, seed=0)
    np.testing.assert_array_equal(rw.generate(game, new, sampler, inputs, use_ema=True),
                                  rw.generate(game, state, sampler, inputs, use_ema=True))


def test_the_command_writes_a_workdir_that_loads_and_samples(run, tmp_path):
    from jgan.sample import draw
    workdir, _, state, _, layer = run
    out = tmp_path / "edited"
    flags = [f"--workdir={workdir}", f"--out={out}", f"--layer=generator/{LAYER}",
             "--copy=0:0,0,4,4", "--paste=1:4,4,8,8", "--context=2:4,4,8,8;3:2,2,6,6",
             f"--num_samples={NUM}", "--num_stat_samples=32", "--stat_batch=16"]
    done = subprocess.run([sys.executable, "-m", "jgan.rewrite", *flags], cwd=REPO_ROOT,
                          capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "rewrite.json").read_text())
    assert report["layer"] == LAYER and report["context"] == ["2:4,4,8,8", "3:2,2,6,6"]
    assert set(report["diagnostics"]) == {"ema", "raw"}
    assert (out / "rewrite.png").is_file()
    _, _, new = load_run(out)
    assert int(new.step) == int(state.step)
    path = ("generator", *layer.path, "kernel")
    leaf = lambda tree: tree[path[0]][path[1]][path[2]][path[3]][path[4]]
    for get in (lambda s: s.teams["generator"].params, lambda s: s.ema["generator"]):
        assert not np.array_equal(leaf(get(new)), leaf(get(state)))
        unchanged = lambda s: {k: v for k, v in get(s)["generator"]["network"].items()
                               if k != "blocks_1"}
        assert jax.tree.all(jax.tree.map(np.array_equal, unchanged(new), unchanged(state)))
    grid = draw(out, num=4, out=tmp_path / "samples.png")
    assert grid.ndim == 3 and (tmp_path / "samples.png").is_file()
    # A second rewrite into the same directory is refused, naming it.
    again = subprocess.run([sys.executable, "-m", "jgan.rewrite", *flags], cwd=REPO_ROOT,
                           capture_output=True, text=True)
    assert again.returncode == 2 and f"--out={out}" in again.stderr


@pytest.mark.parametrize("change, message", [
    (dict(layer="network/blocks_9/conv0"), "--layer=network/blocks_9/conv0: the generator "
     "'generator' has no layer"),
    (dict(layer="network/blocks_0/dense"), "--layer=network/blocks_0/dense: a dense layer "
     "on vectors"),
    (dict(paste="1:4,4,9,9"), "--paste=1:4,4,9,9: the box must"),
    (dict(copy="12:0,0,2,2"), "--copy=12:0,0,2,2: sample 12"),
    (dict(context="2:4,4"), "--context=2:4,4: expected SAMPLE:y0,x0,y1,x1"),
])
def test_bad_flags_are_named(run, tmp_path, change, message):
    args = dict(layer=LAYER, copy="0:0,0,4,4", paste="1:4,4,8,8", context="2:4,4,8,8",
                num_samples=NUM, num_stat_samples=8, stat_batch=8)
    with pytest.raises(UsageError, match="^" + re.escape(message)) as e:
        rw.rewrite_run(run[0], tmp_path / "out", **{**args, **change})
    if "layer" in change:   # the supported layers are listed
        assert LAYER in str(e.value) and "network/to_rgb_1" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_context_keys_give_the_direction_of_a_mean_edit():
    rng = np.random.default_rng(0)
    keys, values, context = (rng.normal(size=s).astype(np.float32)
                             for s in ((3, 5), (3, 4), (6, 5)))
    weight = rng.normal(size=(4, 5)).astype(np.float32)
    cov = np.eye(5, dtype=np.float32) + 0.1
    same, _ = roe.rank_one_update(weight, cov, keys, values, directions="mean")
    given, _ = roe.rank_one_update(weight, cov, keys, values, directions="mean",
                                  direction_keys=keys)
    np.testing.assert_array_equal(same, given)
    new, d = roe.rank_one_update(weight, cov, keys, values, directions="mean",
                                direction_keys=context)
    direction = roe.edit_directions(cov, context, directions="mean")[:, 0]
    delta = np.asarray(new - weight)
    # Every row of the change is a multiple of d = C_r^-1 mean(context).
    np.testing.assert_allclose(delta - np.outer(delta @ direction / (direction @ direction),
                                                direction), 0, atol=1e-5)
    assert int(d.rank) == 1
