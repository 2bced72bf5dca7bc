"""The encoder families' representation evaluation (jgan.families.representation): the
probe equals jgan.eval.probe on the same features and an independent k-NN, perfect
reconstructions score as the originals do (agreement = the classifier's accuracy,
distance 0), and damaged ones score worse."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from jgan.eval import probe as probe_lib
from jgan.families import encoder_decoder as ed
from jgan.families import representation
from jgan.train import classifier_trainer
from tests.helpers import load_config, require_shared_tfds

NUM_TEST = 60


@pytest.fixture(scope="module")
def classifier_workdir(tmp_path_factory):
    config = load_config("classifier_mnist", "runlocal")
    config.data.data_dir = require_shared_tfds()
    # Long enough to read digits (about 80 %): damaged reconstructions must lose labels.
    config.num_steps, config.batch_size = 150, 64
    config.log_every, config.eval_every, config.checkpoint_every = 50, 0, 150
    workdir = tmp_path_factory.mktemp("classifier")
    classifier_trainer.train_and_evaluate(config, workdir)
    return str(workdir)


def pixels(state, x):
    del state
    return x.reshape(x.shape[0], -1)


def make(classifier_workdir, metrics: str = "classifier_fd"):
    config = load_config("autoencoder", "mnist,runlocal")
    config.data.data_dir = require_shared_tfds()
    config.eval.probe_train = 300
    config.eval.classifier_workdir = classifier_workdir
    config.eval.metrics = metrics
    config.eval.num_real = NUM_TEST   # the reference: the same first test images
    evaluation = representation.RepresentationEvaluation(config, features=jax.jit(pixels),
                                                         batch_size=25)
    x, labels = ed.labelled_examples(config, NUM_TEST, split="test")
    return config, evaluation, x, labels


def weighted_knn(train_x, train_y, test_x, k: int, temperature: float) -> np.ndarray:
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    similarity = unit(test_x) @ unit(train_x).T
    predictions = []
    for row in similarity:
        nearest = np.argsort(-row, kind="stable")[:k]
        votes = np.zeros(10)
        np.add.at(votes, train_y[nearest], np.exp((row[nearest] - row[nearest].max()) / temperature))
        predictions.append(np.argmax(votes))
    return np.array(predictions)


def test_probe_is_jgan_eval_probe_on_the_features(classifier_workdir):
    config, evaluation, x, labels = make(classifier_workdir)
    result = evaluation(None, x, labels, None)
    assert set(result) == {"probe"}
    probe = result["probe"]
    train_x, train_y = ed.labelled_examples(config, 300, split="train")
    train_f, test_f = train_x.reshape(300, -1), x.reshape(NUM_TEST, -1)
    assert probe["linear"] == probe_lib.linear_probe(train_f, train_y, test_f, labels, l2=1e-4)
    bn_train, bn_test = probe_lib.readout(train_f, test_f, "bn_crelu")
    assert probe["linear_bn_crelu"] == probe_lib.linear_probe(bn_train, train_y, bn_test,
                                                              labels, l2=1e-4)
    knn = np.mean(weighted_knn(train_f, train_y, test_f, k=20, temperature=0.07) == labels)
    assert probe["knn_top1"] == pytest.approx(knn)
    assert probe["knn_top1"] > 0.5 and probe["linear"]["top1"] > 0.5   # pixels of MNIST
    assert (probe["num_train"], probe["num_test"], probe["feature_dim"]) == (300, NUM_TEST, 784)


def test_perfect_reconstructions_score_as_the_originals(classifier_workdir):
    _, evaluation, x, labels = make(classifier_workdir)
    scored = evaluation.reconstructions(x, labels, x)
    assert scored["label_agreement"] == scored["classifier_accuracy_on_originals"] > 0.5
    assert abs(scored["metrics"]["classifier_fd"]["value"]) < 1e-3
    # Reconstructions that lose the digit: fewer keep their label, farther from the data.
    damaged = evaluation.reconstructions(x, labels, np.roll(x, 1, axis=0)[:, ::-1])
    assert damaged["label_agreement"] < scored["label_agreement"]
    assert damaged["metrics"]["classifier_fd"]["value"] > 1.0
    assert representation.summary({"reconstructions": damaged}) == {
        "eval/reconstruction_label_agreement": damaged["label_agreement"],
        "eval/reconstruction_classifier_fd": damaged["metrics"]["classifier_fd"]["value"]}


def test_without_a_classifier_or_metric_reconstructions_are_not_scored(classifier_workdir):
    config, _, x, labels = make(classifier_workdir)
    config.eval.classifier_workdir = ""
    config.eval.metrics = "classifier_is"     # no reference to compare reconstructions with
    evaluation = representation.RepresentationEvaluation(config, features=jax.jit(pixels),
                                                         batch_size=25)
    assert evaluation.reconstructions(x, labels, x) == {}
