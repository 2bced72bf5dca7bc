"""Mode count and KL on Stacked MNIST (Lin et al. 2018, PacGAN; Srivastava et al. 2017).

The protocol of PacGAN's Stacked MNIST tables (after VEEGAN): draw 26,000 samples
from the generator; classify each of the three channels with a pre-trained MNIST
classifier (argmax); the sample's mode is the digit triple
``100 * d_0 + 10 * d_1 + d_2`` (1,000 modes). Report

* ``modes``: the number of modes with at least one sample;
* ``kl``: ``KL(p || u) = sum_m p_m log(p_m / (1/1000)) = sum_m p_m log(1000 p_m)``
  (nats, terms with ``p_m = 0`` are 0), where ``p`` is the samples' mode histogram
  normalized and ``u`` uniform over the 1,000 modes.

PacGAN's text calls this the "reverse KL" between the generated mode distribution
and the uniform target; its code (fjxmlzn/PacGAN, ``stacked_MNIST_experiments``,
``model.py``: ``KLD(p, q)`` with ``p`` the generated histogram, ``q = 1/1000``)
computes exactly the formula above, so that is what is implemented.

The plug-in KL of a finite sample is biased upwards: for N samples of a uniform
generator ``E[kl] ~= 999 / (2 N)``, about 0.019 at N = 26,000.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["NUM_MODES", "PROTOCOL_NUM_SAMPLES", "histogram_statistics", "mode_histogram",
           "stacked_mnist_modes"]

NUM_MODES = 1000
PROTOCOL_NUM_SAMPLES = 26000


def mode_histogram(digits: np.ndarray) -> np.ndarray:
    """Samples per Stacked MNIST mode.

    Args:
      digits: int (N, 3), the digit of each channel (0..9).
    Returns:
      int64 (1000,): ``counts[m]`` = samples with ``100 d_0 + 10 d_1 + d_2 == m``.
    """
    digits = np.asarray(digits)
    if digits.ndim != 2 or digits.shape[1] != 3:
        raise ValueError(f"digits must be (N, 3), got shape {digits.shape}.")
    if not np.issubdtype(digits.dtype, np.integer):
        raise ValueError(f"digits must be integers, got dtype {digits.dtype}.")
    if digits.size and (digits.min() < 0 or digits.max() > 9):
        raise ValueError(f"digits must lie in 0..9, got range [{digits.min()}, {digits.max()}].")
    modes = digits.astype(np.int64) @ np.array([100, 10, 1])
    return np.bincount(modes, minlength=NUM_MODES)


def histogram_statistics(counts: np.ndarray) -> dict:
    """Modes covered and ``KL(p || uniform)`` of a mode histogram (PacGAN's two numbers).

    Args:
      counts: non-negative (K,) samples per mode (K = 1000 for Stacked MNIST).
    Returns:
      dict with ``modes`` (int, cells with count > 0) and ``kl``
      (``sum_m p_m log(K p_m)``, nats, ``p = counts / counts.sum()``; None when
      the histogram is empty).
    """
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"counts must be a non-empty 1-D histogram, got shape {counts.shape}.")
    if np.any(counts < 0):
        raise ValueError("counts must be non-negative.")
    total = counts.sum()
    kl = None
    if total > 0:
        p = counts[counts > 0] / total
        kl = float(np.sum(p * np.log(p * counts.size)))
    return {"modes": int(np.count_nonzero(counts)), "kl": kl}


def _as_model_input(samples: np.ndarray) -> np.ndarray:
    """uint8 -> x / 127.5 - 1; floats are taken as already in [-1, 1]."""
    if samples.dtype == np.uint8:
        return samples.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"samples must be uint8 or float in [-1, 1], got dtype {samples.dtype}.")
    return samples.astype(np.float32)


def _predicted_digits(outputs, num_images: int) -> np.ndarray:
    outputs = np.asarray(outputs)
    if outputs.shape == (num_images, 10):
        return np.argmax(outputs, axis=-1)
    if outputs.shape == (num_images,) and np.issubdtype(outputs.dtype, np.integer):
        return outputs
    raise ValueError(f"classify_digits must return int digits ({num_images},) or logits "
                     f"({num_images}, 10), got {outputs.dtype} {outputs.shape}.")


def stacked_mnist_modes(samples: np.ndarray, classify_digits: Callable, *,
                        expected_num_samples: int = PROTOCOL_NUM_SAMPLES,
                        batch_size: int = 1000) -> dict:
    """PacGAN's Stacked MNIST numbers: modes covered and KL to uniform (see module doc).

    Args:
      samples: (N, 28, 28, 3) generated images, float in [-1, 1] or uint8
        (mapped to ``x / 127.5 - 1``).
      classify_digits: callable from (M, 28, 28, 1) float32 images in [-1, 1] to
        predicted digits, int (M,), or logits (M, 10) (argmax taken); called on
        each channel separately, in batches of at most ``batch_size``.
      expected_num_samples: the protocol's sample count (26,000). Another N is
        still evaluated, and the protocol record says so.
      batch_size: images per ``classify_digits`` call.
    Returns:
      dict with ``modes`` (int, 0..1000), ``kl`` (float, nats; None for N = 0),
      ``num_samples`` (N) and ``protocol``: ``{name, expected_num_samples,
      follows_protocol (N == expected), warning (str or None)}``.
    """
    samples = np.asarray(samples)
    if samples.ndim != 4 or samples.shape[1:] != (28, 28, 3):
        raise ValueError(f"samples must be (N, 28, 28, 3) Stacked MNIST images, got shape "
                         f"{samples.shape}; resize 32x32 samples to 28x28 first.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    images = _as_model_input(samples)
    num = len(images)
    digits = np.zeros((num, 3), np.int64)
    for channel in range(3):
        for start in range(0, num, batch_size):
            chunk = images[start:start + batch_size, :, :, channel:channel + 1]
            digits[start:start + len(chunk), channel] = _predicted_digits(
                classify_digits(chunk), len(chunk))
    stats = histogram_statistics(mode_histogram(digits))
    warning = None
    if num != expected_num_samples:
        warning = (f"evaluated {num} samples, not the protocol's {expected_num_samples}; "
                   "modes and KL are not comparable with published numbers.")
    return {
        "modes": stats["modes"],
        "kl": stats["kl"],
        "num_samples": num,
        "protocol": {
            "name": "Stacked MNIST modes and KL(p || uniform), Lin et al. 2018 (PacGAN)",
            "expected_num_samples": int(expected_num_samples),
            "follows_protocol": num == expected_num_samples,
            "warning": warning,
        },
    }
