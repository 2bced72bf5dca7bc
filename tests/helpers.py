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
