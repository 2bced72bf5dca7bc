"""The protocol record each evaluation result carries, so numbers stay comparable.

FID and its kin change with the number of samples, the reference split, the resize
method and the network's weights (Parmar et al. 2022, "On Aliased Resizing and
Surprising Subtleties in GAN Evaluation"); a result without them cannot be compared.
"""
from __future__ import annotations

import json


def protocol_record(*, metric: str, num_generated: int, num_real: int | None, reference: str,
                    resize_method: str, weights_sha256: str | None, **extra) -> dict:
    """A JSON-serializable dict describing how a metric was measured.

    Args:
      metric: the metric's name, e.g. "fid", "kid", "inception_score", "prdc".
      num_generated: generated samples used.
      num_real: real samples used (None for metrics without a real set, e.g. IS).
      reference: the real data's dataset and split, e.g. "mnist/test", or
        "folder:/abs/path" for an image folder.
      resize_method: how images were resized for the feature network, e.g. "bilinear".
      weights_sha256: sha256 of the feature network's weights (None if not applicable).
      **extra: further settings (e.g. num_subsets, k); must be JSON-serializable.
    Returns:
      the dict of all the above.
    """
    for name, count in (("num_generated", num_generated), ("num_real", num_real)):
        if count is not None and (isinstance(count, bool) or int(count) != count or count < 0):
            raise ValueError(f"{name} must be a non-negative integer, got {count!r}.")
    record = {
        "metric": str(metric),
        "num_generated": int(num_generated),
        "num_real": None if num_real is None else int(num_real),
        "reference": str(reference),
        "resize_method": str(resize_method),
        "weights_sha256": None if weights_sha256 is None else str(weights_sha256),
        **extra,
    }
    for name, value in extra.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as error:
            raise TypeError(f"protocol_record field {name!r} is not JSON-serializable: {error}") from None
    return record
