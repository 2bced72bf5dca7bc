"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs").

KID is the squared maximum mean discrepancy between two feature sets under the cubic
polynomial kernel k(x, y) = (x . y / D + 1)^3, estimated without bias on random
subsets and averaged over them, as in clean-fid's and StyleGAN2-ADA's implementations.
"""
from __future__ import annotations

import numpy as np

from jgan.eval.fid import checked_feature_pair


def _polynomial_kernel_sums(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Sums of k over the off-diagonal of K_xx, the off-diagonal of K_yy, and all of K_xy."""
    dim = x.shape[1]

    def kernel(gram):
        base = gram.astype(np.float64, copy=False)  # the product's own array: safe to modify.
        base /= dim
        base += 1.0
        cube = base * base  # in place and by products: ~2x faster than ** 3 on 1000 x 1000.
        cube *= base
        return cube

    # x @ x.T with the same buffer lets numpy call BLAS syrk, half the work of a matmul.
    k_xx, k_yy, k_xy = kernel(x @ x.T), kernel(y @ y.T), kernel(x @ y.T)
    return (k_xx.sum() - np.trace(k_xx), k_yy.sum() - np.trace(k_yy), k_xy.sum())


def kernel_inception_distance(features_a, features_b, *, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> dict:
    """KID: the unbiased MMD^2 estimate, mean and std over random subsets.

    On each subset, m points x_i of A and m points y_j of B drawn without replacement,

        MMD^2_u = 1/(m(m-1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)]
                  - 2/m^2 sum_{i, j} k(x_i, y_j),     k(x, y) = (x . y / D + 1)^3,

    an unbiased estimate of MMD^2 (Binkowski et al. 2018, eq. 3; Gretton et al. 2012).

    The Gram products run in float32 when both inputs are float32 (float32 BLAS, as the
    reference implementations do), in float64 otherwise; the kernel and sums in float64.

    Args:
      features_a, features_b: `[N_a, D]` and `[N_b, D]` features (e.g. real and generated).
      num_subsets: number of random subsets averaged over.
      subset_size: m; clipped to min(N_a, N_b), and the value used is returned.
      seed: seed of the subset draws (numpy's default_rng), so results are reproducible.
    Returns:
      dict with `mean` and `std` (population std over subsets) of MMD^2_u as floats,
      `num_subsets`, `subset_size` (the m used), `num_a`, `num_b`.
    """
    a, b = checked_feature_pair(features_a, features_b, ("features_a", "features_b"))
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}.")
    m = min(int(subset_size), a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError(f"KID needs subsets of at least 2 points; subset_size {subset_size}, "
                         f"N_a {a.shape[0]}, N_b {b.shape[0]}.")
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets, np.float64)
    for s in range(num_subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        sum_xx, sum_yy, sum_xy = _polynomial_kernel_sums(x, y)
        estimates[s] = (sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * sum_xy / (m * m)
    return {
        "mean": float(estimates.mean()),
        "std": float(estimates.std()),
        "num_subsets": int(num_subsets),
        "subset_size": int(m),
        "num_a": int(a.shape[0]),
        "num_b": int(b.shape[0]),
    }
