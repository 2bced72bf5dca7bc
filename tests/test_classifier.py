"""The evaluation classifier: network, training runs (through experiments.main), resume,
loading, and the classifier-based metrics."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.data.images import tfds_source
from jgan.eval.classifier import (
    class_histogram,
    classifier_frechet_distance,
    conditional_accuracy,
    load_classifier,
)
from jgan.models import DigitClassifier
from jgan.train import classifier_trainer
from jgan.train.builders import ConfigError
from tests.helpers import REPO_ROOT, load_config, require_shared_tfds



def read_metrics(workdir) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def read_split(name: str, split: str, data_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28, 1) and labels (N,), in the split's order."""
    source = tfds_source(name, split=split, data_dir=data_dir)
    records = [source[i] for i in range(len(source))]
    return (np.stack([r["image"] for r in records]), np.array([r["label"] for r in records]))


# --- network ---------------------------------------------------------------------------

@pytest.mark.parametrize("channels,batch_norm", [(1, True), (3, False)])
def test_classifier_shapes_and_modes(channels, batch_norm):
    model = DigitClassifier(num_classes=7, width=4, features=24, batch_norm=batch_norm)
    x = jax.random.uniform(jax.random.PRNGKey(0), (5, 28, 28, channels), minval=-1, maxval=1)
    variables = model.init({"params": jax.random.PRNGKey(1)}, x, train=False)
    assert ("batch_stats" in variables) == batch_norm

    logits, features = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    chex.assert_shape(logits, (5, 7))
    chex.assert_shape(features, (5, 24))
    chex.assert_tree_all_finite((logits, features))
    # The features are the last hidden layer's pre-activations: the logits follow from them.
    head = variables["params"]["Dense_1"]
    chex.assert_trees_all_close(logits, jax.nn.relu(features) @ head["kernel"] + head["bias"],
                                atol=1e-5)

    # Inference is per example: one image alone gives the same outputs as in a batch.
    alone, _ = model.apply(variables, x[2:3], train=False)
    chex.assert_trees_all_close(alone[0], logits[2], atol=1e-5)

    @jax.jit
    def train_apply(v, x, key):
        return model.apply(v, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"])

    (a, _), updates = train_apply(variables, x, jax.random.PRNGKey(2))
    (b, _), _ = train_apply(variables, x, jax.random.PRNGKey(3))
    chex.assert_shape(a, (5, 7))
    assert not np.allclose(a, b)  # dropout depends on the key
    assert ("batch_stats" in updates) == batch_norm


def test_classifier_rejects_unbatched_images():
    model = DigitClassifier(width=4, features=8)
    with pytest.raises(ValueError, match="N, H, W, C"):
        model.init({"params": jax.random.PRNGKey(0)}, jnp.zeros((28, 28, 1)), train=False)


def test_augment_gives_translations_and_mirror_images():
    rng = np.random.default_rng(0)
    images = rng.uniform(-0.9, 1, (64, 10, 9, 1)).astype(np.float32)
    fn = jax.jit(classifier_trainer.augment, static_argnames=("max_shift", "horizontal_flip"))
    shifted = np.asarray(fn(jax.random.PRNGKey(0), images, max_shift=2, horizontal_flip=False))
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1.0)
    seen = set()
    for i in range(len(images)):
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if np.array_equal(shifted[i], padded[i, dy:dy + 10, dx:dx + 9])]
        assert len(matches) == 1, f"image {i} is no shift of its input"
        seen.add(matches[0])
    assert len(seen) > 12  # the shifts vary over the 25 possible ones

    flipped = np.asarray(fn(jax.random.PRNGKey(1), images, max_shift=0, horizontal_flip=True))
    mirrored = np.array([np.array_equal(f, x[:, ::-1]) for f, x in zip(flipped, images)])
    unchanged = np.array([np.array_equal(f, x) for f, x in zip(flipped, images)])
    assert np.all(mirrored ^ unchanged) and 10 < mirrored.sum() < 54


# --- configs and runs ------------------------------------------------------------------

@pytest.mark.parametrize("key,value,expected", [
    ("task", "gan", "config.task"),
    ("data.kind", "mixture", "config.data.kind"),
    ("optimizer.learning_rate", -1.0, "config.optimizer.learning_rate"),
    ("optimizer.schedule", "cosin", "config.optimizer.schedule"),
    ("optimizer.warmup_steps", 4, "config.optimizer.warmup_steps"),
    ("model.dropout_rate", 1.0, "config.model.dropout_rate"),
    ("augment.max_shift", 28, "config.augment.max_shift"),
])
def test_validate_names_the_bad_key(key, value, expected):
    config = load_config("classifier_mnist")
    section, _, leaf = key.rpartition(".")
    (config[section] if section else config)[leaf] = value
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        classifier_trainer.validate(config)


def _run_main(args):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "experiments.main", *args], check=False,
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_bad_classifier_config_fails_before_training(tmp_path):
    proc = _run_main(["--config=experiments/configs/classifier_mnist.py:runlocal",
                      f"--workdir={tmp_path}", "--config.optimizer.learning_rate=-1"])
    assert proc.returncode != 0
    assert "config.optimizer.learning_rate" in proc.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_mnist_runlocal_through_main_and_load(tmp_path):
    data_dir = require_shared_tfds()
    proc = _run_main(["--config=experiments/configs/classifier_mnist.py:runlocal",
                      f"--workdir={tmp_path}", f"--config.data.data_dir={data_dir}",
                      "--config.progress_bar=False"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = load_config("classifier_mnist")
    metrics = read_metrics(tmp_path)
    assert [m["step"] for m in metrics if "train_loss" in m] == [2, 4]
    assert [m["step"] for m in metrics if "test_accuracy" in m] == [2, 4]
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["step"] == result["num_steps"] == config.num_steps
    assert result["num_test"] == 72  # the whole split test[:72], nothing dropped
    assert (tmp_path / "checkpoints" / str(config.num_steps)).is_dir()

    # The restored classifier, applied to the split read independently (uint8, in order),
    # reproduces the trainer's evaluation.
    classifier = load_classifier(tmp_path)
    assert classifier.step == config.num_steps
    images, labels = read_split("mnist", config.data.eval_split, data_dir)
    logits, features = classifier.logits_and_features(images, batch_size=32)
    chex.assert_shape(logits, (72, config.model.num_classes))
    chex.assert_shape(features, (72, config.model.features))
    accuracy = conditional_accuracy(logits, labels, 10)["overall"]
    assert accuracy == pytest.approx(result["test_accuracy"])
    loss = np.mean(jax.nn.logsumexp(logits, -1) - logits[np.arange(72), labels])
    assert loss == pytest.approx(result["test_loss"], rel=1e-4)

    # uint8 input means x / 127.5 - 1; the batch size does not change the outputs.
    float_logits, float_features = classifier.logits_and_features(
        images.astype(np.float32) / 127.5 - 1, batch_size=7)
    chex.assert_trees_all_close((float_logits, float_features), (logits, features), atol=1e-5)
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 1\)"):
        classifier.logits_and_features(images[..., 0])
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        classifier.logits_and_features(images.astype(np.float32))


def test_eval_split_holds_every_example_as_the_pipeline_prepares_it():
    from jgan.data.images import _PrepareExample
    config = load_config("classifier_fashion_mnist")
    config.data.data_dir = require_shared_tfds()
    split = classifier_trainer.EvalSplit(config)
    source = tfds_source(config.data.name, split=config.data.eval_split,
                         data_dir=config.data.data_dir)
    assert split.images.shape == (len(source), 28, 28, 1) and split.images.dtype == np.float32
    assert split.labels.shape == (len(source),) and split.labels.dtype == np.int32
    prepare = _PrepareExample(28, 1)
    for i in (0, 1, len(source) // 2, len(source) - 1):
        want = prepare(source[i])
        np.testing.assert_array_equal(split.images[i], want["image"])
        assert split.labels[i] == want["label"]


def test_load_classifier_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        load_classifier(tmp_path / "nowhere")
    (tmp_path / "gan").mkdir()
    (tmp_path / "gan" / "config.json").write_text(json.dumps({"task": "gan"}))
    with pytest.raises(ValueError, match="not a classifier"):
        load_classifier(tmp_path / "gan")


@pytest.mark.parametrize("on_device", [False, True])
def test_fashion_runlocal_resumes_exactly(tmp_path, on_device):
    config = load_config("classifier_fashion_mnist")
    config.data.data_dir = require_shared_tfds()
    if on_device:  # the split in device memory, batches drawn there from the step
        config.data.on_device = True
        config.data.split = "train[:512]"
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    classifier_trainer.train_and_evaluate(config, straight)
    # A run killed after its middle checkpoint: everything later is lost.
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "checkpoints" / str(config.num_steps))
    (resumed / "eval.json").unlink()
    # metrics.jsonl still has the lost steps' lines: the resumed run must not repeat them.
    assert read_metrics(resumed)[-1]["step"] == config.num_steps
    result = classifier_trainer.train_and_evaluate(config, resumed)
    assert read_metrics(resumed) == read_metrics(straight)
    assert result == json.loads((straight / "eval.json").read_text())
    chex.assert_trees_all_equal(load_classifier(straight).variables,
                                load_classifier(resumed).variables)

    config.model.width = 8
    with pytest.raises(ConfigError, match=r"model\.width"):
        classifier_trainer.train_and_evaluate(config, resumed)


def test_short_training_beats_chance_by_far(tmp_path):
    """200 steps of a small network on MNIST: > 90% test accuracy (chance: 10%)."""
    config = load_config("classifier_mnist", "")
    config.data.data_dir = require_shared_tfds()
    config.data.eval_split = "test[:1000]"
    config.model.width = 8
    config.model.features = 64
    config.batch_size = 32
    config.num_steps = 200
    config.optimizer.warmup_steps = 10
    config.log_every = 50
    config.eval_every = 0
    config.checkpoint_every = 0
    result = classifier_trainer.train_and_evaluate(config, tmp_path)
    assert result["num_test"] == 1000
    assert result["test_accuracy"] > 0.9, result


# --- metrics ---------------------------------------------------------------------------

def test_conditional_accuracy_on_crafted_logits():
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 2, 1, 1, 0])  # class 0: 2/4, class 1: 2/2, class 2: 0/1
    logits = 5.0 * np.eye(4)[predicted]
    result = conditional_accuracy(logits, labels, num_classes=4)
    assert result["overall"] == pytest.approx(4 / 7)
    np.testing.assert_allclose(result["per_class"][:3], [0.5, 1.0, 0.0])
    assert np.isnan(result["per_class"][3])  # no sample asked for class 3
    with pytest.raises(ValueError, match="labels"):
        conditional_accuracy(logits, np.array([0, 4, 0, 0, 0, 0, 0]), num_classes=4)
    with pytest.raises(ValueError, match="labels"):
        conditional_accuracy(logits, labels[:-1], num_classes=4)
    with pytest.raises(ValueError, match="num_classes=5"):
        conditional_accuracy(logits, labels, num_classes=5)


def test_class_histogram_balanced_collapsed_and_partial():
    k = 10
    rng = np.random.default_rng(0)
    balanced = np.eye(k)[np.repeat(np.arange(k), 30)] + 0.1 * rng.normal(size=(300, k))
    result = class_histogram(balanced, k)
    assert result["counts"] == [30] * k and result["num_classes_seen"] == k
    np.testing.assert_allclose(result["fractions"], 0.1)
    assert result["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)

    collapsed = class_histogram(np.eye(k)[np.full(50, 3)], k)
    assert collapsed["counts"][3] == 50 and collapsed["num_classes_seen"] == 1
    assert collapsed["kl_to_uniform"] == pytest.approx(np.log(k))

    # Two classes, 3:1 -- KL = 3/4 log(10 * 3/4) + 1/4 log(10 * 1/4).
    partial = class_histogram(np.eye(k)[[0, 0, 0, 7]], k)
    assert partial["kl_to_uniform"] == pytest.approx(0.75 * np.log(7.5) + 0.25 * np.log(2.5))
    with pytest.raises(ValueError, match="num_classes=10"):
        class_histogram(np.zeros((4, 3)), k)


def test_classifier_frechet_distance_analytic_cases():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 6)) @ rng.normal(size=(6, 6)) + 1.0
    assert classifier_frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # A shift by c changes only the mean: d^2 = |c|^2.
    c = rng.normal(size=6)
    assert classifier_frechet_distance(a, a + c) == pytest.approx(np.sum(c ** 2), rel=1e-6)
    # Doubling: means mu, 2 mu and covariances S, 4 S (sqrt(S 4S) = 2S): d^2 = |mu|^2 + Tr S.
    mu, sigma = a.mean(0), np.cov(a, rowvar=False)
    assert classifier_frechet_distance(a, 2 * a) == pytest.approx(mu @ mu + np.trace(sigma),
                                                                  rel=1e-6)
    with pytest.raises(ValueError, match="same F"):
        classifier_frechet_distance(a, a[:, :5])
