"""PyTorch eager reference of `jgan.models.resnet`: SNGAN ResNet G and projection D.

The same architecture, layer for layer, in PyTorch's NCHW layout (see
`jgan/models/resnet.py` for the design): conditional batch norm in G's blocks (momentum
0.1 = flax's 0.9, eps 1e-5), nearest-neighbour upsampling + 3x3 convolution, the
optimized first D block, global sum pooling, the projection term y^T V h, and spectral
norm (`torch.nn.utils.parametrizations.spectral_norm`, one power iteration) on every
D convolution, the linear layer and V. Module names mirror the flax parameter paths, so
`load_flax_variables` copies a flax model's variables in.

Spectral norm's power iteration differs in order: flax stores u (the output-side
vector) and each call computes v = n(W^T u), u' = n(W v), sigma = u'^T W v; PyTorch
stores (u, v), in training updates u' = n(W v), v' = n(W^T u') and in eval uses the
stored pair as is. `load_flax_variables` therefore stores (u', v) computed from flax's u,
so that PyTorch's *eval-mode* D equals flax's D (in either mode) exactly.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

BN_EPS = 1e-5
BN_MOMENTUM = 0.1          # PyTorch's: running = 0.9 running + 0.1 batch, flax's 0.9


def _init(layer: nn.Module, gain: float, sn: bool, sn_dim: int = 0) -> nn.Module:
    """Glorot-uniform weight with `gain`, zero bias; then spectral norm if `sn`."""
    nn.init.xavier_uniform_(layer.weight, gain)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return _spectral_norm(layer, n_power_iterations=1, eps=1e-12, dim=sn_dim) if sn else layer


def conv(c_in, c_out, size, gain=1.0, bias=True, sn=False) -> nn.Module:
    """Stride-1 "same" convolution: `[B, c_in, H, W] -> [B, c_out, H, W]`."""
    return _init(nn.Conv2d(c_in, c_out, size, 1, (size - 1) // 2, bias=bias), gain, sn)


class ConditionalBatchNorm(nn.Module):
    """Batch norm (no affine) then per-class gamma, beta; plain affine BN without classes.

    `[B, C, H, W]`, labels `[B]` -> `[B, C, H, W]`.
    """

    def __init__(self, features: int, num_classes: int | None):
        super().__init__()
        self.conditional = bool(num_classes)
        self.bn = nn.BatchNorm2d(features, eps=BN_EPS, momentum=BN_MOMENTUM,
                                 affine=not self.conditional)
        if self.conditional:
            self.gamma = nn.Embedding(num_classes, features)
            self.beta = nn.Embedding(num_classes, features)
            nn.init.ones_(self.gamma.weight), nn.init.zeros_(self.beta.weight)

    def forward(self, x, labels=None):
        x = self.bn(x)
        if not self.conditional:
            return x
        return x * self.gamma(labels)[:, :, None, None] + self.beta(labels)[:, :, None, None]


class GeneratorBlock(nn.Module):
    """Up-block: `[B, c_in, H, W]`, labels `[B]` -> `[B, features, 2H, 2W]`."""

    def __init__(self, c_in: int, features: int, num_classes: int | None):
        super().__init__()
        self.bn1 = ConditionalBatchNorm(c_in, num_classes)
        self.conv1 = conv(c_in, features, 3, math.sqrt(2), bias=False)
        self.bn2 = ConditionalBatchNorm(features, num_classes)
        self.conv2 = conv(features, features, 3, math.sqrt(2))
        self.shortcut = conv(c_in, features, 1)

    def forward(self, x, labels):
        h = F.relu(self.bn1(x, labels))
        h = self.conv1(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.conv2(F.relu(self.bn2(h, labels)))
        return h + F.interpolate(self.shortcut(x), scale_factor=2, mode="nearest")


class Generator(nn.Module):
    """z `[B, latent]`, labels `[B]` -> `[B, channels, R, R]` in [-1, 1] (R = 28 or 32)."""

    def __init__(self, num_classes=None, width=256, latent_dim=128, resolution=32,
                 channels=3):
        super().__init__()
        self.base, blocks = (7, 2) if resolution == 28 else (4, 3)
        self.width = width
        self.project = _init(nn.Linear(latent_dim, self.base ** 2 * width), 1.0, False)
        for i in range(blocks):
            self.add_module(f"block{i}", GeneratorBlock(width, width, num_classes))
        self.blocks = blocks
        self.out_bn = nn.BatchNorm2d(width, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.out_conv = conv(width, channels, 3)

    def forward(self, z, labels=None):
        x = self.project(z).view(z.shape[0], self.width, self.base, self.base)
        for i in range(self.blocks):
            x = getattr(self, f"block{i}")(x, labels)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(x))))


class DiscriminatorBlock(nn.Module):
    """Pre-activation block (none when `optimized`): `[B, c_in, H, W] -> [B, features, H', W']`."""

    def __init__(self, c_in, features, downsample, sn, optimized=False):
        super().__init__()
        self.downsample, self.optimized = downsample, optimized
        self.conv1 = conv(c_in, features, 3, math.sqrt(2), sn=sn)
        self.conv2 = conv(features, features, 3, math.sqrt(2), sn=sn)
        self.shortcut = (conv(c_in, features, 1, sn=sn)
                         if downsample or c_in != features else None)

    def forward(self, x):
        h = x if self.optimized else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class Discriminator(nn.Module):
    """`[B, channels, H, W]`, labels `[B]` | None -> logits `[B]`; `features` -> h."""

    def __init__(self, num_classes=None, width=128, spectral_norm=True, channels=3):
        super().__init__()
        self.trunk = nn.Sequential(
            DiscriminatorBlock(channels, width, True, spectral_norm, optimized=True),
            DiscriminatorBlock(width, width, True, spectral_norm),
            DiscriminatorBlock(width, width, False, spectral_norm),
            DiscriminatorBlock(width, width, False, spectral_norm))
        self.head = nn.Module()
        self.head.logit = _init(nn.Linear(width, 1), 1.0, spectral_norm)
        if num_classes:
            self.head.projection = nn.Module()
            # dim=1: normalize V as [width, num_classes], so that PyTorch's u has flax's size.
            self.head.projection.embed = _init(nn.Embedding(num_classes, width), 1.0,
                                               spectral_norm, sn_dim=1)
        self.num_classes = num_classes

    def features(self, x):
        return F.relu(self.trunk(x)).sum(dim=(2, 3))

    def forward(self, x, labels=None):
        h = self.features(x)
        out = self.head.logit(h)[:, 0]
        if self.num_classes and labels is not None:
            out = out + (self.head.projection.embed(labels) * h).sum(dim=1)
        return out


def _module(root: nn.Module, path) -> nn.Module:
    for name in path:
        # flax's trunk/blockN is torch's trunk[N].
        root = root[int(name[5:])] if isinstance(root, nn.Sequential) else getattr(root, name)
    return root


def _tensor(x) -> torch.Tensor:
    return torch.tensor(np.ascontiguousarray(x, np.float32))   # a copy: jax arrays are read-only


def _normalize(x):
    return x / np.sqrt(np.sum(x * x) + 1e-12)


@torch.no_grad()
def load_flax_variables(model: nn.Module, variables) -> None:
    """Copies a flax `ResNetGenerator` / `ResNetDiscriminator`'s variables into `model`.

    Kernels HWIO -> OIHW, dense kernels transposed (G's projection also reordered from
    NHWC to NCHW), batch statistics into the running buffers, spectral-norm vectors as
    the module docstring describes.
    """
    for path, leaf in _flatten(variables.get("params", {})):
        leaf = np.asarray(leaf, np.float32)
        *mpath, name = path
        m = _module(model, mpath)
        if mpath == ["project"]:   # rows (h, w, c) -> (c, h, w)
            base = model.base
            leaf = leaf.reshape(-1, base, base, model.width).transpose(0, 3, 1, 2)
            leaf = leaf.reshape(leaf.shape[0], -1) if name == "kernel" else leaf.reshape(-1)
        if name == "kernel":
            leaf = leaf.transpose(3, 2, 0, 1) if leaf.ndim == 4 else leaf.T
        target = "bias" if name == "bias" else "weight"
        if parametrize.is_parametrized(m, target):
            getattr(m.parametrizations, target).original.copy_(_tensor(leaf))
        else:
            getattr(m, target).copy_(_tensor(leaf))
    for path, leaf in _flatten(variables.get("batch_stats", {})):
        *mpath, name = path
        leaf = np.asarray(leaf, np.float32)
        if name in ("mean", "var"):
            buffer = "running_mean" if name == "mean" else "running_var"
            getattr(_module(model, mpath), buffer).copy_(_tensor(leaf))
        elif name.endswith("/u"):   # flax: SpectralNorm_k / "layer/kernel/u"
            layer = _module(model, [p for p in mpath if not p.startswith("SpectralNorm_")]
                            + [name.split("/")[0]])
            sn = layer.parametrizations.weight[0]
            w = sn._reshape_weight_to_matrix(layer.parametrizations.weight.original).numpy()
            v = _normalize(w.T @ leaf[0])
            sn._v.copy_(_tensor(v)), sn._u.copy_(_tensor(_normalize(w @ v)))


def _flatten(tree, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict) or hasattr(value, "items"):
            yield from _flatten(value, prefix + (key,))
        else:
            yield list(prefix + (key,)), value
