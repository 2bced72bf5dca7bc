"""End-to-end runs of the autoencoder and VAE configs' small variants (`,runlocal`):
their outputs, exact resume, sampling from a VAE's prior, and the linear probe of their
encoders. Each config is trained once per module (`trained_run`); the tests read it.
"""
from __future__ import annotations

import json
import signal
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jgan.errors import ConfigError
from jgan.runs.evaluation import evaluate_run
from jgan.probe import probe_run
from jgan.sample import draw
from jgan.train import loop, trainer
from jgan.runs.load import load_run
from tests.helpers import assert_results_close, load_config, require_shared_tfds

# config -> (family metrics eval.json must hold, sample grids written)
RUNS = {
    ("autoencoder", "mnist,runlocal"): (("test_mse", "test_loss"), ("reconstructions",)),
    ("autoencoder", "fashion_mnist,runlocal"): (("test_mse", "test_loss"), ("reconstructions",)),
    ("autoencoder", "fashion_mnist,revnet,runlocal"): (("test_mse", "test_loss"),
                                                       ("reconstructions",)),
    ("vae", "mnist,runlocal"): (
        ("test_elbo", "test_log_likelihood_iwae", "test_nll_iwae", "test_reconstruction"),
        ("", "reconstructions", "traversals")),
    ("vae", "fashion_mnist,runlocal"): (
        ("test_elbo", "test_log_likelihood_iwae", "test_nll_iwae", "test_reconstruction"),
        ("", "reconstructions", "traversals")),
    ("vae", "mixture,runlocal"): (("test_elbo", "test_log_likelihood_iwae"), ("",)),
}


def read_metrics(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def make_config(name: str, arg: str):
    config = load_config(name, arg)
    if config.data.kind != "mixture":
        config.data.data_dir = require_shared_tfds()
    return config


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """`(config, workdir, result)` of a config's small variant, trained once per module."""
    runs = {}

    def run(name: str, arg: str):
        if (name, arg) not in runs:
            config = make_config(name, arg)
            workdir = tmp_path_factory.mktemp(f"{name}-{arg}".replace(",", "-"))
            runs[name, arg] = (config, workdir, trainer.train_and_evaluate(config, workdir))
        config, workdir, result = runs[name, arg]
        return config.copy_and_resolve_references(), workdir, result
    return run


@pytest.mark.parametrize("name,arg", list(RUNS))
def test_small_variant_runs_end_to_end(trained_run, name, arg):
    config, workdir, result = trained_run(name, arg)
    keys, grids = RUNS[name, arg]
    metrics = read_metrics(workdir)
    assert [m["step"] for m in metrics] == list(range(config.log_every, config.num_steps + 1,
                                                      config.log_every))
    assert {f"{name}_loss", f"{name}_grad_norm"} <= set(metrics[-1])
    saved = json.loads((workdir / "eval.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["step"] == config.num_steps and saved["final_metrics"] == {
        k: v for k, v in metrics[-1].items() if k != "step"}
    family = saved["family_metrics"]
    for key in keys:
        assert np.isfinite(family[key]), key
    assert family["num_examples"] == config[name].eval_examples and "protocol" in family
    if name == "vae":
        assert family["iwae_samples"] == config.vae.iwae_samples
        # Burda et al.'s bound is at least the ELBO (on average over the examples).
        assert family["test_log_likelihood_iwae"] >= family["test_elbo"]
        assert family["test_nll_iwae"] == -family["test_log_likelihood_iwae"]
    else:
        assert 0 < family["test_mse"] <= 4.0   # images in [-1, 1]
    if config.data.kind != "mixture":   # the encoder's probe (jgan.families.representation)
        probe = family["probe"]
        s = config[name]
        assert (probe["num_train"], probe["num_test"]) == (config.eval.probe_train,
                                                           s.eval_examples)
        # The code (VAE: its mean) for conv encoders, the pooled trunk for residual ones.
        assert probe["feature_dim"] == (4 * s.width if s.network == "revnet" else s.latent_dim)
        for readout in ("linear", "linear_bn_crelu"):
            assert 0 <= probe[readout]["top1"] <= 1 and probe[readout]["num_classes"] == 10
        assert 0 <= probe["knn_top1"] <= 1 and probe["protocol"]["k"] == 20
        assert "reconstructions" not in family   # neither a classifier nor a metric asked
    for grid in grids:
        prefix = f"{grid}_" if grid else ""
        for step in range(config.sample_every, config.num_steps + 1, config.sample_every):
            image = np.asarray(Image.open(workdir / "samples" / f"{prefix}step_{step:07d}.png"))
            assert image.std() > 0, (grid, step)
    assert (workdir / "checkpoints" / str(config.num_steps)).is_dir()


def test_vae_grids_have_their_layout(trained_run):
    config, workdir, _ = trained_run("vae", "mnist,runlocal")
    path = lambda name: workdir / "samples" / f"{name}step_{config.num_steps:07d}.png"
    size = lambda rows, columns: (rows * 29 + 1, columns * 29 + 1)  # 28 px and 1-px gaps
    assert np.asarray(Image.open(path(""))).shape == size(2, 2)        # 4 prior samples
    assert np.asarray(Image.open(path("reconstructions_"))).shape == size(2, 2)
    # A row per latent dimension (4), swept over 3 values.
    assert np.asarray(Image.open(path("traversals_"))).shape == size(config.vae.latent_dim, 3)


class StopAtSecondCheck:
    """Stands in for the trainer's SIGTERM flag: a signal arrives after the second chunk."""

    def __init__(self):
        self.reads = 0
        self.signum, self.name = signal.SIGTERM, "SIGTERM"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    @property
    def requested(self) -> bool:
        self.reads += 1
        return self.reads == 2


def test_vae_killed_run_resumes_exactly_and_a_finished_run_rerun_loses_nothing(
        tmp_path, trained_run, monkeypatch):
    config, straight, _ = trained_run("vae", "mixture,runlocal")   # a Gaussian decoder
    resumed = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        patch.setattr(loop, "StopRequested", StopAtSecondCheck)
        with pytest.raises(SystemExit):
            trainer.train_and_evaluate(config, resumed)
    assert not (resumed / "eval.json").exists()
    trainer.train_and_evaluate(config, resumed)   # the same command, continued
    outputs = lambda workdir: ((workdir / "eval.json").read_text(), read_metrics(workdir),
                               load_run(workdir)[2])
    eval_a, metrics_a, state_a = outputs(straight)
    eval_b, metrics_b, state_b = outputs(resumed)
    assert metrics_a == metrics_b and eval_a == eval_b
    chex.assert_trees_all_equal(state_a, state_b)
    assert "log_scale" in state_b.teams["vae"].params
    trainer.train_and_evaluate(config, resumed)   # rerun once finished: nothing lost
    assert outputs(resumed)[:2] == (eval_a, metrics_a)


def test_sample_draws_from_the_vae_prior_and_refuses_an_autoencoder(tmp_path, trained_run):
    _, workdir, _ = trained_run("vae", "mnist,runlocal")
    grid = draw(workdir, num=4, out=tmp_path / "prior.png", seed=3)
    config, game, state = load_run(workdir)
    z = jax.random.normal(jax.random.PRNGKey(3), (4, config.vae.latent_dim))
    expected = jax.nn.sigmoid(game.apply(state, "decoder", z)) * 2 - 1
    pixels = np.clip(np.rint((np.asarray(expected) + 1) * 127.5), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(grid[1:29, 1:29, 0].astype(int), pixels[0, ..., 0].astype(int),
                               atol=1)
    _, ae_workdir, _ = trained_run("autoencoder", "mnist,runlocal")
    with pytest.raises(ConfigError, match="the autoencoder family has no generator"):
        draw(ae_workdir, num=4, out=tmp_path / "none.png")


def test_evaluate_recomputes_the_family_metrics_of_eval_json(trained_run):
    _, workdir, result = trained_run("vae", "mnist,runlocal")
    # The trainer's state lies replicated over the run's mesh (8 fake devices), the
    # restored one on one device: two compilations, equal to float32 rounding.
    assert_results_close(evaluate_run(workdir)["family_metrics"], result["family_metrics"],
                         rel=1e-6)


def test_linear_probe_reads_the_encoder(trained_run):
    """The VAE's encoder (the autoencoder's is called the same way: `features`)."""
    _, workdir, _ = trained_run("vae", "mnist,runlocal")
    kwargs = dict(dataset="mnist", data_dir=require_shared_tfds(), num_train=256, num_test=128)
    trained = probe_run(workdir, "encoder", **kwargs)
    baseline = probe_run(workdir, "encoder", random_init=True, **kwargs)
    for result in (trained, baseline):
        assert result["call"] == "features()" and result["feature_dim"] == 4
        assert 0.0 <= result["linear"]["top1"] <= 1.0 and 0.0 <= result["knn_top1"] <= 1.0
    assert trained["step"] == 4 and baseline["step"] == 0
