"""BiGAN / BigBiGAN (jgan.families.bigan): gradients reach exactly the networks each
team's loss names, the encoder's learning-rate multiplier, named config errors, and the
configs' small variants end to end. The losses themselves are checked against the
papers' formulas in test_bidirectional_losses.py; the large-batch step on 8 devices
against one device in test_sharding.py."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from jgan.core.step_parts import team_gradients
from jgan.errors import ConfigError
from jgan.families.bigan import networks as bigan_networks
from jgan.families.bigan import scale_network_updates
from jgan.families.encoder_decoder import build_networks as encoder_decoder_networks
from jgan.runs import evaluate_run
from jgan.runs.load import load_run
from jgan.sample import draw
from jgan.train import builders, classifier_trainer, trainer
from tests.helpers import assert_results_close, load_config, require_shared_tfds


def game_and_batch(arg="mnist,runlocal", name="bigbigan", **section):
    config = load_config(name, arg)
    config.bigan.update(section)
    builders.validate(config)
    game = builders.build_game(config)
    batch = {"image": jax.random.uniform(jax.random.key(1), (8, 32, 32, 1), minval=-1),
             "label": jnp.zeros(8, jnp.int32)}
    return config, game, game.init(jax.random.key(0), batch), batch


def nonzero(tree) -> dict:
    """`{top-level name: whether its gradient is non-zero somewhere}` (not every leaf: a
    fresh residual block's inner weights wait for its zero-initialized last convolution,
    and a hinge's bias gradient is 0 while every score is inside the margin)."""
    return {name: any(bool(jnp.any(leaf != 0)) for leaf in jax.tree.leaves(sub))
            for name, sub in tree.items()}


@pytest.mark.parametrize("section,heads", [
    ({}, {"theta_x", "theta_z", "theta_xz"}),
    ({"unary_z": False, "encoder_resolution": 64}, {"theta_x", "theta_xz"}),
])
def test_gradients_reach_exactly_the_networks_each_loss_names(section, heads):
    config, game, state, batch = game_and_batch(**section)
    grads = jax.jit(lambda s: {team: team_gradients(game, s, batch, jax.random.key(2), team=team,
                                                    axis_name=None).grads
                               for team in game.teams})(state)
    assert set(grads["discriminator"]) == {"discriminator"}
    assert set(grads["generator"]) == {"generator", "encoder"}
    d = grads["discriminator"]["discriminator"]
    assert {k for k in d if k.startswith("theta")} == heads
    assert all(nonzero(d).values())
    assert all(nonzero(grads["generator"]).values())   # G and E


def test_encoder_learning_rate_multiplier_scales_only_the_encoders_updates():
    params = {"encoder": {"w": jnp.ones(3)}, "generator": {"w": jnp.ones(2)}}
    grads = {"encoder": {"w": jnp.array([0.3, -2.0, 1e-3])},
             "generator": {"w": jnp.array([0.5, -0.1])}}
    adam = optax.adam(2e-4)
    scaled = optax.chain(adam, scale_network_updates("encoder", 10.0))
    for _ in range(2):   # Adam's state moves the same in both
        plain_updates, plain_state = adam.update(grads, adam.init(params), params)
        updates, _ = scaled.update(grads, scaled.init(params), params)
    np.testing.assert_allclose(updates["encoder"]["w"], 10 * plain_updates["encoder"]["w"],
                               rtol=1e-6)
    np.testing.assert_array_equal(updates["generator"]["w"], plain_updates["generator"]["w"])
    config = load_config("bigbigan", "mnist,runlocal")
    config.bigan.encoder_lr_multiplier = 10.0
    optimizer = builders.build_game(config).teams["generator"].optimizer
    assert len(optimizer.init(params)) == 2    # the team's Adam chained with the scaling


@pytest.mark.parametrize("name,override,key", [
    ("bigbigan", {"game.loss_type": "non_saturating"}, "game.loss_type"),
    ("bigan", {"game.loss_type": "least_squares"}, "game.loss_type"),
    ("bigbigan", {"bigan.encoder_resolution": 33}, "bigan.encoder_resolution"),
    ("bigbigan", {"bigan.encoder_widths": (4, 7)}, "bigan.encoder_widths"),
    ("bigbigan", {"game.update_rule": "extragradient"}, "game.update_rule"),
])
def test_config_errors_name_the_key(name, override, key):
    config = load_config(name, "mnist,runlocal")
    for dotted, value in override.items():
        section, leaf = dotted.split(".")
        config[section][leaf] = value
    with pytest.raises(ConfigError, match=f"config.{key}"):
        builders.validate(config)


def adam_counts(opt_state) -> set:
    return {int(leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(opt_state)[0]
            if path and getattr(path[-1], "name", None) == "count"}


@pytest.mark.parametrize("d_steps", [1, 2])
def test_d_steps_updates_the_discriminator_that_many_times_per_step(d_steps):
    config, game, state, batch = game_and_batch()
    config.game.d_steps = d_steps
    builders.validate(config)
    step = jax.jit(builders.build_step(config, builders.build_game(config)))
    new_state, _ = step(state, batch)
    assert adam_counts(new_state.teams["discriminator"].opt_state) == {d_steps}
    assert adam_counts(new_state.teams["generator"].opt_state) == {1}


@pytest.mark.parametrize("family", ["autoencoder", "vae", "aae"])
@pytest.mark.parametrize("size", ["", ",small"])
def test_encoder_families_revnet_option_is_bigbigans_encoder(family, size):
    # The probe table compares objectives alone: same encoder, same 32-px inputs.
    bigbigan = load_config("bigbigan", f"mnist{size}")
    other = load_config(family, f"mnist,revnet{size}")
    want = bigan_networks(bigbigan)["encoder"]
    got, _ = encoder_decoder_networks(other, family, variational=False)
    fields = ("latent_dim", "widths", "blocks_per_stage", "block", "head_hidden")
    assert {f: getattr(got, f) for f in fields} == {f: getattr(want, f) for f in fields}
    assert (other.data.resolution, other.data.resize) == (32, "pad") == (
        bigbigan.data.resolution, bigbigan.data.resize)


def test_small_option_needs_a_residual_encoder_and_no_large_batch():
    with pytest.raises(ValueError, match="'small' sizes the residual encoder"):
        load_config("autoencoder", "mnist,small")
    with pytest.raises(ValueError, match="large_batch and small"):
        load_config("bigbigan", "mnist,large_batch,small")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    runs = {}

    def run(name, arg):
        if (name, arg) not in runs:
            config = load_config(name, arg)
            config.data.data_dir = require_shared_tfds()
            workdir = tmp_path_factory.mktemp(f"{name}-{arg}".replace(",", "-"))
            runs[name, arg] = (config, workdir, trainer.train_and_evaluate(config, workdir))
        return runs[name, arg]
    return run


@pytest.mark.parametrize("name,arg", [("bigbigan", "mnist,runlocal"),
                                      ("bigan", "fashion_mnist,runlocal")])
def test_small_variant_runs_end_to_end(trained_run, name, arg):
    config, workdir, result = trained_run(name, arg)
    saved = json.loads((workdir / "eval.json").read_text())
    assert saved == json.loads(json.dumps(result)) and saved["step"] == config.num_steps
    family = saved["family_metrics"]
    assert 0 < family["reconstruction_mse"] < 4 and family["num_examples"] == 32
    assert family["losses"] == ("bigbigan" if name == "bigbigan" else "bigan (non_saturating)")
    probe = family["probe"]   # E's average-pooled trunk, BigBiGAN's readout
    assert (probe["num_train"], probe["num_test"], probe["feature_dim"]) == (
        64, 32, config.bigan.encoder_widths[-1])
    assert all(0 <= probe[r]["top1"] <= 1 for r in ("linear", "linear_bn_crelu"))
    used = ("x", "z", "xz") if name == "bigbigan" else ("xz",)
    assert {f"score_{t}_{side}" for t in used for side in ("encoder", "generator")} | {
        "d_loss", "g_loss"} <= set(saved["final_metrics"])
    for grid in ("", "reconstructions_"):
        image = np.asarray(Image.open(workdir / "samples" / f"{grid}step_0000004.png"))
        assert image.std() > 0 and image.shape[1] == 2 * 33 + 1, grid   # 32 px, 2 columns


def test_sample_draws_the_generator(tmp_path, trained_run):
    _, workdir, _ = trained_run("bigbigan", "mnist,runlocal")
    grid = draw(workdir, num=4, out=tmp_path / "samples.png", seed=3)
    config, game, state = load_run(workdir)
    z = jax.random.normal(jax.random.PRNGKey(3), (4, config.bigan.latent_dim))
    expected = np.asarray(game.apply(state, "generator", z, use_ema=True))
    pixels = np.clip(np.rint((expected + 1) * 127.5), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(grid[1:33, 1:33, 0].astype(int), pixels[0, ..., 0].astype(int),
                               atol=1)


def test_evaluate_scores_samples_and_reconstructions_with_one_protocol(tmp_path, trained_run):
    """`jgan.evaluate` with a sample metric and a classifier (of the runs' 32-px padded
    digits) adds the family's probe and the reconstructions' scores, as eval.json would."""
    config, workdir, result = trained_run("bigbigan", "mnist,runlocal")
    classifier = load_config("classifier_mnist", "runlocal")
    classifier.data.data_dir = require_shared_tfds()
    classifier.data.resolution, classifier.data.resize = 32, "pad"
    classifier_trainer.train_and_evaluate(classifier, tmp_path / "classifier")
    evaluated = evaluate_run(workdir, overrides={
        "metrics": "classifier_fd", "classifier_workdir": str(tmp_path / "classifier"),
        "num_samples": 32, "num_real": 32})
    assert np.isfinite(evaluated["metrics"]["classifier_fd"]["value"])
    family = evaluated["family_metrics"]
    assert_results_close(family["probe"], result["family_metrics"]["probe"], rel=1e-5)
    scored = family["reconstructions"]
    assert scored["num_examples"] == config.bigan.eval_examples == 32
    assert 0 <= scored["label_agreement"] <= 1
    assert 0 <= scored["classifier_accuracy_on_originals"] <= 1
    assert np.isfinite(scored["metrics"]["classifier_fd"]["value"])
