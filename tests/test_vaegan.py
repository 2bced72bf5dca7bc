"""VAE-GAN (jgan.families.vaegan): its three losses against the paper's formulas on the
networks' own outputs, each team's gradients in its own network, a named config error,
and the small variant end to end."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jgan.core.step_parts import team_gradients
from jgan.errors import ConfigError
from jgan.objectives.variational import reparameterize
from jgan.train import builders, trainer
from tests.helpers import load_config, require_shared_tfds


def log_sigmoid(t):
    return -np.logaddexp(0.0, -t)


def test_losses_are_the_papers_on_the_networks_outputs():
    config = load_config("vaegan", "mnist,runlocal")
    config.vaegan.gamma = 0.3
    game = builders.build_game(config)
    x = jax.random.uniform(jax.random.key(1), (6, 28, 28, 1), minval=-1)
    batch = {"image": x, "label": jnp.zeros(6, jnp.int32)}
    state = game.init(jax.random.key(0), batch)
    rng = jax.random.key(3)
    losses = jax.jit(lambda s: {team: team_gradients(game, s, batch, rng, team=team,
                                                     axis_name=None)
                                for team in game.teams})(state)
    # By hand, from the networks' outputs (no batch statistics: train = eval mode).
    mean, log_var = game.apply(state, "encoder", x)
    z_key, prior_key = jax.random.split(rng)
    z = reparameterize(z_key, mean=mean, log_var=log_var)
    z_p = jax.random.normal(prior_key, mean.shape)
    decoded = jnp.tanh(game.apply(state, "decoder", jnp.concatenate([z, z_p])).reshape(12, 28, 28, 1))
    logits, features = game.apply(state, "discriminator", jnp.concatenate([x, decoded]),
                                  with_features=True)
    logits, features = np.asarray(logits, np.float64), np.asarray(features, np.float64)
    features = features.reshape(18, -1)
    real, rec, prior = logits[:6], logits[6:12], logits[12:]
    mean, log_var = np.asarray(mean, np.float64), np.asarray(log_var, np.float64)
    kl = np.mean(0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1 - log_var, axis=1))
    llike = np.mean(0.5 * np.sum((features[:6] - features[6:12]) ** 2, axis=1))
    gan = (log_sigmoid(real).mean() + log_sigmoid(-rec).mean() + log_sigmoid(-prior).mean())
    want = {"encoder": kl + llike,
            "decoder": 0.3 * llike - log_sigmoid(rec).mean() - log_sigmoid(prior).mean(),
            "discriminator": -gan}
    for team, value in want.items():
        np.testing.assert_allclose(losses[team].loss, value, rtol=1e-4)
        assert set(losses[team].grads) == {team}
        assert any(bool(jnp.any(g != 0)) for g in jax.tree.leaves(losses[team].grads))
    np.testing.assert_allclose(losses["encoder"].metrics["gan_value"], gan, rtol=1e-4)


def test_a_game_without_log_likelihoods_is_refused():
    config = load_config("vaegan", "mnist,runlocal")
    config.game.loss_type = "hinge"
    with pytest.raises(ConfigError, match="config.game.loss_type"):
        builders.validate(config)


def test_small_variant_runs_end_to_end(tmp_path):
    config = load_config("vaegan", "fashion_mnist,runlocal")
    config.data.data_dir = require_shared_tfds()
    result = trainer.train_and_evaluate(config, tmp_path)
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert 0 < saved["family_metrics"]["reconstruction_mse"] < 4
    assert {"encoder_loss", "decoder_loss", "discriminator_loss", "kl", "feature_llike",
            "gan_value"} <= set(saved["final_metrics"])
    for grid in ("", "reconstructions_", "interpolations_"):
        image = np.asarray(Image.open(tmp_path / "samples" / f"{grid}step_0000004.png"))
        assert image.std() > 0, grid
    interpolations = Image.open(tmp_path / "samples" / "interpolations_step_0000004.png")
    assert interpolations.size[0] == 3 * 29 + 1     # interpolation_steps columns
