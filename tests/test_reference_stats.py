"""Tests for jgan.eval.reference_stats: cache paths, compute-once, key checks."""
from __future__ import annotations

import shutil

import chex
import numpy as np
import pytest

from jgan.eval.fid import GaussianStats
from jgan.eval.reference_stats import (
    default_cache_dir,
    load_or_compute_reference_stats,
    reference_stats_path,
)

KEY = {"dataset": "mnist", "split": "test", "resolution": 299, "resize_method": "bilinear",
       "weights_sha256": "ab" * 32, "num_samples": 100}


def _counting_compute(features):
    calls = []

    def compute():
        calls.append(1)
        return GaussianStats.from_features(features)

    return compute, calls


def test_path_is_readable_distinct_per_field_and_under_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("JGAN_CACHE_DIR", str(tmp_path))
    path = reference_stats_path(**KEY)
    assert path.parent == tmp_path / "fid_stats" and path.suffix == ".npz"
    assert path.name.startswith("mnist_test_299px_bilinear_inception_pool3_n100_")
    assert path == reference_stats_path(**KEY, feature="inception_pool3")
    changes = {"dataset": "fashion_mnist", "split": "train", "resolution": 64,
               "resize_method": "pil_bicubic", "weights_sha256": "cd" * 32, "num_samples": None,
               "feature": "inception_logits"}
    paths = {reference_stats_path(**{**KEY, field: value}) for field, value in changes.items()}
    assert len(paths) == len(changes) and path not in paths
    odd = reference_stats_path(**{**KEY, "split": "train[:10%]/x", "resolution": (32, 48)})
    assert odd.parent == path.parent and "train-10" in odd.name and "32x48px" in odd.name


def test_default_cache_dir_is_under_home(tmp_path, monkeypatch):
    monkeypatch.delenv("JGAN_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "jgan"


def test_computes_once_then_reloads(tmp_path):
    features = np.random.default_rng(0).standard_normal((100, 6))
    compute, calls = _counting_compute(features)
    first = load_or_compute_reference_stats(KEY, compute, cache_dir=tmp_path)
    second = load_or_compute_reference_stats(KEY, compute, cache_dir=tmp_path)
    assert len(calls) == 1
    path = reference_stats_path(**KEY, cache_dir=tmp_path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left.
    assert second.count == first.count == 100
    chex.assert_trees_all_close((second.mean, second.covariance),
                                (features.mean(axis=0), np.cov(features, rowvar=False)),
                                rtol=0, atol=1e-12)
    assert second.metadata["reference_key"] == {**KEY, "feature": "inception_pool3"}
    # A score must not depend on whether the cache was warm: bitwise the same moments.
    chex.assert_trees_all_equal((first.count, first.sum, first.sum_outer),
                                (second.count, second.sum, second.sum_outer))


def test_rejects_a_file_stored_under_another_key(tmp_path):
    compute, _ = _counting_compute(np.random.default_rng(1).standard_normal((100, 4)))
    load_or_compute_reference_stats(KEY, compute, cache_dir=tmp_path)
    other = {**KEY, "split": "train"}
    shutil.copy(reference_stats_path(**KEY, cache_dir=tmp_path),
                reference_stats_path(**other, cache_dir=tmp_path))
    with pytest.raises(ValueError, match="not the requested"):
        load_or_compute_reference_stats(other, compute, cache_dir=tmp_path)


def test_rejects_bad_keys_and_computations(tmp_path):
    compute, calls = _counting_compute(np.ones((50, 3)) + np.arange(50)[:, None])
    with pytest.raises(ValueError, match="num_samples = 100"):
        load_or_compute_reference_stats(KEY, compute, cache_dir=tmp_path)
    assert not (tmp_path / "fid_stats").exists() or not any((tmp_path / "fid_stats").iterdir())
    with pytest.raises(ValueError, match=r"unknown fields \['size'\]"):
        load_or_compute_reference_stats({**KEY, "size": 3}, compute, cache_dir=tmp_path)
    incomplete = {k: v for k, v in KEY.items() if k != "split"}
    with pytest.raises(ValueError, match=r"missing fields \['split'\]"):
        load_or_compute_reference_stats(incomplete, compute, cache_dir=tmp_path)
    with pytest.raises(TypeError, match="must return GaussianStats"):
        load_or_compute_reference_stats({**KEY, "num_samples": None}, lambda: np.zeros(3),
                                        cache_dir=tmp_path)
    assert len(calls) == 1
