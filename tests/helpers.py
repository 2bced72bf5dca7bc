"""Paths and small utilities shared by the tests."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_TFDS = REPO_ROOT.parent / "shared" / "data" / "tfds"
CONFIGS = REPO_ROOT / "experiments" / "configs"


def load_config(name: str, arg: str = "runlocal"):
    """`experiments/configs/NAME.py`'s `get_config(arg)`, without a progress bar."""
    spec = importlib.util.spec_from_file_location(name, CONFIGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg)
    config.progress_bar = False
    return config


def require_shared_tfds() -> str:
    """The offline TFDS dir, or skip: these tests need ../shared/data (never download)."""
    if not (SHARED_TFDS / "mnist").is_dir():
        pytest.skip(f"offline datasets not found at {SHARED_TFDS} (../shared/data is absent)")
    return str(SHARED_TFDS)


SHARED_FID_WEIGHTS = (REPO_ROOT.parent / "shared" / "data" / "fid"
                      / "inception_v3_fid_pool3_pytorchfid_names.npz")


def require_shared_fid_weights() -> str:
    """The offline FID Inception weights (.npz), or skip: never download them in tests."""
    if not SHARED_FID_WEIGHTS.is_file():
        pytest.skip(f"FID Inception weights not found at {SHARED_FID_WEIGHTS} "
                    "(../shared/data is absent)")
    return str(SHARED_FID_WEIGHTS)


def assert_results_close(actual, expected, *, rel: float, path: str = "result") -> None:
    """Asserts two JSON-like results (dicts, lists, numbers, strings) are equal, floats to
    a relative tolerance `rel` (and an absolute one of `rel` near 0); names the first
    differing entry."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), (
            f"{path}: keys {sorted(actual) if isinstance(actual, dict) else actual} "
            f"!= {sorted(expected)}")
        for key in expected:
            assert_results_close(actual[key], expected[key], rel=rel, path=f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(expected), (
            f"{path}: {actual!r} != {expected!r}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_results_close(a, e, rel=rel, path=f"{path}[{i}]")
    elif isinstance(expected, (float, np.floating)) and not isinstance(actual, bool):
        assert actual == pytest.approx(expected, rel=rel, abs=rel), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
