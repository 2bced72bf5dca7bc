"""The adversarial autoencoder (jgan.families.aae): its priors against their definitions,
its losses against the paper's formulas on the networks' own scores, phases that update
only their networks in the paper's order, the clustering measure, named config errors,
and the config's small variants end to end (outputs, exact resume, sampling the prior).
"""
from __future__ import annotations

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jgan.core.step_parts import apply_update, step_rng, team_gradients
from jgan.core.steps import make_step
from jgan.errors import ConfigError
from jgan.families import aae
from jgan.families.code_priors import CodePrior
from jgan.runs.load import load_run
from jgan.sample import draw
from jgan.train import builders, loop, trainer
from tests.helpers import load_config, require_shared_tfds
from tests.test_vae_experiments import StopAtSecondCheck, read_metrics

ANGLE = 2 * np.pi / 10


def test_mixture_components_sit_on_their_rays_with_the_stated_spreads():
    prior = CodePrior("mixture", 2, num_components=10)
    components = jnp.repeat(jnp.arange(10), 4000)
    z = np.asarray(prior.sample(jax.random.key(0), len(components), components))
    for k in range(10):
        direction = np.array([np.cos(k * ANGLE), np.sin(k * ANGLE)])
        normal = np.array([-direction[1], direction[0]])
        mine = z[np.asarray(components) == k]
        radial, across = mine @ direction, mine @ normal
        np.testing.assert_allclose([radial.mean(), radial.std()], [1.4, 0.5], atol=0.03)
        np.testing.assert_allclose([across.mean(), across.std()], [0.0, 0.05], atol=0.005)
    # Four dimensions: both pairs from the same component.
    z4 = np.asarray(CodePrior("mixture", 4).sample(jax.random.key(1), 3000, jnp.full(3000, 2)))
    for pair in (z4[:, :2], z4[:, 2:]):
        np.testing.assert_allclose(pair.mean(0), 1.4 * np.array([np.cos(2 * ANGLE),
                                                                 np.sin(2 * ANGLE)]), atol=0.03)


def test_swiss_roll_draws_lie_on_the_spiral_in_their_segment():
    prior = CodePrior("swiss_roll", 2, num_components=10)
    components = jnp.arange(2000) % 10
    z = np.asarray(prior.sample(jax.random.key(0), 2000, components))
    r = np.linalg.norm(z, axis=1)
    u = (r / 3.0) ** 2                          # r = 3 sqrt(u)
    k = np.asarray(components)
    assert np.all(u >= k / 10 - 1e-6) and np.all(u <= (k + 1) / 10 + 1e-6)
    angle = 4 * np.pi * np.sqrt(u)              # the point's angle is 4 pi sqrt(u)
    np.testing.assert_allclose(z, r[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1),
                               atol=1e-4)


def test_cluster_prior_is_a_uniform_one_hot_beside_a_gaussian_style():
    prior = CodePrior("clusters", 3, num_clusters=5)
    z = np.asarray(prior.sample(jax.random.key(0), 20_000))
    assert z.shape == (20_000, 8) and prior.code_dim == 8
    onehot, style = z[:, :5], z[:, 5:]
    assert set(np.unique(onehot)) == {0.0, 1.0} and np.all(onehot.sum(1) == 1)
    np.testing.assert_allclose(onehot.mean(0), 0.2, atol=0.01)
    np.testing.assert_allclose([style.mean(), style.std()], [0.0, 1.0], atol=0.02)


def test_prior_errors_are_named():
    with pytest.raises(ValueError, match="swiss roll is 2-D"):
        CodePrior("swiss_roll", 3)
    with pytest.raises(ValueError, match="even dim"):
        CodePrior("mixture", 3)
    with pytest.raises(ValueError, match="Unknown prior 'uniform'"):
        CodePrior("uniform", 2)


def small_game(prior: str, **aae_keys):
    config = load_config("aae", f"mnist,{prior},runlocal")
    config.aae.update(aae_keys)
    game = builders.build_game(config)
    batch = {"image": jax.random.uniform(jax.random.key(1), (8, 28, 28, 1), minval=-1),
             "label": jnp.arange(8) % 10}
    return config, game, game.init(jax.random.key(0), batch), batch


def sigmoid_cross_entropy(logits, target):
    return -np.mean(target * np.log(jax.nn.sigmoid(logits))
                    + (1 - target) * np.log(1 - jax.nn.sigmoid(logits)))


@pytest.mark.parametrize("prior,noise", [("label_mixture", 0.0), ("label_mixture", 0.5),
                                         ("clusters16", 0.0), ("clusters16", 0.3)])
def test_losses_are_the_papers_on_the_networks_scores(prior, noise):
    config, game, state, batch = small_game(prior, discriminator_input_noise=noise)
    code_prior = aae.prior_of(config)
    rng = jax.random.key(5)
    draw_key, noise_key = jax.random.split(rng)
    # The discriminators read their inputs with noise: prior draws, then codes; style
    # (code discriminator) before categories (cluster discriminator).
    noisy = lambda i, x: np.asarray(aae.with_input_noise(jax.random.fold_in(noise_key, i),
                                                         jnp.asarray(x), noise))
    apply = lambda name, *args: np.asarray(game.apply(state, name, *args))
    out = apply("encoder", batch["image"])
    draws = np.asarray(code_prior.sample(draw_key, 8, batch["label"]
                                         if code_prior.takes_labels else None))
    labels = np.eye(10)[np.asarray(batch["label"])]
    if prior == "label_mixture":   # D reads [z, onehot(y)]; y picks the draw's component
        pairs = {"code_discriminator": (np.concatenate([noisy(0, draws), labels], 1),
                                        np.concatenate([noisy(1, out), labels], 1))}
        angles = np.arctan2(draws[:, 1], draws[:, 0]) % (2 * np.pi)
        expected = np.asarray(batch["label"]) * ANGLE
        assert np.all(np.abs((angles - expected + np.pi) % (2 * np.pi) - np.pi) < 0.5)
    else:
        k = code_prior.num_clusters
        probabilities = np.asarray(jax.nn.softmax(out[:, :k]))
        pairs = {"code_discriminator": (noisy(0, draws[:, k:]), noisy(1, out[:, k:])),
                 "cluster_discriminator": (noisy(2, draws[:, :k]), noisy(3, probabilities))}
    discriminator, generator = 0.0, 0.0
    for name, (real, fake) in pairs.items():
        real_logits, fake_logits = apply(name, real), apply(name, fake)
        discriminator += (sigmoid_cross_entropy(real_logits, 1.0)
                          + sigmoid_cross_entropy(fake_logits, 0.0))
        generator += sigmoid_cross_entropy(fake_logits, 1.0)   # non-saturating
    for team, want in (("discriminator", discriminator), ("generator", generator)):
        loss = jax.jit(lambda state, team=team: team_gradients(
            game, state, batch, rng, team=team, axis_name=None).loss)(state)
        np.testing.assert_allclose(loss, want, rtol=1e-5)


def test_each_phase_updates_only_its_networks_in_the_papers_order():
    _, game, state, batch = small_game("clusters16")
    assert list(game.teams) == ["reconstruction", "discriminator", "generator"]
    expected = {"reconstruction": {"encoder", "decoder"},
                "discriminator": {"code_discriminator", "cluster_discriminator"},
                "generator": {"encoder"}}
    key = step_rng(state)
    point = state
    for j, team in enumerate(game.teams):
        @jax.jit
        def phase(point, key, team=team):
            g = team_gradients(game, point, batch, key, team=team, axis_name=None)
            return g.grads, apply_update(game, point, team, g)
        grads, new = phase(point, jax.random.fold_in(key, j))
        assert set(grads) == expected[team]
        before, after = point.params(), new.params()
        changed = {name for name in before
                   if not all(jax.tree.leaves(jax.tree.map(jnp.array_equal, before[name],
                                                           after[name])))}
        assert changed == expected[team], team
        point = new
    stepped, _ = jax.jit(make_step(game))(state, batch)   # the step is these phases in order
    chex.assert_trees_all_close(stepped.teams, point.teams, rtol=1e-6, atol=1e-6)
    assert stepped.teams["generator"].params == {}


def test_input_noise_is_a_centred_gaussian_of_the_stated_std_and_none_at_zero():
    x = jnp.tile(jnp.eye(4), (5000, 1))
    noisy = jax.jit(aae.with_input_noise, static_argnums=2)
    np.testing.assert_array_equal(noisy(jax.random.key(0), x, 0.0), x)
    residual = np.asarray(noisy(jax.random.key(0), x, 0.3) - x)
    np.testing.assert_allclose([residual.mean(), residual.std()], [0.0, 0.3], atol=0.005)
    np.testing.assert_allclose(np.corrcoef(residual[:, 0], residual[:, 1])[0, 1], 0.0,
                               atol=0.02)
    assert not np.array_equal(residual, np.asarray(noisy(jax.random.key(1), x, 0.3) - x))


def test_cluster_error_gives_each_cluster_its_majority_label():
    train_clusters = np.array([0, 0, 0, 1, 1, 2])
    train_labels = np.array([3, 3, 5, 7, 7, 1])
    error, assigned = aae.cluster_error(train_clusters, train_labels,
                                        np.array([0, 1, 2, 3, 0]), np.array([3, 7, 2, 0, 5]), 4)
    assert assigned.tolist() == [3, 7, 1, -1]    # cluster 3 took no training image
    assert error == pytest.approx(3 / 5)


@pytest.mark.parametrize("override,key", [
    ({"aae.prior": "uniform"}, "aae.prior"),
    ({"aae.prior": "swiss_roll", "aae.latent_dim": 3}, "aae.latent_dim"),
    ({"aae.prior": "label_mixture", "aae.num_components": 4}, "aae.num_components"),
    ({"game.update_rule": "simultaneous"}, "game.update_rule"),
    ({"aae.discriminator_input_noise": -0.1}, "aae.discriminator_input_noise"),
])
def test_config_errors_name_the_key(override, key):
    config = load_config("aae", "mnist,runlocal")
    for name, value in override.items():
        section, leaf = name.split(".")
        config[section][leaf] = value
    with pytest.raises(ConfigError, match=f"config.{key}"):
        builders.validate(config)


def test_an_optimizer_section_for_each_phase():
    config = load_config("aae", "mnist,runlocal")
    del config.optimizer["generator"]
    with pytest.raises(ConfigError, match=r"optimizer.generator: the aae family has teams "
                                          r"\['reconstruction', 'discriminator', 'generator'\]"):
        builders.validate(config)


# config argument -> (family metrics, sample grids)
RUNS = {
    "mnist,mixture,runlocal": (("test_mse", "test_loss"), ("", "reconstructions", "codes")),
    "mnist,clusters16,runlocal": (("test_mse", "cluster_test_error", "clusters_used"),
                                  ("", "reconstructions")),
    "fashion_mnist,label_mixture,runlocal": (("test_mse",), ("", "reconstructions", "codes")),
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    runs = {}

    def run(arg: str):
        if arg not in runs:
            config = load_config("aae", arg)
            config.data.data_dir = require_shared_tfds()
            workdir = tmp_path_factory.mktemp(arg.replace(",", "-"))
            runs[arg] = (config, workdir, trainer.train_and_evaluate(config, workdir))
        config, workdir, result = runs[arg]
        return config.copy_and_resolve_references(), workdir, result
    return run


@pytest.mark.parametrize("arg", list(RUNS))
def test_small_variant_runs_end_to_end(trained_run, arg):
    config, workdir, result = trained_run(arg)
    keys, grids = RUNS[arg]
    metrics = read_metrics(workdir)
    assert {"reconstruction_loss", "discriminator_loss", "discriminator_accuracy",
            "generator_loss", "generator_grad_norm"} <= set(metrics[-1])
    clusters = config.aae.prior == "clusters"
    assert ("cluster_discriminator_accuracy" in metrics[-1]) == clusters
    assert all(0 <= metrics[-1][k] <= 1 for k in metrics[-1] if k.endswith("_accuracy"))
    saved = json.loads((workdir / "eval.json").read_text())
    assert saved == json.loads(json.dumps(result)) and saved["step"] == config.num_steps
    family = saved["family_metrics"]
    assert all(np.isfinite(family[key]) for key in keys) and family["prior"] == config.aae.prior
    probe = family["probe"]   # the MLP encoder's code
    assert (probe["num_train"], probe["num_test"]) == (64, config.aae.eval_examples)
    assert probe["feature_dim"] == config.aae.latent_dim + (
        config.aae.num_clusters if config.aae.prior == "clusters" else 0)
    if "cluster_test_error" in keys:
        assert 0 <= family["cluster_test_error"] <= 1
        assert len(family["cluster_labels"]) == config.aae.num_clusters
    for grid in grids:
        prefix = f"{grid}_" if grid else ""
        image = np.asarray(Image.open(workdir / "samples" / f"{prefix}step_0000004.png"))
        assert image.std() > 0, grid
    if arg.startswith("mnist,clusters"):   # a row per cluster, 28 px cells and 1-px gaps
        image = Image.open(workdir / "samples" / "step_0000004.png")
        assert image.size[1] == config.aae.num_clusters * 29 + 1


def test_killed_run_resumes_exactly(tmp_path, trained_run, monkeypatch):
    config, straight, _ = trained_run("mnist,clusters16,runlocal")
    resumed = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        patch.setattr(loop, "StopRequested", StopAtSecondCheck)
        with pytest.raises(SystemExit):
            trainer.train_and_evaluate(config, resumed)
    trainer.train_and_evaluate(config, resumed)
    for name in ("eval.json", "metrics.jsonl"):
        assert (straight / name).read_text() == (resumed / name).read_text(), name
    chex.assert_trees_all_equal(load_run(straight)[2], load_run(resumed)[2])


def test_sample_decodes_prior_draws(tmp_path, trained_run):
    _, workdir, _ = trained_run("mnist,mixture,runlocal")
    grid = draw(workdir, num=4, out=tmp_path / "prior.png", seed=3)
    config, game, state = load_run(workdir)
    z = aae.prior_of(config).sample(jax.random.PRNGKey(3), 4)
    expected = jax.nn.sigmoid(game.apply(state, "decoder", z).reshape(4, 28, 28, 1)) * 2 - 1
    pixels = np.clip(np.rint((np.asarray(expected) + 1) * 127.5), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(grid[1:29, 1:29, 0].astype(int), pixels[0, ..., 0].astype(int),
                               atol=1)
