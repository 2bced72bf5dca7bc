"""Tests for jgan.eval.protocol: the record survives JSON and rejects what would not."""
from __future__ import annotations

import json

import numpy as np
import pytest

from jgan.eval.protocol import protocol_record


def test_record_holds_every_field_and_survives_json():
    record = protocol_record(metric="kid", num_generated=np.int64(10_000), num_real=5000,
                             reference="mnist/test", resize_method="bilinear",
                             weights_sha256="ab" * 32, num_subsets=100, subset_size=1000)
    assert json.loads(json.dumps(record)) == record
    assert record == {"metric": "kid", "num_generated": 10_000, "num_real": 5000,
                      "reference": "mnist/test", "resize_method": "bilinear",
                      "weights_sha256": "ab" * 32, "num_subsets": 100, "subset_size": 1000}
    assert type(record["num_generated"]) is int


def test_rejects_bad_counts_and_unserializable_extras():
    common = {"metric": "fid", "reference": "mnist/test", "resize_method": "bilinear",
              "weights_sha256": None}
    with pytest.raises(ValueError, match="num_generated"):
        protocol_record(**common, num_generated=2.5, num_real=10)
    with pytest.raises(ValueError, match="num_real"):
        protocol_record(**common, num_generated=10, num_real=-1)
    with pytest.raises(TypeError, match="'k'"):
        protocol_record(**common, num_generated=10, num_real=None, k=np.int64(3))
