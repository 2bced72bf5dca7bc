"""Paths and small utilities shared by the tests."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_TFDS = REPO_ROOT.parent / "shared" / "data" / "tfds"


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
