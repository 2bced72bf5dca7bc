"""Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020).

Both pairs estimate each set's manifold by k-nearest-neighbour balls: around every
feature vector, the ball whose radius is the distance to its k-th nearest neighbour in
its own set (the point itself excluded).

- Precision: share of fake samples inside the real manifold (some real ball holds it).
- Recall: share of real samples inside the fake manifold.
- Density: real balls holding each fake sample, averaged and divided by k.
- Coverage: share of real balls that hold at least one fake sample.

Distances are computed in row blocks of `batch_size` rows, so memory stays at a few
`[batch_size, N]` arrays; everything compares squared Euclidean distances. Ties follow
the reference code: a point on a ball's boundary is inside for precision and recall
(Kynkaanniemi et al.'s `<=`), outside for density and coverage (Naeem et al.'s `<`).
"""
from __future__ import annotations

import numpy as np

from jgan.eval.fid import checked_feature_pair

DEFAULT_BATCH_SIZE = 1024


def _check_sets(real, fake) -> tuple[np.ndarray, np.ndarray]:
    return checked_feature_pair(real, fake, ("real", "fake"))


def _check_k(name: str, k: int, num_points: int, set_name: str):
    if int(k) < 1:
        raise ValueError(f"{name} must be >= 1, got {k}.")
    if num_points <= k:
        raise ValueError(f"{name} = {k} needs more than {k} {set_name} samples, got {num_points}.")


def _squared_distance_blocks(x: np.ndarray, y: np.ndarray, batch_size: int):
    """Yields (start, stop, `[stop - start, M]` squared distances from x[start:stop] to y)."""
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    x_norms, y_norms = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
    for start in range(0, x.shape[0], batch_size):
        stop = min(start + batch_size, x.shape[0])
        block = x_norms[start:stop, None] + y_norms[None, :] - 2 * (x[start:stop] @ y.T)
        # Rounding can leave tiny negatives where points coincide.
        yield start, stop, np.maximum(block, 0, out=block)


def _kth_neighbour_radii(x: np.ndarray, ks: list[int], batch_size: int) -> dict[int, np.ndarray]:
    """`{k: [N] squared distance from each point to its k-th nearest other point of x}`."""
    radii = {k: np.empty(x.shape[0], x.dtype) for k in ks}
    for start, stop, block in _squared_distance_blocks(x, x, batch_size):
        rows = np.arange(stop - start)
        block[rows, start + rows] = 0  # a point's distance to itself, exactly.
        # Sorted, each row starts with the point itself (index 0): index k is the k-th neighbour.
        nearest = np.partition(block, ks, axis=1)
        for k in ks:
            radii[k][start:stop] = nearest[:, k]
    return radii


def _prdc(real, fake, k_pr: int | None, k_dc: int | None, batch_size: int) -> dict:
    """Precision and recall with k_pr and/or density and coverage with k_dc, in one pass."""
    real, fake = _check_sets(real, fake)
    ks = [k for k in (k_pr, k_dc) if k is not None]
    for name, k in (("k_pr", k_pr), ("k_dc", k_dc)):
        if k is not None:
            _check_k(name, k, real.shape[0], "real")
    if k_pr is not None:
        _check_k("k_pr", k_pr, fake.shape[0], "fake")
    real_radii = _kth_neighbour_radii(real, sorted(set(ks)), batch_size)
    if k_pr is not None:
        fake_radii = _kth_neighbour_radii(fake, [k_pr], batch_size)[k_pr]
        fake_in_real_manifold = np.zeros(fake.shape[0], bool)
        real_in_fake_manifold = np.zeros(real.shape[0], bool)
    if k_dc is not None:
        real_balls_holding_fake = np.zeros(fake.shape[0], np.int64)
        real_ball_covered = np.zeros(real.shape[0], bool)
    for start, stop, block in _squared_distance_blocks(real, fake, batch_size):
        if k_pr is not None:
            fake_in_real_manifold |= np.any(block <= real_radii[k_pr][start:stop, None], axis=0)
            real_in_fake_manifold[start:stop] = np.any(block <= fake_radii[None, :], axis=1)
        if k_dc is not None:
            inside = block < real_radii[k_dc][start:stop, None]
            real_balls_holding_fake += inside.sum(axis=0)
            real_ball_covered[start:stop] = inside.any(axis=1)
    result = {"num_real": int(real.shape[0]), "num_fake": int(fake.shape[0])}
    if k_pr is not None:
        result.update(precision=float(fake_in_real_manifold.mean()),
                      recall=float(real_in_fake_manifold.mean()), k_pr=int(k_pr))
    if k_dc is not None:
        result.update(density=float(real_balls_holding_fake.sum() / (k_dc * fake.shape[0])),
                      coverage=float(real_ball_covered.mean()), k_dc=int(k_dc))
    return result


def precision_recall(real, fake, *, k: int = 3, batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
    """Improved precision and recall (Kynkaanniemi et al. 2019, NeurIPS).

    With r_k(x) the distance from x to its k-th nearest neighbour in its own set, and
    f(y, S) = 1 if ||y - x|| <= r_k(x) for some x in S:

        precision = 1/M sum_j f(fake_j, real),   recall = 1/N sum_i f(real_i, fake)

    Args:
      real: `[N, D]` features of real samples, N > k.
      fake: `[M, D]` features of generated samples, M > k.
      k: neighbourhood size (the paper uses 3).
      batch_size: rows per block of the distance computation.
    Returns:
      dict with `precision`, `recall` (floats in [0, 1]), `k_pr`, `num_real`, `num_fake`.
    """
    return _prdc(real, fake, k, None, batch_size)


def density_coverage(real, fake, *, k: int = 5, batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
    """Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics
    for Generative Models", ICML).

    With B(x, r) the open ball and r_k(x) as in `precision_recall`, over real balls only:

        density  = 1/(k M) sum_j sum_i 1[fake_j in B(real_i, r_k(real_i))]
        coverage = 1/N sum_i 1[some fake_j in B(real_i, r_k(real_i))]

    Args:
      real: `[N, D]` features of real samples, N > k.
      fake: `[M, D]` features of generated samples.
      k: neighbourhood size (the paper uses 5).
      batch_size: rows per block of the distance computation.
    Returns:
      dict with `density` (>= 0, about 1 when fake matches real), `coverage` (in [0, 1]),
      `k_dc`, `num_real`, `num_fake`.
    """
    return _prdc(real, fake, None, k, batch_size)


def prdc(real, fake, *, k_pr: int = 3, k_dc: int = 5,
         batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
    """Precision, recall, density and coverage together, each distance block computed once.

    Args:
      real: `[N, D]` and fake: `[M, D]` features; see `precision_recall` (k = k_pr) and
        `density_coverage` (k = k_dc).
    Returns:
      dict with `precision`, `recall`, `density`, `coverage`, `k_pr`, `k_dc`,
      `num_real`, `num_fake`.
    """
    return _prdc(real, fake, k_pr, k_dc, batch_size)
