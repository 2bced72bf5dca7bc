"""Mode coverage and sample quality on Gaussian mixtures (Lin et al. 2018, PacGAN).

The protocol of PacGAN's 2-D experiments (following VEEGAN, Srivastava et al. 2017):
draw 2,500 samples from the generator; assign each to its nearest mode in standardized
distance ||x - mu_k|| / sigma; a sample is *high quality* when that distance is below
3 (three standard deviations); a mode is *covered* when at least one high-quality
sample is assigned to it.
"""
from __future__ import annotations

import numpy as np

PROTOCOL_NUM_SAMPLES = 2500
PROTOCOL_THRESHOLD = 3.0


def mode_statistics(samples: np.ndarray, means: np.ndarray, std: float, *,
                    threshold: float = PROTOCOL_THRESHOLD) -> dict:
    """Modes covered and the share of high-quality samples.

    Args:
      samples: `[N, D]` generated points.
      means: `[K, D]` mixture means.
      std: the components' standard deviation.
      threshold: standardized distance below which a sample is high quality.
    Returns:
      dict with `modes` (int, covered modes), `high_quality` (float in [0, 1]),
      `mode_counts` (list of K ints, high-quality samples per mode),
      `kl_to_uniform` (KL(p || uniform) of the high-quality samples' mode histogram,
      nats; None when no sample is high quality), `num_samples`, `threshold`.
    """
    samples = np.asarray(samples, np.float64)
    means = np.asarray(means, np.float64)
    if samples.ndim != 2 or samples.shape[1] != means.shape[1]:
        raise ValueError(f"samples must be [N, {means.shape[1]}], got {samples.shape}.")
    dist = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=-1) / std
    nearest = np.argmin(dist, axis=1)
    good = dist[np.arange(len(samples)), nearest] < threshold
    counts = np.bincount(nearest[good], minlength=len(means))
    total = counts.sum()
    kl = None
    if total > 0:
        p = counts[counts > 0] / total
        kl = float(np.sum(p * np.log(p * len(means))))
    return {
        "modes": int(np.count_nonzero(counts)),
        "high_quality": float(good.mean()) if len(samples) else 0.0,
        "mode_counts": counts.tolist(),
        "kl_to_uniform": kl,
        "num_samples": int(len(samples)),
        "threshold": float(threshold),
    }
