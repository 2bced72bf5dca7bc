"""The FID Inception-v3: the 2015-12-05 TensorFlow graph FID is defined with, in Flax.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
Local Nash Equilibrium") and the Inception Score (Salimans et al. 2016) use one fixed
network: the Inception-v3 of ``inception-2015-12-05.tgz`` (Szegedy et al. 2016,
"Rethinking the Inception Architecture"). It is not torchvision's or Keras's
Inception-v3; its quirks, reproduced here as in pytorch-fid's ``FIDInceptionA/C/E_1/E_2``
and NVIDIA's TorchScript port:

* average pools inside blocks 5b-d, 6b-e and 7b exclude the padding from the divisor
  (TensorFlow's 'SAME' average pool; PyTorch's ``count_include_pad=False``);
* the pool branch of the last block (7c) is a 3x3 *max* pool;
* batch norm has no learned scale (pytorch-fid stores ones) and epsilon 1e-3;
* 1008 output classes (1000 ImageNet classes plus 8 unused), not 1000.

Layout is NHWC. The input is (N, 299, 299, 3) float32, already resized and normalized
(see :mod:`jgan.eval.preprocess`); ``pool3`` is the 2048-d global average of the last
block, ``logits`` the 1008-way classifier on it.

Parameters come from pytorch-fid's state dict through :func:`params_from_torch_state`,
which folds each inference-time batch norm into its convolution:
``scale = gamma / sqrt(running_var + 1e-3)``, ``kernel = W * scale``,
``bias = beta - running_mean * scale``. Every layer is then ``relu(conv(x) + bias)``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "BATCH_NORM_EPS",
    "INCEPTION_SIZE",
    "NUM_CLASSES",
    "POOL3_DIM",
    "InceptionV3",
    "params_from_torch_state",
]

#: Batch-norm epsilon of the 2015-12-05 graph.
BATCH_NORM_EPS = 1e-3
#: Input side length the network was trained at and FID is defined with.
INCEPTION_SIZE = 299
POOL3_DIM = 2048
NUM_CLASSES = 1008

# Full float32 convolutions: on GPU/TPU the default precision multiplies in TF32/bf16
# (10/7-bit mantissas), far coarser than the 1e-4 parity this network is checked to.
_HIGHEST = jax.lax.Precision.HIGHEST


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _conv(lhs, rhs, window_strides, padding, *, lhs_dilation=None, rhs_dilation=None,
          dimension_numbers=None, feature_group_count=1, precision=None):
    """``lax.conv_general_dilated`` (NHWC, HWIO) in the forms XLA:CPU runs fastest.

    Same sums, two rewrites (measured on this network's layers, one core):

    * 1x1 stride-1 convolutions are channel matmuls: XLA's dot kernels run them 20-45%
      faster than its convolution kernels.
    * Unpadded ('VALID') convolutions run 2.5-3x slower than padded ones, so they get
      one row and column of zeros at the high end, which no VALID window reaches,
      and the extra output row/column (stride 1) is cropped.
    """
    nhwc = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
    plain = (dimension_numbers == nhwc and feature_group_count == 1
             and all(d == 1 for d in tuple(lhs_dilation or ()) + tuple(rhs_dilation or ())))
    unpadded = all(tuple(p) == (0, 0) for p in padding)
    if plain and unpadded and rhs.shape[:2] == (1, 1) and tuple(window_strides) == (1, 1):
        return jax.lax.dot_general(lhs, rhs[0, 0], (((3,), (0,)), ((), ())), precision=precision)
    if plain and unpadded:
        out = [(n - k) // s + 1 for n, k, s in zip(lhs.shape[1:3], rhs.shape[:2], window_strides)]
        y = jax.lax.conv_general_dilated(lhs, rhs, window_strides, ((0, 1), (0, 1)),
                                         dimension_numbers=dimension_numbers, precision=precision)
        return y[:, :out[0], :out[1], :]
    return jax.lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, precision=precision)


class _Block(nn.Module):
    """Base of the blocks: a named convolution (batch norm folded in) + ReLU."""

    precision: Any = _HIGHEST

    def conv(self, x, features: int, kernel, name: str, *, stride: int = 1, padding=0):
        ph, pw = _pair(padding)
        y = nn.Conv(features, _pair(kernel), strides=stride,
                    padding=((ph, ph), (pw, pw)), precision=self.precision,
                    conv_general_dilated=_conv, name=name)(x)
        return nn.relu(y)


def _avg_pool_3x3_same(x):
    # TensorFlow's 'SAME' average pool: padded positions are not counted.
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                       count_include_pad=False)


def _max_pool_3x3_stride2(x):
    return nn.max_pool(x, (3, 3), strides=(2, 2))


class InceptionA(_Block):
    """Blocks Mixed_5b/c/d (35x35): 1x1, 5x5, double 3x3, avg-pool branches."""

    pool_features: int = 32

    @nn.compact
    def __call__(self, x):
        b1 = self.conv(x, 64, 1, "branch1x1")
        b5 = self.conv(x, 48, 1, "branch5x5_1")
        b5 = self.conv(b5, 64, 5, "branch5x5_2", padding=2)
        b3 = self.conv(x, 64, 1, "branch3x3dbl_1")
        b3 = self.conv(b3, 96, 3, "branch3x3dbl_2", padding=1)
        b3 = self.conv(b3, 96, 3, "branch3x3dbl_3", padding=1)
        bp = self.conv(_avg_pool_3x3_same(x), self.pool_features, 1, "branch_pool")
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(_Block):
    """Block Mixed_6a: 35x35 -> 17x17 reduction."""

    @nn.compact
    def __call__(self, x):
        b3 = self.conv(x, 384, 3, "branch3x3", stride=2)
        bd = self.conv(x, 64, 1, "branch3x3dbl_1")
        bd = self.conv(bd, 96, 3, "branch3x3dbl_2", padding=1)
        bd = self.conv(bd, 96, 3, "branch3x3dbl_3", stride=2)
        return jnp.concatenate([b3, bd, _max_pool_3x3_stride2(x)], axis=-1)


class InceptionC(_Block):
    """Blocks Mixed_6b/c/d/e (17x17): factorized 7x7 branches, avg-pool branch."""

    channels_7x7: int = 128

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        b1 = self.conv(x, 192, 1, "branch1x1")
        b7 = self.conv(x, c7, 1, "branch7x7_1")
        b7 = self.conv(b7, c7, (1, 7), "branch7x7_2", padding=(0, 3))
        b7 = self.conv(b7, 192, (7, 1), "branch7x7_3", padding=(3, 0))
        bd = self.conv(x, c7, 1, "branch7x7dbl_1")
        bd = self.conv(bd, c7, (7, 1), "branch7x7dbl_2", padding=(3, 0))
        bd = self.conv(bd, c7, (1, 7), "branch7x7dbl_3", padding=(0, 3))
        bd = self.conv(bd, c7, (7, 1), "branch7x7dbl_4", padding=(3, 0))
        bd = self.conv(bd, 192, (1, 7), "branch7x7dbl_5", padding=(0, 3))
        bp = self.conv(_avg_pool_3x3_same(x), 192, 1, "branch_pool")
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(_Block):
    """Block Mixed_7a: 17x17 -> 8x8 reduction."""

    @nn.compact
    def __call__(self, x):
        b3 = self.conv(x, 192, 1, "branch3x3_1")
        b3 = self.conv(b3, 320, 3, "branch3x3_2", stride=2)
        b7 = self.conv(x, 192, 1, "branch7x7x3_1")
        b7 = self.conv(b7, 192, (1, 7), "branch7x7x3_2", padding=(0, 3))
        b7 = self.conv(b7, 192, (7, 1), "branch7x7x3_3", padding=(3, 0))
        b7 = self.conv(b7, 192, 3, "branch7x7x3_4", stride=2)
        return jnp.concatenate([b3, b7, _max_pool_3x3_stride2(x)], axis=-1)


class InceptionE(_Block):
    """Blocks Mixed_7b (avg-pool branch) and Mixed_7c (max-pool branch), 8x8."""

    max_pool_branch: bool = False

    @nn.compact
    def __call__(self, x):
        b1 = self.conv(x, 320, 1, "branch1x1")
        b3 = self.conv(x, 384, 1, "branch3x3_1")
        b3a = self.conv(b3, 384, (1, 3), "branch3x3_2a", padding=(0, 1))
        b3b = self.conv(b3, 384, (3, 1), "branch3x3_2b", padding=(1, 0))
        bd = self.conv(x, 448, 1, "branch3x3dbl_1")
        bd = self.conv(bd, 384, 3, "branch3x3dbl_2", padding=1)
        bda = self.conv(bd, 384, (1, 3), "branch3x3dbl_3a", padding=(0, 1))
        bdb = self.conv(bd, 384, (3, 1), "branch3x3dbl_3b", padding=(1, 0))
        if self.max_pool_branch:
            # The 2015 graph's last block max-pools here (pytorch-fid's FIDInceptionE_2).
            pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
        else:
            pooled = _avg_pool_3x3_same(x)
        bp = self.conv(pooled, 192, 1, "branch_pool")
        return jnp.concatenate([b1, b3a, b3b, bda, bdb, bp], axis=-1)


class InceptionV3(_Block):
    """The FID Inception-v3 (2015-12-05 graph), NHWC.

    Call with x: float32 (N, H, W, 3), normalized as :func:`normalize_for_inception`
    does, H = W = 299 for FID/IS (any H, W >= 75 runs: the architecture's minimum).

    Returns:
      ``{'pool3': (N, 2048)}``, plus ``'logits': (N, 1008)`` when the parameters hold
      the classifier ``fc`` (at init: when ``with_logits`` is true).

    Attributes:
      with_logits: create the 1008-way classifier at init.
      precision: precision of the convolutions and the classifier (default HIGHEST,
        full float32 on every backend).
    """

    with_logits: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"InceptionV3 input must be (N, H, W, 3) NHWC, got {x.shape}.")
        if min(x.shape[1:3]) < 75:
            raise ValueError(f"InceptionV3 input must be at least 75x75, got {x.shape[1:3]}.")
        p = self.precision
        x = self.conv(x, 32, 3, "Conv2d_1a_3x3", stride=2)
        x = self.conv(x, 32, 3, "Conv2d_2a_3x3")
        x = self.conv(x, 64, 3, "Conv2d_2b_3x3", padding=1)
        x = _max_pool_3x3_stride2(x)
        x = self.conv(x, 80, 1, "Conv2d_3b_1x1")
        x = self.conv(x, 192, 3, "Conv2d_4a_3x3")
        x = _max_pool_3x3_stride2(x)
        x = InceptionA(pool_features=32, precision=p, name="Mixed_5b")(x)
        x = InceptionA(pool_features=64, precision=p, name="Mixed_5c")(x)
        x = InceptionA(pool_features=64, precision=p, name="Mixed_5d")(x)
        x = InceptionB(precision=p, name="Mixed_6a")(x)
        x = InceptionC(channels_7x7=128, precision=p, name="Mixed_6b")(x)
        x = InceptionC(channels_7x7=160, precision=p, name="Mixed_6c")(x)
        x = InceptionC(channels_7x7=160, precision=p, name="Mixed_6d")(x)
        x = InceptionC(channels_7x7=192, precision=p, name="Mixed_6e")(x)
        x = InceptionD(precision=p, name="Mixed_7a")(x)
        x = InceptionE(max_pool_branch=False, precision=p, name="Mixed_7b")(x)
        x = InceptionE(max_pool_branch=True, precision=p, name="Mixed_7c")(x)
        # At 299x299 the last map is 8x8 and this is the graph's 8x8 'pool_3'.
        pool3 = jnp.mean(x, axis=(1, 2))
        out = {"pool3": pool3}
        if self._has_classifier():
            out["logits"] = nn.Dense(NUM_CLASSES, precision=p, name="fc")(pool3)
        return out

    def _has_classifier(self) -> bool:
        if self.is_initializing():
            return self.with_logits
        return "fc" in self.variables.get("params", {})


# --------------------------------------------------------------------------- conversion


def _param_shapes(with_logits: bool) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Flax parameter path -> shape, from the module itself (one source of truth)."""
    model = InceptionV3(with_logits=with_logits)
    shapes = jax.eval_shape(model.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, 75, 75, 3), jnp.float32))["params"]
    flat = jax.tree_util.tree_flatten_with_path(shapes)[0]
    return {tuple(k.key for k in path): tuple(leaf.shape) for path, leaf in flat}


def _nest(flat: dict[tuple[str, ...], np.ndarray]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def params_from_torch_state(state: Mapping[str, Any]) -> dict:
    """Flax params of :class:`InceptionV3` from pytorch-fid's state dict.

    Args:
      state: name -> array (numpy or anything ``np.asarray`` takes) with pytorch-fid's
        names and PyTorch layouts: ``<layer>.conv.weight`` (out, in, kh, kw),
        ``<layer>.bn.{weight,bias,running_mean,running_var}`` (out,), optionally
        ``<layer>.bn.num_batches_tracked`` (ignored) and the classifier ``fc.weight``
        (1008, 2048) with ``fc.bias`` (1008,). Layers are named as in pytorch-fid
        (``Conv2d_1a_3x3``, ``Mixed_5b.branch5x5_1``, ...).

    Returns:
      ``{'params': ...}``-less parameter tree (pass as ``{'params': tree}`` to
      ``apply``): float32 numpy arrays; each conv has ``kernel`` (kh, kw, in, out) with
      the batch norm folded in and ``bias`` (out,); ``fc`` has ``kernel`` (2048, 1008)
      and ``bias`` when the state holds the classifier.

    Raises:
      ValueError: a missing or unexpected key, or an array of the wrong shape (the
        message names the key and both shapes).
    """
    keys = set(state)
    with_logits = "fc.weight" in keys or "fc.bias" in keys
    expected = _param_shapes(with_logits)
    used: set[str] = set()

    def take(key: str, shape: tuple[int, ...]) -> np.ndarray:
        if key not in state:
            raise ValueError(f"Inception state dict: missing key {key!r} (expected shape "
                             f"{shape}); is it pytorch-fid's FID Inception-v3 state dict?")
        value = np.asarray(state[key])
        if value.shape != shape:
            raise ValueError(f"Inception state dict: {key!r} has shape {value.shape}, "
                             f"expected {shape}.")
        used.add(key)
        return value.astype(np.float64)

    flat: dict[tuple[str, ...], np.ndarray] = {}
    for path, shape in expected.items():
        if path[-1] != "kernel":
            continue
        layer = path[:-1]
        if layer == ("fc",):
            flat[layer + ("kernel",)] = take("fc.weight", shape[::-1]).T.astype(np.float32)
            flat[layer + ("bias",)] = take("fc.bias", shape[1:]).astype(np.float32)
            continue
        prefix = ".".join(layer)
        kh, kw, cin, cout = shape
        weight = take(f"{prefix}.conv.weight", (cout, cin, kh, kw))
        gamma = take(f"{prefix}.bn.weight", (cout,))
        beta = take(f"{prefix}.bn.bias", (cout,))
        mean = take(f"{prefix}.bn.running_mean", (cout,))
        var = take(f"{prefix}.bn.running_var", (cout,))
        scale = gamma / np.sqrt(var + BATCH_NORM_EPS)
        kernel = (weight * scale[:, None, None, None]).transpose(2, 3, 1, 0)
        flat[layer + ("kernel",)] = kernel.astype(np.float32)
        flat[layer + ("bias",)] = (beta - mean * scale).astype(np.float32)

    unexpected = sorted(k for k in keys - used if not k.endswith(".num_batches_tracked"))
    if unexpected:
        more = f" (and {len(unexpected) - 5} more)" if len(unexpected) > 5 else ""
        raise ValueError(f"Inception state dict: unexpected keys {unexpected[:5]}{more}.")
    return _nest(flat)
