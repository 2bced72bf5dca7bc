"""Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs").

IS = exp(E_x KL(p(y|x) || p(y))), with p(y) the mean of p(y|x) over the split. It is
computed on consecutive splits of the samples and reported as mean and std over them,
as in the paper's code. Any classifier's logits work; the number is comparable with
published ones only with the 2015 Inception network's 1008-way logits.
"""
from __future__ import annotations

import numpy as np
import scipy.special


def _split_score(log_probs: np.ndarray) -> float:
    """exp of the mean KL(p(y|x) || p(y)) for one split of `[n, K]` log-probabilities."""
    log_marginal = scipy.special.logsumexp(log_probs, axis=0) - np.log(log_probs.shape[0])
    # p log p with p = 0 contributes 0: exp(log_probs) underflows to exactly 0, log_probs stays finite.
    kl = np.sum(np.exp(log_probs) * (log_probs - log_marginal), axis=1)
    return float(np.exp(kl.mean()))


def inception_score(logits, *, num_splits: int = 10) -> dict:
    """Inception Score of `[N, K]` classifier logits: mean and std over splits.

        IS = exp( 1/n sum_x KL(p(y|x) || p(y)) ),   p(y) = 1/n sum_x p(y|x)

    p(y|x) = softmax(logits), taken in log space (log_softmax) for stability. As in
    Salimans et al.'s code, the samples are cut into `num_splits` consecutive splits of
    N // num_splits each (the last N mod num_splits samples are left out).

    Args:
      logits: `[N, K]` unnormalized log-probabilities of K classes.
      num_splits: number of splits; at most N.
    Returns:
      dict with `mean` and `std` (population std over splits) of IS as floats,
      `num_splits`, `num_samples` (the samples used).
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be [N, K], got shape {logits.shape}.")
    if not np.all(np.isfinite(logits)):
        raise ValueError("logits contain NaN or infinite values.")
    if num_splits < 1:
        raise ValueError(f"num_splits must be >= 1, got {num_splits}.")
    if logits.shape[0] < num_splits:
        raise ValueError(f"need at least num_splits = {num_splits} samples, got {logits.shape[0]}.")
    split_size = logits.shape[0] // num_splits
    log_probs = scipy.special.log_softmax(logits, axis=1)
    scores = np.array([_split_score(log_probs[i * split_size:(i + 1) * split_size])
                       for i in range(num_splits)])
    return {
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "num_splits": int(num_splits),
        "num_samples": int(split_size * num_splits),
    }
