"""jgan.probe: linear probe and k-NN of a run's network, trained and at its initial state.

One tiny DCGAN run on MNIST (`dcgan_mnist:runlocal`, 2 steps) is trained per module;
its discriminator's penultimate features are probed on 512 / 256 MNIST images. How the
probe calls the other networks (label-conditioned, ACGAN, PacGAN discriminators, a VAE
encoder) is checked on their shapes alone (`jax.eval_shape`), or on a hand-built game.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgan.core.game import Game, Team
from jgan.probe import (ProbeError, RunImages, default_out, make_encode_fn, parse_kwargs,
                        probe_run)
from jgan.train import builders
from jgan.runs import example_batch, initial_state, load_run
from tests.helpers import REPO_ROOT, load_config, require_shared_tfds

NUM_TRAIN, NUM_TEST = 512, 256
NUM_STEPS = 2


@pytest.fixture(scope="module")
def data_dir():
    return require_shared_tfds()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir):
    from jgan.train import trainer
    config = load_config("dcgan_mnist")
    config.data.data_dir = data_dir
    config.num_steps = config.checkpoint_every = config.sample_every = NUM_STEPS
    workdir = tmp_path_factory.mktemp("dcgan_run")
    trainer.train_and_evaluate(config, workdir)
    return workdir


def probe(run_dir, data_dir, **kwargs):
    return probe_run(run_dir, "discriminator", dataset="mnist", data_dir=data_dir,
                     num_train=NUM_TRAIN, num_test=NUM_TEST, **kwargs)


def test_trained_and_random_init_discriminators_are_probed(run_dir, data_dir):
    trained = probe(run_dir, data_dir)
    baseline = probe(run_dir, data_dir, random_init=True)
    for result in (trained, baseline):
        assert {"linear", "knn_top1", "network", "step", "checkpoint_step", "protocol",
                "call", "images", "num_train", "num_test", "feature_dim"} <= set(result)
        assert result["network"] == "discriminator" and result["module"] == "DCGANDiscriminator"
        assert result["call"] == "__call__(features=True)"  # the penultimate features
        assert (result["num_train"], result["num_test"]) == (NUM_TRAIN, NUM_TEST)
        assert result["feature_dim"] == 7 * 7 * 16  # width 8: two stride-2 convs, 16 channels
        assert result["checkpoint_step"] == NUM_STEPS and result["linear"]["converged"]
        # Chance is 0.1; even random conv features of MNIST give ~0.85 at this size.
        assert 0.5 < result["linear"]["top1"] <= 1.0 and 0.5 < result["knn_top1"] <= 1.0
    assert (trained["step"], trained["random_init"]) == (NUM_STEPS, False)
    assert (baseline["step"], baseline["random_init"]) == (0, True)
    assert trained["images"]["dataset"] == "mnist" and trained["images"]["resolution"] == 28


def test_random_init_is_the_state_before_training(run_dir):
    config, game, trained = load_run(run_dir)
    initial = initial_state(config, game)
    # Adam moves a weight by at most ~lr per step (b1 = 0.5, b2 = 0.999: <= 1.05 lr at
    # step 2); another initialization would differ by ~0.03 (DCGAN's N(0, 0.02) init).
    lr = max(config.optimizer[team].learning_rate for team in ("generator", "discriminator"))
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), trained.params(),
                         initial.params())
    assert max(jax.tree.leaves(moved)) <= 1.5 * NUM_STEPS * lr
    encode_fn, _ = make_encode_fn(game, trained, "discriminator", batch_size=8,
                                  image_shape=(28, 28, 1))
    images = jax.random.uniform(jax.random.key(1), (8, 28, 28, 1), minval=-1.0, maxval=1.0)
    features = [encode_fn.func(state, images) for state in (trained, initial)]  # one jit
    assert features[0].shape == (8, 784)
    assert not np.allclose(features[0], features[1], atol=1e-3)


def test_the_cli_writes_the_json(run_dir, data_dir):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "jgan.probe", f"--workdir={run_dir}", "--network=discriminator",
         "--dataset=mnist", f"--data_dir={data_dir}", f"--num_train={NUM_TRAIN}",
         f"--num_test={NUM_TEST}"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = run_dir / "probe_discriminator.json"
    assert f"Wrote {out}" in done.stdout
    result = json.loads(out.read_text())
    assert not result["random_init"] and result["step"] == NUM_STEPS
    assert 0.0 <= result["linear"]["top1"] <= 1.0 and 0.0 <= result["knn_top1"] <= 1.0
    assert default_out(run_dir, "discriminator", True) == (
        run_dir / "probe_discriminator_random_init.json")


def test_errors_name_the_network_and_what_it_needs(run_dir):
    config, game, state = load_run(run_dir)
    encode = lambda network, **kwargs: make_encode_fn(  # noqa: E731
        game, state, network, batch_size=4, image_shape=kwargs.pop("shape", (28, 28, 1)),
        **kwargs)
    with pytest.raises(ProbeError, match="No network named 'encoder'.*discriminator, generator"):
        encode("encoder")
    with pytest.raises(ProbeError, match=r"'generator'.*inputs of shapes \(1, 100\)"):
        encode("generator")
    with pytest.raises(ProbeError, match=r"'discriminator'.*images of shape \(4, 32, 32, 1\)"):
        encode("discriminator", shape=(32, 32, 1))
    with pytest.raises(ProbeError, match="no method or submodule 'nope'"):
        encode("discriminator", method="nope")
    # Explicit kwargs override the automatic features=True: the logits, one per image.
    _, info = encode("discriminator", kwargs={"features": False})
    assert info["feature_dim"] == 1 and info["call"] == "__call__(features=False)"


def abstract_state(config):
    """The run's game and the shapes of its initial state: enough to check a call."""
    game = builders.build_game(config)
    return game, jax.eval_shape(game.init, jax.random.PRNGKey(0), example_batch(config))


def test_discriminators_that_need_more_than_images():
    shape = dict(batch_size=4, image_shape=(28, 28, 1))
    game, state = abstract_state(load_config("conditional", "cgan,mnist,runlocal"))
    with pytest.raises(ProbeError, match="'discriminator' .*LabelConditioned.*needs labels"):
        make_encode_fn(game, state, "discriminator", **shape)
    packed = load_config("dcgan_mnist")
    packed.game.pack = 2
    game, state = abstract_state(packed)
    with pytest.raises(ProbeError, match=r"maps 4 images to shape \(2, 784\)"):
        make_encode_fn(game, state, "discriminator", **shape)
    # ACGAN's D returns (source, classes); its trunk gives the features both heads read.
    game, state = abstract_state(load_config("conditional", "acgan,mnist,runlocal"))
    with pytest.raises(ProbeError, match="tuple of 2.*--method=trunk"):
        make_encode_fn(game, state, "discriminator", **shape)
    _, info = make_encode_fn(game, state, "discriminator", method="trunk", **shape)
    assert info["call"] == "trunk(features=True)" and info["feature_dim"] == 784


def test_an_encoder_is_probed_through_its_features_method():
    from jgan.models import ConvEncoder
    encoder = ConvEncoder(latent_dim=3, width=2, dense_hidden=0, variational=True)
    game = Game(teams={"vae": Team(networks={"encoder": encoder},
                                   loss=lambda nets, batch, rng: (0.0, {}),
                                   optimizer=optax.sgd(0.1))},
                example_inputs=lambda batch: {"encoder": (jnp.zeros((1, 28, 28, 1)),)})
    state = game.init(jax.random.key(0), {})
    images = jax.random.normal(jax.random.key(1), (4, 28, 28, 1))
    encode_fn, info = make_encode_fn(game, state, "encoder", batch_size=4,
                                     image_shape=(28, 28, 1))
    assert info["call"] == "features()" and info["feature_dim"] == 3
    mean, _ = game.apply(state, "encoder", images)
    np.testing.assert_allclose(encode_fn(images), mean, rtol=1e-6)
    with pytest.raises(ProbeError, match="tuple of 2.*--method=features"):
        make_encode_fn(game, state, "encoder", batch_size=4, image_shape=(28, 28, 1),
                       method="__call__")


def test_images_reach_the_run_shape_and_kwargs_parse():
    source = [{"image": np.full((28, 28, 1), 200, np.uint8), "label": 3}]
    record = RunImages(source, 32, 3, "pad")[0]
    assert record["image"].shape == (32, 32, 3) and record["label"] == 3
    assert record["image"][0, 0, 0] == 0 and record["image"][16, 16, 2] == 200
    assert RunImages(source, 32, 1)[0]["image"].shape == (32, 32, 1)  # bicubic
    assert parse_kwargs(["features=false", "scale=0.5", "name=trunk", "n=None"]) == {
        "features": False, "scale": 0.5, "name": "trunk", "n": None}
    with pytest.raises(ProbeError, match="NAME=VALUE"):
        parse_kwargs(["features"])
