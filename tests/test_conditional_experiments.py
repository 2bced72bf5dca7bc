"""The conditional configs end to end: training, class-per-row grids, the family
metrics in eval.json, and `jgan.sample` with labels and codes."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from experiments.configs import conditional
from jgan.eval.classifier import load_classifier
from jgan.runs import evaluate_run
from jgan.families.sampling import GeneratorInputs
from jgan.sample import draw
from jgan.train import classifier_trainer, trainer
from tests.helpers import (
    assert_results_close, load_config, require_shared_fid_weights, require_shared_tfds)


@pytest.fixture(scope="module")
def classifier_workdir(tmp_path_factory):
    data_dir = require_shared_tfds()
    config = load_config("classifier_mnist", "runlocal")
    config.data.data_dir = data_dir
    workdir = tmp_path_factory.mktemp("classifier")
    classifier_trainer.train_and_evaluate(config, workdir)
    return str(workdir)


def grid_rows(path, size: int = 28) -> int:
    return (np.asarray(Image.open(path)).shape[0] - 1) // (size + 1)


@pytest.mark.parametrize("variant", [f"{family},mnist" for family in conditional.FAMILIES]
                         + ["infogan,mnist,augmented"])
def test_conditional_configs_run_end_to_end(tmp_path, variant, classifier_workdir, monkeypatch):
    family = variant.split(",")[0]
    config = load_config("conditional", f"{variant},runlocal")
    config.data.data_dir = require_shared_tfds()
    config.eval.metrics = "classifier_fd"
    config.eval.classifier_workdir = classifier_workdir
    config.eval.num_samples = 40
    config.eval.num_real = 60
    result = trainer.train_and_evaluate(config, tmp_path)
    saved = json.loads((tmp_path / "eval.json").read_text())
    family_metrics = saved["family_metrics"]
    assert result["family_metrics"].keys() == family_metrics.keys()
    if family == "infogan":
        code = family_metrics["categorical_code"]
        assert 0.0 <= code["accuracy"] <= 1.0 and len(code["mapping"]) == 10
        assert len(family_metrics["continuous_codes"]["pearson"]) == 2
    else:
        assert 0.0 <= family_metrics["accuracy"] <= 1.0
        assert len(family_metrics["per_class_accuracy"]) == 10
        assert len(family_metrics["per_class_classifier_fd"]) == 10
    # A row per class (per value of InfoGAN's categorical code) in the sample grids.
    grid = tmp_path / "samples" / f"step_{config.num_steps:07d}.png"
    assert grid_rows(grid) == 10
    # The checkpoint re-evaluated (jgan.evaluate) gives the trainer's numbers: same inputs.
    # Not bitwise: the trainer generates over the run's mesh (here 8 fake devices, each a
    # slice of the batch), jgan.evaluate on one device; the compiled shapes differ, so
    # results agree to float32 rounding (observed: 1e-9 relative) and are compared to
    # 1e-6. Its metric samples and family samples share one compiled generator: no input
    # shape is traced twice.
    traced_shapes = []
    generate = GeneratorInputs.generate

    def recording_generate(self, nets, inputs):
        traced_shapes.append(tuple(sorted((k, v.shape) for k, v in inputs.items())))
        return generate(self, nets, inputs)
    monkeypatch.setattr(GeneratorInputs, "generate", recording_generate)
    again = evaluate_run(tmp_path)
    monkeypatch.undo()
    assert traced_shapes and len(traced_shapes) == len(set(traced_shapes)), traced_shapes
    assert_results_close(again["family_metrics"], json.loads(json.dumps(result["family_metrics"])),
                         rel=1e-6)
    assert_results_close(again["metrics"], saved["metrics"], rel=1e-6)
    standing = evaluate_run(tmp_path, standing_stats=2)
    assert standing["standing_stats"] == 2 and standing["family_metrics"].keys() == \
        family_metrics.keys()


def test_padded_32px_projection_run_is_scored_during_and_after_training(tmp_path):
    # Fashion-MNIST padded to 32x32x3 for the CIFAR-sized ResNet, scored by a
    # classifier trained on the same padded images (classifier_fashion_mnist.py:pad32).
    data_dir = require_shared_tfds()
    classifier_config = load_config("classifier_fashion_mnist", "runlocal,pad32")
    classifier_config.data.data_dir = data_dir
    classifier_trainer.train_and_evaluate(classifier_config, tmp_path / "classifier")
    assert load_classifier(tmp_path / "classifier").image_shape == (32, 32, 3)
    config = load_config("conditional", "projection,fashion_mnist32,runlocal")
    config.data.data_dir = data_dir
    config.eval.metrics = "classifier_fd"
    config.eval.classifier_workdir = str(tmp_path / "classifier")
    config.eval.num_samples = 40
    # The first 60 Fashion-MNIST test images hold one 8 (a per-class FD needs two);
    # the first 100 hold at least 3 of every class.
    config.eval.num_real = 100
    config.eval.every = 2  # one evaluation during training, then the final one
    result = trainer.train_and_evaluate(config, tmp_path / "run")
    assert len(result["family_metrics"]["per_class_accuracy"]) == 10
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    scored = [m for m in lines if "eval/conditional_accuracy" in m]
    assert [m["step"] for m in scored] == [2, config.num_steps]
    assert scored[-1]["eval/conditional_accuracy"] == result["family_metrics"]["accuracy"]


def test_per_class_fid_during_training_reads_the_real_images_once(tmp_path, monkeypatch,
                                                                   classifier_workdir):
    from jgan.families import evaluation as family_eval

    calls = []
    pool3 = family_eval._pool3
    monkeypatch.setattr(family_eval, "_pool3",
                        lambda evaluator, images: calls.append(len(images)) or pool3(evaluator, images))
    config = load_config("conditional", "cgan,mnist,runlocal")
    config.data.data_dir = require_shared_tfds()
    config.eval.metrics = "classifier_fd,fid"
    config.eval.inception_weights = require_shared_fid_weights()
    config.eval.classifier_workdir = classifier_workdir
    config.eval.num_samples = 20
    config.eval.num_real = 60  # >= 2 test images of every class
    config.eval.batch_size = 10
    config.eval.every = 2  # one evaluation during training, then the final one
    result = trainer.train_and_evaluate(config, tmp_path)
    assert len(result["family_metrics"]["per_class_fid"]) == 10
    # Two evaluations of the 20 samples, one of the 60 real images.
    assert sorted(calls) == [20, 20, 60]


def test_sample_cli_takes_labels_and_codes(tmp_path):
    data_dir = require_shared_tfds()
    for family in ("cgan", "infogan"):
        config = load_config("conditional", f"{family},mnist,runlocal")
        config.data.data_dir = data_dir
        if family == "infogan":  # z as InfoGAN's released code draws it
            config.model.noise_distribution = "uniform"
        trainer.train_and_evaluate(config, tmp_path / family)
    out = tmp_path / "labels.png"
    draw(tmp_path / "cgan", num=8, out=out, labels=["3", "7"])
    assert grid_rows(out) == 2
    with pytest.raises(ValueError, match=r"\[12\]"):
        draw(tmp_path / "cgan", num=8, out=out, labels=["12"])
    sweep = tmp_path / "sweep.png"
    draw(tmp_path / "infogan", num=40, out=sweep, vary="continuous1")
    assert grid_rows(sweep) == 10
    held = draw(tmp_path / "infogan", num=20, out=tmp_path / "held.png", vary="continuous0",
                codes=["categorical0=3"])
    rows = held[1:].reshape(10, 29, -1, held.shape[-1])[:, :28]
    # Every row has code value 3 now, and the same noise and continuous sweep: equal rows.
    np.testing.assert_array_equal(rows[0], rows[9])
    strips = tmp_path / "strips.png"  # uniform z: straight lines inside the cube
    draw(tmp_path / "infogan", num=16, out=strips, interpolate=True, interpolation_steps=8)
    assert grid_rows(strips) == 2
    with pytest.raises(ValueError, match="categorical5"):
        draw(tmp_path / "infogan", num=20, out=sweep, codes=["categorical5=1"])


@pytest.mark.parametrize("arg,message", [
    ("cgan,mnist,augmented", "option of the infogan family only"),
    ("infogan,mnist,augmneted", r"\[,augmented\]\[,runlocal\]', got 'infogan,mnist,augmneted'"),
    ("infogan", "got 'infogan'")])
def test_bad_conditional_config_arguments_are_named(arg, message):
    with pytest.raises(ValueError, match=message):
        conditional.get_config(arg)
