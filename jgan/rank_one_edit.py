"""Rank-one model editing: the linear-algebra core of "Rewriting a Deep Generative Model".

Bau, Liu, Wang, Zhu and Torralba (ECCV 2020) read one layer of a generator as a linear
associative memory: it maps keys k (its input at a pixel: a feature vector, or the
k x k patch a convolution sees) to values v = W k (its output there; the bias, which no
edit changes, left out). An edit asks that chosen keys K* = [k*_1 .. k*_M] (`[M, Din]`)
now map to new values V* (`[M, Dout]`), while every other key maps as before as far as
possible. "As before" is measured over the keys the layer actually sees, through their
uncentred second moment C = E[k k^T] (`key_statistics`):

    W1 = argmin_W  E_k ||(W - W0) k||^2 = tr((W - W0) C (W - W0)^T)
         subject to W K*^T = V*^T.

(The paper writes the objective ||V - W K||^2 with V = W0 K over a key matrix K whose
columns are the keys, so its C = K K^T; the scale of C changes nothing below except the
ridge, which is therefore relative.) With a Lagrange multiplier Lambda (`[Dout, M]`),
setting the gradient of tr(dW C dW^T) - 2 tr(Lambda^T (dW K*^T - R)) to zero gives
dW C = Lambda K*, hence the paper's update

    W1 = W0 + Lambda D^T,    D = C^{-1} K*^T  (`[Din, M]`, one direction per key),
    Lambda = R (K* D)^{-1},  R = V*^T - W0 K*^T  (`[Dout, M]`),

which for one key is the paper's W1 = W0 + Lambda (C^{-1} k*)^T with
Lambda = (v* - W0 k*) / (k*^T C^{-1} k*). The change is zero on every key k with
k^T C^{-1} k*_j = 0 and, for one key, averaged over the key distribution,
E||dW k||^2 = ||dW k*||^2 / (k*^T C^{-1} k*): the rarer k* is (the larger its
Mahalanobis norm), the less the rest of the distribution moves compared to k*.
`directions="mean"` instead keeps the change rank one for a context of several keys
that share one rule: the single direction d = C^{-1} mean(K*) (the reference code's
`key_method="mean"`, davidbau/rewriting, rewrite/ganrewrite.py), with Lambda fitted to
R by least squares.

For nonlinear layers (a convolution followed by modulation and an activation) the
paper fixes D and fits Lambda by gradient descent; `edit_directions` gives D for that.

Everything is jax.numpy, jit-able (`directions` static). Products use
`Precision.HIGHEST` (TPUs would otherwise multiply in bfloat16) and the arithmetic runs
in the inputs' dtype: enable float64 (`jax.enable_x64(True)`) for an ill-conditioned C,
and accumulate the statistics in float64 (`init_key_statistics(dim, jnp.float64)`) when
many keys are summed.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

__all__ = [
    "KeyStatistics", "init_key_statistics", "accumulate_keys", "key_covariance",
    "key_statistics", "edit_directions", "EditDiagnostics", "rank_one_update",
    "kernel_to_matrix", "matrix_to_kernel", "extract_patches",
]

_mm = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)
DIRECTIONS = ("per_key", "mean")


# Key statistics ------------------------------------------------------------------------

class KeyStatistics(NamedTuple):
    """Running sums for C = sum k k^T / n: `total` `[D, D]`, `count` `[]` (an integer).

    `count` has jax's default integer type (int32 unless float64 is enabled): at most
    2**31 - 1 keys per statistics.
    """
    total: jax.Array
    count: jax.Array


def init_key_statistics(dim: int, dtype=jnp.float32) -> KeyStatistics:
    """Empty statistics for keys of `dim` features, summed in `dtype`."""
    return KeyStatistics(jnp.zeros((dim, dim), dtype), jnp.zeros((), int))


def accumulate_keys(stats: KeyStatistics, keys: jax.Array) -> KeyStatistics:
    """`stats` with the keys `[N, D]` added: total += K^T K, count += N.

    Keys are cast to the statistics' dtype first, so float32 features summed into
    float64 statistics lose nothing to the sum's growth.
    """
    keys = jnp.asarray(keys, stats.total.dtype)
    return KeyStatistics(stats.total + _mm(keys.T, keys), stats.count + keys.shape[0])


def key_covariance(stats: KeyStatistics) -> jax.Array:
    """The paper's key "covariance", the uncentred second moment C = total / count."""
    return stats.total / stats.count.astype(stats.total.dtype)


def key_statistics(keys: jax.Array) -> jax.Array:
    """C = K^T K / N `[D, D]` of keys `[N, D]` (one batch; streaming: `accumulate_keys`)."""
    keys = jnp.asarray(keys)
    stats = init_key_statistics(keys.shape[-1], jnp.result_type(keys, jnp.float32))
    return key_covariance(accumulate_keys(stats, keys))


# The edit ------------------------------------------------------------------------------

def edit_directions(covariance: jax.Array, keys: jax.Array, *,
                    directions: str = "per_key", ridge: float = 1e-4) -> jax.Array:
    """The rows the edit may write into: D = C_r^{-1} K*^T `[Din, M]`, or `[Din, 1]`.

    Args:
      covariance: C `[Din, Din]`, symmetric positive semi-definite.
      keys: K* `[M, Din]`.
      directions: "per_key", one direction C_r^{-1} k*_j per key; "mean", the single
        direction d = C_r^{-1} mean_j(k*_j).
      ridge: r in C_r = C + r (tr C / Din) I. It makes the solve defined for a singular
        C (dead channels) and stable for an ill-conditioned one; relative to C's mean
        eigenvalue, so it does not depend on the features' scale. r = 0 needs C
        positive definite; r -> infinity tends to D proportional to K*^T, the Euclidean
        (Frobenius) minimum-norm edit that ignores the key distribution.
    """
    if directions not in DIRECTIONS:
        raise ValueError(f"directions must be one of {DIRECTIONS}, got {directions!r}.")
    dim = covariance.shape[-1]
    scale = ridge * jnp.trace(covariance) / dim
    regularised = covariance + scale * jnp.eye(dim, dtype=covariance.dtype)
    targets = keys.T if directions == "per_key" else jnp.mean(keys, axis=0)[:, None]
    # Cholesky rather than an explicit inverse: C_r is symmetric positive definite.
    return jax.scipy.linalg.solve(regularised, targets, assume_a="pos")


class EditDiagnostics(NamedTuple):
    """How the edit went (scalars).

    residual: ||W1 K*^T - V*^T||_F, 0 for "per_key" at strength 1 (up to rounding).
    initial_residual: ||W0 K*^T - V*^T||_F, what the edit had to change.
    rank: numerical rank of W1 - W0 (at most M; 1 for "mean"; 0 at strength 0).
    cost: tr(dW C dW^T) = E_k ||dW k||^2, the change averaged over the key
      distribution (with C itself, not its ridge-regularised form).
    """
    residual: jax.Array
    initial_residual: jax.Array
    rank: jax.Array
    cost: jax.Array


def rank_one_update(weight: jax.Array, covariance: jax.Array, keys: jax.Array,
                    values: jax.Array, *, strength: float = 1.0, directions: str = "per_key",
                    ridge: float = 1e-4, direction_keys: jax.Array | None = None,
                    ) -> tuple[jax.Array, EditDiagnostics]:
    """W1 = W0 + strength * Lambda D^T: keys K* now map to values V*, C-minimally.

    With D = `edit_directions(C, K*)` and A = K* D (`[M, M]` per key, `[M, 1]` mean),
    Lambda `[Dout, P]` is the least-squares solution of Lambda A^T = R,
    R = V*^T - W0 K*^T:
      - "per_key": Lambda = R (K* C_r^{-1} K*^T)^{-1}, the unique minimiser of
        tr(dW C_r dW^T) subject to dW K*^T = R (module docstring); for linearly
        dependent keys, the pseudo-inverse (least-squares, minimum-norm Lambda).
      - "mean": dW = lambda d^T is rank one, lambda = R a / (a^T a) with a = K* d: the
        change along d that brings the keys closest to their values in the Euclidean
        norm. For M = 1 both modes are the paper's W1 = W0 + Lambda (C^{-1} k*)^T.

    Args:
      weight: W0 `[Dout, Din]` with v = W0 k (`kernel_to_matrix` of a Flax kernel).
      covariance: C `[Din, Din]` of the layer's keys (`key_statistics`).
      keys: K* `[M, Din]` (or one key `[Din]`).
      values: V* `[M, Dout]` (or `[Dout]`), without the layer's bias.
      strength: s in [0, 1] scales Lambda: s = 0 returns W0 exactly, s = 1/2 moves each
        W k*_j halfway to v*_j (the change is linear in Lambda).
      directions: "per_key" (rank up to M) or "mean" (rank one); static under jit.
      ridge: relative ridge r of C_r (`edit_directions`). With r > 0 the constraint
        still holds exactly; the objective becomes E||dW k||^2 + r (tr C / Din)||dW||_F^2.
      direction_keys: keys `[Mc, Din]` that give D in place of K* (None: K* itself):
        the paper's context, d = C_r^{-1} mean(context keys) with "mean", Lambda still
        fitted to K* and V* by least squares.
    Returns:
      (W1 `[Dout, Din]`, `EditDiagnostics`).
    """
    if isinstance(strength, (int, float)) and not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must lie in [0, 1], got {strength}.")
    dtype = jnp.result_type(weight, covariance, keys, values, jnp.float32)
    weight, covariance = jnp.asarray(weight, dtype), jnp.asarray(covariance, dtype)
    keys, values = (jnp.atleast_2d(jnp.asarray(a, dtype)) for a in (keys, values))
    _check_shapes(weight, covariance, keys, values)
    dir_keys = keys if direction_keys is None else jnp.atleast_2d(
        jnp.asarray(direction_keys, dtype))
    if dir_keys.shape[1:] != keys.shape[1:]:
        raise ValueError(f"direction_keys {dir_keys.shape} must have the keys' {keys.shape[1]} "
                         "features.")
    dirs = edit_directions(covariance, dir_keys, directions=directions, ridge=ridge)
    initial = values.T - _mm(weight, keys.T)
    lam = _mm(initial, jnp.linalg.pinv(_mm(keys, dirs).T))
    delta = strength * _mm(lam, dirs.T)
    new_weight = weight + delta
    return new_weight, EditDiagnostics(
        residual=jnp.linalg.norm(values.T - _mm(new_weight, keys.T)),
        initial_residual=jnp.linalg.norm(initial),
        rank=jnp.linalg.matrix_rank(delta),
        cost=jnp.trace(_mm(_mm(delta, covariance), delta.T)))


def _check_shapes(weight, covariance, keys, values):
    d_out, d_in = weight.shape
    if (covariance.shape != (d_in, d_in) or keys.shape[1:] != (d_in,)
            or values.shape != (keys.shape[0], d_out)):
        raise ValueError(
            f"expected weight [Dout, Din], covariance [Din, Din], keys [M, Din], values "
            f"[M, Dout]; got {weight.shape}, {covariance.shape}, {keys.shape}, {values.shape}.")


# Convolutions as matrices --------------------------------------------------------------

def kernel_to_matrix(kernel: jax.Array) -> jax.Array:
    """A Flax kernel as the edit's W `[Dout, kh * kw * Din]`.

    `nn.Conv` kernels are `[kh, kw, Din, Dout]` (HWIO), `nn.Dense` kernels `[Din, Dout]`.
    Column (i * kw + j) * Din + c of W is kernel[i, j, c], matching the feature order
    of `extract_patches`, so that W @ patch = the convolution's output at that pixel.
    Not covered: grouped convolutions (`feature_group_count > 1`, whose kernel holds
    Din / groups inputs) and `nn.ConvTranspose`, whose kernel multiplies a dilated,
    differently padded input (write its keys by hand if needed).
    """
    kernel = jnp.asarray(kernel)
    if kernel.ndim < 2:
        raise ValueError(f"a kernel has at least 2 axes [..., Din, Dout], got {kernel.shape}.")
    return kernel.reshape(-1, kernel.shape[-1]).T


def matrix_to_kernel(matrix: jax.Array, kernel_shape: Sequence[int]) -> jax.Array:
    """The inverse of `kernel_to_matrix`: W `[Dout, kh * kw * Din]` -> `kernel_shape`."""
    return jnp.asarray(matrix).T.reshape(tuple(kernel_shape))


def extract_patches(features: jax.Array, kernel_size: Sequence[int], *,
                    strides: Sequence[int] = (1, 1), dilation: Sequence[int] = (1, 1),
                    padding: str = "SAME") -> jax.Array:
    """Every pixel's receptive field: NHWC features -> `[B, Ho, Wo, kh * kw * C]`.

    patches[b, y, x, (i * kw + j) * C + c] = padded[b, y * sh + i * dh, x * sw + j * dw, c]
    with the zero padding of `jax.lax.conv_general_dilated` ("SAME": output
    ceil(H / sh), total padding max((Ho - 1) sh + (kh - 1) dh + 1 - H, 0), the smaller
    half before; "VALID": none). So for kernel `[kh, kw, C, Dout]`,
    patches @ kernel_to_matrix(kernel).T equals the convolution with these strides,
    padding and kernel (rhs) dilation. Keys for the edit: `.reshape(-1, kh * kw * C)`.
    Built from slices, not from a convolution, so that it is exact on every backend.
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, strides, dilation
    (oh, pad_h), (ow, pad_w) = (_window(features.shape[1], kh, sh, dh, padding),
                                _window(features.shape[2], kw, sw, dw, padding))
    padded = jnp.pad(features, ((0, 0), pad_h, pad_w, (0, 0)))
    return jnp.concatenate(
        [padded[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
         for i in range(kh) for j in range(kw)], axis=-1)


def _window(size: int, k: int, stride: int, dilation: int, padding: str):
    """(output size, (pad before, pad after)) of one spatial axis, as lax computes them."""
    span = (k - 1) * dilation + 1
    if padding == "VALID":
        if size < span:
            raise ValueError(f"a VALID window of {span} does not fit in {size} pixels.")
        return (size - span) // stride + 1, (0, 0)
    if padding != "SAME":
        raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}.")
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return out, (total // 2, total - total // 2)
