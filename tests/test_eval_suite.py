"""The evaluation suite end to end: settings, in-training metrics, the jgan.evaluate CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from jgan.eval import suite
from jgan.runs import evaluate_run
from jgan.train import builders, trainer
from tests.helpers import REPO_ROOT, load_config, require_shared_fid_weights, require_shared_tfds
from tests.test_experiments import read_metrics


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("JGAN_CACHE_DIR", str(path))
    return path


def _settings(**kw):
    defaults = dict(metrics=("fid",), dataset="mnist", split="test", resolution=28, channels=1)
    return suite.EvalSettings(**{**defaults, **kw})


def test_parse_metrics():
    assert suite.parse_metrics(" fid, kid,pr ,fid") == ("fid", "kid", "pr")
    assert suite.parse_metrics("") == ()
    with pytest.raises(suite.EvalError, match="'fdi'"):
        suite.parse_metrics("fid,fdi")


def test_config_errors_name_the_key():
    config = load_config("dcgan_mnist")
    config.eval.metrics = "fid,bogus"
    with pytest.raises(builders.ConfigError, match="config.eval.*bogus"):
        builders.validate(config)
    config.eval.metrics = "classifier_fd"
    with pytest.raises(builders.ConfigError, match="classifier_workdir"):
        builders.validate(config)
    mixture = load_config("mixture", "ring,non_saturating,runlocal")
    mixture.eval.metrics = "fid"
    with pytest.raises(builders.ConfigError, match="data.kind='mixture'"):
        builders.validate(mixture)
    config.eval.metrics = "stacked_mnist"
    config.eval.classifier_workdir = "/somewhere"
    with pytest.raises(builders.ConfigError, match="3-channel"):
        builders.validate(config)
    stacked = load_config("dcgan_stacked_mnist")
    stacked.eval.classifier_workdir = "/somewhere"
    stacked.eval.metrics = "stacked_mnist"
    builders.validate(stacked)
    stacked.eval.metrics = "stacked_mnist,class_histogram"
    with pytest.raises(builders.ConfigError, match="class_histogram"):
        builders.validate(stacked)


def test_real_images_match_the_split():
    data_dir = require_shared_tfds()
    from jgan.data.images import tfds_source
    images = suite.real_images(_settings(data_dir=data_dir), 5)
    source = tfds_source("mnist", split="test", data_dir=data_dir)
    np.testing.assert_array_equal(images, np.stack([source[i]["image"] for i in range(5)]))
    rgb32 = suite.real_images(_settings(data_dir=data_dir, resolution=32, channels=3), 2)
    assert rgb32.shape == (2, 32, 32, 3) and rgb32.dtype == np.uint8
    assert np.array_equal(rgb32[..., 0], rgb32[..., 2])
    with pytest.raises(suite.EvalError, match="only 10000 examples"):
        suite.real_images(_settings(data_dir=data_dir), 10001)


def test_padded_and_resized_references_have_separate_cache_keys():
    from jgan.eval.reference_stats import reference_stats_path
    paths = {}
    for resize in ("bicubic", "pad"):
        evaluator = suite.Evaluator(_settings(resolution=32, data_resize=resize),
                                    log=lambda _: None)
        evaluator._weights_sha = "0" * 64   # as after loading the weights
        paths[resize] = reference_stats_path(**evaluator._reference_key())
    assert paths["bicubic"] != paths["pad"] and "mnist-pad_test_32px" in paths["pad"].name


def test_real_images_as_samples_score_as_the_reference(cache_dir):
    """The whole pipeline, with the reference split's own images as the 'samples':
    FID 0, precision = recall = coverage = 1 (the identical-set fixed points)."""
    data_dir = require_shared_tfds()
    weights = require_shared_fid_weights()
    settings = _settings(metrics=("fid", "kid", "pr"), data_dir=data_dir, num_samples=24,
                         num_real=24, inception_weights=weights, batch_size=8,
                         kid_subset_size=12, kid_subsets=10)
    evaluator = suite.Evaluator(settings, log=lambda _: None)
    real = suite.real_images(settings, 24).astype(np.float32) / 127.5 - 1.0
    results = evaluator.evaluate(iter([real[:10], real[10:20], real[20:]]))
    assert abs(results["fid"]["value"]) < 1e-3
    assert results["pr"]["precision"] == results["pr"]["recall"] == 1.0
    assert results["pr"]["coverage"] == 1.0
    protocol = results["fid"]["protocol"]
    assert protocol["num_generated"] == protocol["num_real"] == 24
    assert protocol["reference"] == "mnist/test" and protocol["resize_method"] == "pil_bicubic"
    assert len(protocol["weights_sha256"]) == 64
    # The reference side is cached on disk: a new evaluator reads it back.
    assert list((cache_dir / "fid_stats").glob("mnist_test_*.npz"))
    again = suite.Evaluator(settings, log=lambda _: None).evaluate(iter([real]))
    assert abs(again["fid"]["value"]) < 1e-3
    # Different images score worse.
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)
    worse = suite.Evaluator(settings, log=lambda _: None).evaluate(iter([noise]))
    assert worse["fid"]["value"] > 100 and worse["pr"]["precision"] < 0.5


def test_sampler_shape_and_count_are_checked():
    weights = require_shared_fid_weights()
    evaluator = suite.Evaluator(_settings(num_samples=4, inception_weights=weights),
                                log=lambda _: None)
    with pytest.raises(suite.EvalError, match=r"shape \(2, 32, 32, 1\)"):
        evaluator.evaluate(iter([np.zeros((2, 32, 32, 1), np.float32)]))
    with pytest.raises(suite.EvalError, match="gave 2 images"):
        evaluator.evaluate(iter([np.zeros((2, 28, 28, 1), np.float32)]))


def test_training_logs_metrics_and_cli_evaluates_checkpoint(tmp_path, cache_dir):
    data_dir = require_shared_tfds()
    weights = require_shared_fid_weights()
    config = load_config("dcgan_mnist")
    config.data.data_dir = data_dir
    config.eval.metrics = "fid,kid"
    config.eval.every = 2
    config.eval.num_samples = 16
    config.eval.num_real = 16
    config.eval.batch_size = 8
    config.eval.inception_weights = weights
    result = trainer.train_and_evaluate(config, tmp_path / "run")
    assert result["metrics"]["fid"]["value"] > 0
    assert result["metrics"]["kid"]["protocol"]["num_generated"] == 16
    logged = [m for m in read_metrics(tmp_path / "run") if "eval/fid" in m]
    assert [m["step"] for m in logged] == [2, 4]
    assert logged[-1]["eval/fid"] == pytest.approx(result["metrics"]["fid"]["value"])
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["metrics"]["fid"]
    # Rerunning the finished run (or one killed before eval.json) changes nothing.
    outputs = [(tmp_path / "run" / name).read_text() for name in ("eval.json", "metrics.jsonl")]
    trainer.train_and_evaluate(config, tmp_path / "run")
    assert [(tmp_path / "run" / name).read_text()
            for name in ("eval.json", "metrics.jsonl")] == outputs

    # The same numbers from the checkpoint: same latents, same weights.
    again = evaluate_run(tmp_path / "run", overrides={"metrics": "fid"})
    assert again["step"] == 4 and again["ema"] is True
    assert again["metrics"]["fid"]["value"] == pytest.approx(result["metrics"]["fid"]["value"],
                                                             rel=1e-6)

    out = tmp_path / "eval.json"
    proc = subprocess.run(
        [sys.executable, "-m", "jgan.evaluate", f"--workdir={tmp_path / 'run'}",
         "--metrics=fid,pr", "--num_samples=16", "--num_real=16", "--batch_size=8",
         f"--inception_weights={weights}", f"--out={out}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = json.loads(out.read_text())
    assert set(written["metrics"]) == {"fid", "pr"}
    assert written["metrics"]["pr"]["protocol"]["num_real"] == 16

    bad = subprocess.run([sys.executable, "-m", "jgan.evaluate", f"--workdir={tmp_path / 'run'}",
                          "--metrics=fid,nope"], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode != 0 and "nope" in bad.stderr
