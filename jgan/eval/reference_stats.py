"""A disk cache of reference feature statistics (the real side of FID).

Real-data statistics depend on the dataset, split, resolution, resize method, network
weights, feature layer and number of samples; the cache key holds all of them, the
file name shows them and ends with a short hash of the whole key, and every file
stores its key, which is checked on load.

The cache lives in `$JGAN_CACHE_DIR/fid_stats/`, by default `~/.cache/jgan/fid_stats/`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from jgan.eval.fid import GaussianStats

CACHE_DIR_ENV = "JGAN_CACHE_DIR"
DEFAULT_FEATURE = "inception_pool3"
KEY_FIELDS = ("dataset", "split", "resolution", "resize_method", "weights_sha256",
              "num_samples", "feature")
_METADATA_KEY = "reference_key"


def default_cache_dir() -> Path:
    """`$JGAN_CACHE_DIR` when set, else `~/.cache/jgan`."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "jgan")


def reference_stats_key(*, dataset: str, split: str, resolution, resize_method: str,
                        weights_sha256: str, num_samples: int | None,
                        feature: str = DEFAULT_FEATURE) -> dict:
    """The cache key as a plain JSON-native dict (so it reads back from JSON unchanged).

    Args:
      dataset: e.g. "mnist". split: e.g. "train" or "test[:5000]".
      resolution: side of the network's input images (int) or [height, width].
      resize_method: e.g. "bilinear", "pil_bicubic".
      weights_sha256: checksum of the feature network's weights.
      num_samples: number of real samples the statistics count; None for the whole split.
      feature: which features, e.g. "inception_pool3".
    """
    if isinstance(resolution, (list, tuple)):
        resolution = [int(v) for v in resolution]
    else:
        resolution = int(resolution)
    if num_samples is not None and int(num_samples) < 2:
        raise ValueError(f"num_samples must be >= 2 or None (all), got {num_samples}.")
    return {
        "dataset": str(dataset),
        "split": str(split),
        "resolution": resolution,
        "resize_method": str(resize_method),
        "weights_sha256": str(weights_sha256),
        "num_samples": None if num_samples is None else int(num_samples),
        "feature": str(feature),
    }


def _checked_key(key: dict) -> dict:
    if not isinstance(key, dict):
        raise TypeError(f"key must be a dict, got {type(key).__name__}.")
    unknown = sorted(set(key) - set(KEY_FIELDS))
    missing = sorted(set(KEY_FIELDS) - set(key) - {"feature"})
    if unknown or missing:
        raise ValueError(f"reference-statistics key: unknown fields {unknown}, missing fields "
                         f"{missing}; expected {list(KEY_FIELDS)}.")
    return reference_stats_key(**key)


def _file_name_part(value) -> str:
    if isinstance(value, list):
        value = "x".join(map(str, value))
    return re.sub(r"[^A-Za-z0-9._]+", "-", str(value)).strip("-") or "none"


def reference_stats_path(*, dataset: str, split: str, resolution, resize_method: str,
                         weights_sha256: str, num_samples: int | None,
                         feature: str = DEFAULT_FEATURE, cache_dir=None) -> Path:
    """Where the statistics of this key live: a readable name plus 12 hex digits of its hash.

    Arguments as in `reference_stats_key`; `cache_dir` overrides `default_cache_dir()`.
    Example: `~/.cache/jgan/fid_stats/mnist_test_299px_bilinear_inception_pool3_nall_3f2a...npz`.
    """
    key = reference_stats_key(dataset=dataset, split=split, resolution=resolution,
                              resize_method=resize_method, weights_sha256=weights_sha256,
                              num_samples=num_samples, feature=feature)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    count = "all" if key["num_samples"] is None else key["num_samples"]
    parts = [key["dataset"], key["split"], f"{_file_name_part(key['resolution'])}px",
             key["resize_method"], key["feature"], f"n{count}"]
    name = "_".join(_file_name_part(p) for p in parts) + f"_{digest}.npz"
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / "fid_stats" / name


def load_or_compute_reference_stats(key: dict, compute: Callable[[], GaussianStats], *,
                                    cache_dir=None) -> GaussianStats:
    """The cached statistics of `key`, computed by `compute()` and saved on the first call.

    The file is written atomically (temporary file, then rename) with the key in its
    metadata under "reference_key"; on load the stored key must equal `key`.

    Args:
      key: dict with the arguments of `reference_stats_key` (`feature` optional).
      compute: returns the `GaussianStats` of the reference features; with an integer
        `num_samples` in the key, their count must equal it.
      cache_dir: overrides `default_cache_dir()`.
    Returns:
      `GaussianStats` whose metadata holds the key, as read back from the file (the
      same values on the first call and on every later one).
    """
    key = _checked_key(key)
    path = reference_stats_path(**key, cache_dir=cache_dir)
    if path.exists():
        stats = GaussianStats.load(path)
        stored = stats.metadata.get(_METADATA_KEY)
        if stored != key:
            raise ValueError(f"{path} holds statistics for key {stored}, not the requested {key}; "
                             "delete the file to recompute it.")
        return stats
    stats = compute()
    if not isinstance(stats, GaussianStats):
        raise TypeError(f"compute() must return GaussianStats, got {type(stats).__name__}.")
    if key["num_samples"] is not None and stats.count != key["num_samples"]:
        raise ValueError(f"compute() counted {stats.count} features, the key says num_samples = "
                         f"{key['num_samples']}.")
    stats = dataclasses.replace(stats, metadata={**stats.metadata, _METADATA_KEY: key})
    stats.save(path)
    # What the file holds (mu, sigma) rebuilds the running sums with other roundings than
    # the computed ones: the first call returns what every later call will read, so a
    # score does not depend on whether the cache was warm.
    return GaussianStats.load(path)
