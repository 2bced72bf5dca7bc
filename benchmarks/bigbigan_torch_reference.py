"""PyTorch reference of jgan's BigBiGAN training step, for timing comparisons only.

    PYTHONPATH=. python benchmarks/bigbigan_torch_reference.py --batch_sizes=256
    PYTHONPATH=. python benchmarks/bigbigan_torch_reference.py --resolution=64 \\
        --dtypes=bfloat16,float32 --batch_sizes=256,2048      # on a GPU

Re-implements, layer for layer, the game of `jgan.families.bigan` under
`experiments/configs/bigbigan.py:mnist` (the architecture is read from that config, and
the settings this script does not implement are refused; `--resolution 64|128` reads
`mnist,res64|res128`, BigGAN's 64 / 128 px networks):

  G  `jgan.models.resnet.ResNetGenerator`: SN dense z -> 4x4x128, 3 up-blocks (BN - ReLU -
     nearest up2 - SN conv3x3 without bias - BN - ReLU - SN conv3x3, + SN conv1x1 shortcut
     before the upsampling), BN - ReLU - SN conv3x3 - tanh. Batch norm: momentum 0.1
     (flax's 0.9), eps 1e-5. At 64 / 128 px, BigGAN's widths (`resnet.generator_widths`:
     dense to 4x4x(16 ch), 4 / 5 up-blocks of ch * (16, 8, 4, 2[, 1]), ch = width / 4;
     a block's shortcut maps C_in -> C_out).
  E  `jgan.models.residual_encoder.ResidualEncoder` (revnet, stochastic): conv3x3 stem,
     3 stages of 2 reversible blocks (y1 = x1 + F(x2), y2 = x2 + G(y1); F, G =
     GroupNorm - ReLU - conv3x3 (no bias) - GroupNorm - ReLU - conv3x3, GroupNorm eps
     1e-6), between stages 2x2 average pool + conv1x1, GroupNorm - ReLU - mean pool, MLP
     head (256) -> (mean, log_var); z = mean + exp(log_var / 2) eps.
     The reversible stacks are a custom `torch.autograd.Function` (`_ReversibleStack`)
     that keeps only the stack's output and, in the backward pass, walks the blocks
     backwards recomputing each block's input from its output and taking the block's
     vector-Jacobian product there, as `jgan.models.revnet.reversible_sequence` does
     (invert: 2 residual-function passes; re-run the block with autograd; backward).
  D  `jgan.models.pair_discriminator.PairDiscriminator`: SNGAN ResNet trunk F (width 64,
     ReLU + global sum pool), MLPs H (256, 256) on z and J (256, 256) on [F(x), H(z)],
     heads theta_x, theta_z, theta_xz; spectral norm on every D layer. At 64 / 128 px F is
     BigGAN's (`resnet.discriminator_layout`: blocks of ch * (1, 2, 4, 8, 16[, 16]), all
     but the last downsampling; h of 16 ch).
  Spectral norm as flax's `nn.SpectralNorm` (one power iteration per call, u of the
  output side, v = n(W^T u), u' = n(W v), sigma = u'^T W v with u', v held constant,
  eps 1e-12; biases are not normalized). The u vectors and batch-norm statistics are
  buffers, not parameters, as jgan keeps them out of `params`.

One step is jgan's alternating step (`jgan.core.steps.alternating_step`): both updates
see the whole batch, each draws its own z ~ N(0, I) and encoder noise, and all pairs go
through D in one call, [(x, E(x)); (G(z), z)].
  1. D update: L_D = sum over (x, z, xz) of mean relu(1 - s_enc) + mean relu(1 + s_gen);
     Adam(2e-4, b1=0, b2=0.999, eps=1e-8). G and E run forward only (no gradients).
  2. E+G update (one optimizer over both, against the new D): L_EG = sum over (x, z, xz)
     of mean s_enc - mean s_gen; no gradients for D's parameters.
  3. EMA of the E+G parameters (not of the buffers), decay min(0.999, (1 + t) / (10 + t))
     at step t (`game.ema_warmup`, on in the config).
Every network runs in training mode in both updates (batch statistics in G's batch
norm, a power iteration in every spectral norm), and, as in jgan, only the team being
updated keeps its networks' new buffers: the D update writes D's u vectors, not G's;
the E+G update writes G's u vectors and batch-norm running statistics, not D's.

Precision (`--dtypes`): "float32" runs in float32 (on CUDA with TF32 allowed for
matrix products and convolutions, as XLA's default precision on GPUs, and cuDNN's
autotuner on, as XLA autotunes its convolutions); "bfloat16" runs the two loss functions
(forward passes and losses) under `torch.autocast(device, torch.bfloat16)` with float32
parameters, optimizer state and EMA, as jgan's `precision.compute_dtype=bfloat16`
(autocast keeps normalizations and reductions in float32 where jgan's casts compute them
in bfloat16 with float32 statistics). The reversible stack's backward pass recomputes
under the autocast state its forward pass ran with.

Device: `--device` (default: cuda when available, else cpu). The parameter counts are
taken from jgan's game by shape only (`jax.eval_shape`) on JAX's CPU backend, so that JAX
takes no GPU memory in this process.

Modes: "eager"; "compile": the two loss functions (forward passes and losses, whose
backward graphs AOTAutograd compiles too) under `torch.compile` (default backend,
inductor), with `torch._dynamo.config.trace_autograd_ops = True` so that Dynamo traces
the reversible Function's backward (its `torch.autograd.grad` calls) instead of breaking
the graph there; the compiled graphs still save only each stack's output for the
backward pass (checked with saved-tensor hooks: about 1/12 of what plain autograd saves
for a 2-block stack), and the gradients equal eager ones to float32 rounding.
Inductor draws its own random numbers, so the two modes' losses differ at one seed. The optimizer
updates (Adam, `foreach=True`), `zero_grad`, the `requires_grad` switches and the EMA
(`torch._foreach_lerp_`) run eagerly in both modes. Threads: PyTorch's default
(`--threads=N` sets `torch.set_num_threads(N)`). On a machine whose cores are busy with
other work, the default threads oversubscribe them and the timings (eager and,
more so, compiled) become meaningless, tiny ops taking milliseconds: time on an idle
machine, or pass --threads=1 to compare single-threaded.

Differences from jgan's step that remain:
  * Layout NCHW (PyTorch's) instead of NHWC; random numbers from PyTorch's generator;
    weights are initialized with the same schemes but not the same values.
  * PyTorch's batch norm updates the running variance with the unbiased batch variance
    (flax: biased). It affects only the statistics used in inference, not the step.
  * l2 normalization in the power iteration: x / max(|x|, eps) (flax: x / sqrt(|x|^2 +
    eps)), and GroupNorm's variance formula may differ: rounding-level differences.
  * The step returns only the two losses; jgan's also computes the gradients' global
    norms and the mean scores as metrics (a few reductions).
  * jgan runs the whole step as one XLA program; here the optimizers and the EMA are
    separate eager calls, and each update is a forward call then `loss.backward()`
    (compile mode: a compiled forward and a compiled backward graph per update). Graph breaks Dynamo still makes are
    reported as "graph_breaks" (0 in the runs so far).
  * Compile time (and the first steps) are reported as "warmup_s", not in ms/step.

Besides timing, the script counts each network's parameters in PyTorch and in jgan (the
game built from the same config, `params` leaves only) and exits with an error naming
the network if they differ. Flags: --batch_sizes, --dtypes, --resolution, --device,
--rounds, --steps, --warmup, --compile/--no-compile (with --no-compile only eager is
timed), --compile_mode (torch.compile's mode), --threads, --profile DIR (after timing,
`--profile_steps` steps of each mode under `torch.profiler`: a Chrome trace
`torch-r{R}-b{B}-{dtype}-{mode}.json.gz` and the top kernels by device time
`...-{mode}.txt` in DIR). Each timed row is a JSON line on stdout (`bigbigan_throughput.py`
reads them).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CONFIG_MODULE = "experiments.configs.bigbigan"


# --------------------------------------------------------------------------- config

@dataclasses.dataclass(frozen=True)
class Arch:
    resolution: int
    channels: int
    latent_dim: int
    generator_width: int
    encoder_widths: tuple
    encoder_blocks: int
    encoder_head: tuple
    discriminator_width: int
    latent_hidden: tuple
    joint_hidden: tuple
    d_lr: float
    g_lr: float
    b1: float
    b2: float
    ema_decay: float
    ema_warmup: bool


def load_config(arg: str = "mnist"):
    """`bigbigan.py:ARG`, e.g. "mnist", "mnist,small" (the CPU-sized networks) or
    "mnist,large_batch,res128"."""
    return importlib.import_module(CONFIG_MODULE).get_config(arg)


def with_resolution(arg: str, resolution: int) -> str:
    """`arg` with the bigbigan.py option for `resolution` (32: none) in place of any."""
    parts = [p for p in arg.split(",") if p and p not in ("res64", "res128")]
    return ",".join(parts + ([f"res{resolution}"] if resolution != 32 else []))


def arch_from_config(c) -> Arch:
    """The architecture of `c`, refusing what this script does not implement."""
    b, g, opt = c.bigan, c.game, c.optimizer
    supported = {"prior": b.prior == "gaussian", "unary_x/unary_z": b.unary_x and b.unary_z,
                 "loss_type": g.loss_type == "hinge", "stochastic": b.stochastic,
                 "encoder": b.encoder == "revnet", "generator_spectral_norm":
                 b.generator_spectral_norm, "encoder_resolution": b.encoder_resolution in (
                     0, c.data.resolution), "encoder_lr_multiplier": b.encoder_lr_multiplier == 1,
                 "update_rule": g.update_rule == "alternating", "d_steps": g.d_steps == 1,
                 "unroll_steps": g.unroll_steps == 0, "ema_decay": g.ema_decay is not None,
                 "resolution": c.data.resolution in (32, 64, 128),
                 "optimizer": all(o.name == "adam" and o.schedule == "constant"
                                  and not o.clip_weights for o in opt.values())}
    unsupported = [k for k, ok in supported.items() if not ok]
    if unsupported:
        raise SystemExit(f"bigbigan_torch_reference: config settings not replicated: {unsupported}")
    if opt.generator.b1 != opt.discriminator.b1 or opt.generator.b2 != opt.discriminator.b2:
        raise SystemExit("bigbigan_torch_reference: the teams' Adam betas differ.")
    return Arch(c.data.resolution, c.data.channels, b.latent_dim, b.generator_width,
                tuple(b.encoder_widths), b.encoder_blocks, tuple(b.encoder_head_hidden),
                b.discriminator_width, tuple(b.latent_hidden), tuple(b.joint_hidden),
                opt.discriminator.learning_rate, opt.generator.learning_rate,
                opt.generator.b1, opt.generator.b2, g.ema_decay, bool(g.ema_warmup))


# --------------------------------------------------------------------------- layers

def glorot_(w: torch.Tensor, gain: float = 1.0) -> None:
    nn.init.xavier_uniform_(w, gain)


def lecun_normal_(w: torch.Tensor) -> None:
    """flax's lecun_normal: truncated normal of variance 1 / fan_in."""
    std = math.sqrt(1.0 / w[0].numel()) / 0.87962566103423978
    nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std)


def spectral_normalized(weight: torch.Tensor, u: torch.Tensor, update: bool) -> torch.Tensor:
    """`weight / sigma` after one power iteration from `u` (written back if `update`)."""
    mat = weight.flatten(1)                                # [out, fan_in]
    with torch.no_grad():
        v = F.normalize(u @ mat, dim=0, eps=1e-12)
        u_new = F.normalize(mat @ v, dim=0, eps=1e-12)
        if update:
            u.copy_(u_new)
    return weight / torch.dot(u_new, mat @ v)


class SNConv(nn.Conv2d):
    """Stride-1 "same" convolution, Glorot-uniform (`gain`), zero bias, optional SN."""

    def __init__(self, c_in, c_out, size, *, gain=1.0, bias=True, sn=True):
        super().__init__(c_in, c_out, size, padding=(size - 1) // 2, bias=bias)
        glorot_(self.weight, gain)
        if bias:
            nn.init.zeros_(self.bias)
        self.sn = sn
        if sn:
            self.register_buffer("u", torch.randn(c_out))

    def forward(self, x, update: bool = False):
        w = spectral_normalized(self.weight, self.u, update) if self.sn else self.weight
        return self._conv_forward(x, w, self.bias)


class SNLinear(nn.Linear):
    """Glorot-uniform dense layer with spectral norm."""

    def __init__(self, d_in, d_out):
        super().__init__(d_in, d_out)
        glorot_(self.weight)
        nn.init.zeros_(self.bias)
        self.register_buffer("u", torch.randn(d_out))

    def forward(self, x, update: bool = False):
        return F.linear(x, spectral_normalized(self.weight, self.u, update), self.bias)


def batch_norm(bn: nn.BatchNorm2d, x, update: bool):
    """Training-mode batch norm; running statistics updated only if `update`."""
    return F.batch_norm(x, bn.running_mean if update else None,
                        bn.running_var if update else None, bn.weight, bn.bias,
                        True, bn.momentum, bn.eps)


def up2(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


def group_count(features: int, groups: int = 8) -> int:
    groups = max(1, min(groups, features))
    while features % groups:
        groups -= 1
    return groups


# --------------------------------------------------------------------------- G

class GeneratorBlock(nn.Module):
    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in, eps=1e-5, momentum=0.1)
        self.conv1 = SNConv(c_in, width, 3, gain=math.sqrt(2), bias=False)
        self.bn2 = nn.BatchNorm2d(width, eps=1e-5, momentum=0.1)
        self.conv2 = SNConv(width, width, 3, gain=math.sqrt(2))
        self.shortcut = SNConv(c_in, width, 1)

    def forward(self, x, update):
        h = self.conv1(up2(F.relu(batch_norm(self.bn1, x, update))), update)
        h = self.conv2(F.relu(batch_norm(self.bn2, h, update)), update)
        return h + up2(self.shortcut(x, update))


def generator_widths(width: int, resolution: int) -> tuple:
    """jgan's `resnet.generator_widths`: the dense output's and each up-block's channels
    (`width` throughout at 32 px; BigGAN's ch * (16, 16, 8, 4, 2[, 1]), ch = width / 4,
    at 64 / 128 px)."""
    multipliers = {64: (16, 16, 8, 4, 2), 128: (16, 16, 8, 4, 2, 1)}
    if resolution == 32:
        return (width,) * 4
    if width % 4:
        raise SystemExit(f"bigbigan_torch_reference: width {width} at {resolution} px "
                         "needs a multiple of 4.")
    return tuple(width // 4 * m for m in multipliers[resolution])


def discriminator_layout(width: int, resolution: int) -> tuple:
    """jgan's `resnet.discriminator_layout`: (features, downsample, optimized) per block."""
    multipliers = {64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16)}
    if resolution not in multipliers:
        return ((width, True, True), (width, True, False), (width, False, False),
                (width, False, False))
    if width % 4:
        raise SystemExit(f"bigbigan_torch_reference: width {width} at {resolution} px "
                         "needs a multiple of 4.")
    m = multipliers[resolution]
    return tuple((width // 4 * k, i < len(m) - 1, i == 0) for i, k in enumerate(m))


class Generator(nn.Module):
    def __init__(self, a: Arch):
        super().__init__()
        widths = generator_widths(a.generator_width, a.resolution)
        self.width = widths[0]
        self.project = SNLinear(a.latent_dim, 16 * widths[0])
        self.blocks = nn.ModuleList([GeneratorBlock(i, o) for i, o in zip(widths, widths[1:])])
        self.out_bn = nn.BatchNorm2d(widths[-1], eps=1e-5, momentum=0.1)
        self.out_conv = SNConv(widths[-1], a.channels, 3)

    def forward(self, z, update: bool):
        x = self.project(z, update).view(z.shape[0], self.width, 4, 4)
        for block in self.blocks:
            x = block(x, update)
        return torch.tanh(self.out_conv(F.relu(batch_norm(self.out_bn, x, update)), update))


# --------------------------------------------------------------------------- E

class ResidualFunction(nn.Module):
    """GroupNorm - ReLU - conv3x3 (no bias) - GroupNorm - ReLU - conv3x3 (zero init)."""

    def __init__(self, c: int):
        super().__init__()
        self.norm0 = nn.GroupNorm(group_count(c), c, eps=1e-6)
        self.conv0 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(group_count(c), c, eps=1e-6)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        lecun_normal_(self.conv0.weight)
        nn.init.zeros_(self.conv1.weight), nn.init.zeros_(self.conv1.bias)

    def forward(self, x):
        x = self.conv0(F.relu(self.norm0(x)))
        return self.conv1(F.relu(self.norm1(x)))


def _block(f, g, x1, x2):
    y1 = x1 + f(x2)
    return y1, x2 + g(y1)


class _ReversibleStack(torch.autograd.Function):
    """`(x1, x2) -> (y1, y2)` through `stack.f[i], stack.g[i]`; backward recomputes."""

    @staticmethod
    def forward(ctx, x1, x2, stack, *params):
        for f, g in zip(stack.f, stack.g):                 # autograd is off in forward
            x1, x2 = _block(f, g, x1, x2)
        ctx.stack = stack
        # The backward pass recomputes under the forward's autocast state (as
        # torch.amp.custom_fwd / custom_bwd do), so that its dtypes match.
        device_type = x1.device.type
        ctx.autocast = (device_type, torch.is_autocast_enabled(device_type),
                        torch.get_autocast_dtype(device_type))
        ctx.save_for_backward(x1, x2)
        return x1, x2

    @staticmethod
    def backward(ctx, dy1, dy2):
        stack = ctx.stack
        y1, y2 = ctx.saved_tensors
        device_type, enabled, dtype = ctx.autocast
        grads = {}
        for f, g in reversed(list(zip(stack.f, stack.g))):
            with torch.autocast(device_type, dtype=dtype, enabled=enabled):
                with torch.no_grad():                      # the block's input, from its output
                    x2 = y2 - g(y1)
                    x1 = y1 - f(x2)
                with torch.enable_grad():
                    a, b = x1.detach().requires_grad_(), x2.detach().requires_grad_()
                    params = [*f.parameters(), *g.parameters()]
                    out = _block(f, g, a, b)
                    dy1, dy2, *d_params = torch.autograd.grad(out, (a, b, *params),
                                                              (dy1, dy2))
            grads.update(zip(params, d_params))
            y1, y2 = x1, x2
        return (dy1, dy2, None, *(grads[p] for p in stack.parameters()))


class ReversibleStack(nn.Module):
    def __init__(self, channels: int, num_blocks: int):
        super().__init__()
        self.f = nn.ModuleList([ResidualFunction(channels // 2) for _ in range(num_blocks)])
        self.g = nn.ModuleList([ResidualFunction(channels // 2) for _ in range(num_blocks)])

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        y1, y2 = _ReversibleStack.apply(x1, x2, self, *self.parameters())
        return torch.cat([y1, y2], dim=1)


class Encoder(nn.Module):
    def __init__(self, a: Arch):
        super().__init__()
        w = a.encoder_widths
        self.stem = nn.Conv2d(a.channels, w[0], 3, padding=1)
        self.downs = nn.ModuleList([nn.Conv2d(i, o, 1) for i, o in zip(w, w[1:])])
        self.stages = nn.ModuleList([ReversibleStack(c, a.encoder_blocks) for c in w])
        self.out_norm = nn.GroupNorm(group_count(w[-1]), w[-1], eps=1e-6)
        sizes = (w[-1], *a.encoder_head)
        self.hidden = nn.ModuleList([nn.Linear(i, o) for i, o in zip(sizes, sizes[1:])])
        self.out = nn.Linear(sizes[-1], 2 * a.latent_dim)
        for layer in (self.stem, *self.downs, *self.hidden, self.out):
            lecun_normal_(layer.weight), nn.init.zeros_(layer.bias)

    def forward(self, x):
        h = self.stem(x)
        for i, stage in enumerate(self.stages):
            if i:
                h = self.downs[i - 1](F.avg_pool2d(h, 2))
            h = stage(h)
        h = F.relu(self.out_norm(h)).mean(dim=(2, 3))
        for layer in self.hidden:
            h = F.relu(layer(h))
        mean, log_var = self.out(h).chunk(2, dim=1)
        return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)


# --------------------------------------------------------------------------- D

class DiscriminatorBlock(nn.Module):
    def __init__(self, c_in, width, downsample, optimized):
        super().__init__()
        self.downsample, self.optimized = downsample, optimized
        self.conv1 = SNConv(c_in, width, 3, gain=math.sqrt(2))
        self.conv2 = SNConv(width, width, 3, gain=math.sqrt(2))
        self.shortcut = SNConv(c_in, width, 1) if downsample or c_in != width else None

    def forward(self, x, update):
        h = self.conv1(x if self.optimized else F.relu(x), update)
        h = self.conv2(F.relu(h), update)
        if self.downsample:
            h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
        if self.shortcut is not None:
            x = self.shortcut(x, update)
        return h + x


class MLP(nn.Module):
    def __init__(self, d_in, hidden):
        super().__init__()
        sizes = (d_in, *hidden)
        self.layers = nn.ModuleList([SNLinear(i, o) for i, o in zip(sizes, sizes[1:])])

    def forward(self, h, update):
        for layer in self.layers:
            h = F.relu(layer(h, update))
        return h


class PairDiscriminator(nn.Module):
    def __init__(self, a: Arch):
        super().__init__()
        layout = discriminator_layout(a.discriminator_width, a.resolution)
        c_in = (a.channels, *(f for f, _, _ in layout[:-1]))
        self.trunk = nn.ModuleList([DiscriminatorBlock(c, f, d, o)
                                    for c, (f, d, o) in zip(c_in, layout)])
        w = layout[-1][0]                                  # h_x's width
        self.H = MLP(a.latent_dim, a.latent_hidden)
        self.J = MLP(w + a.latent_hidden[-1], a.joint_hidden)
        self.theta_x = SNLinear(w, 1)
        self.theta_z = SNLinear(a.latent_hidden[-1], 1)
        self.theta_xz = SNLinear(a.joint_hidden[-1], 1)

    def forward(self, x, z, update: bool):
        for block in self.trunk:
            x = block(x, update)
        h_x = F.relu(x).sum(dim=(2, 3))
        h_z = self.H(z, update)
        h_xz = self.J(torch.cat([h_x, h_z], dim=1), update)
        return (self.theta_x(h_x, update)[:, 0], self.theta_z(h_z, update)[:, 0],
                self.theta_xz(h_xz, update)[:, 0])


# --------------------------------------------------------------------------- the step

class Nets(nn.Module):
    def __init__(self, a: Arch):
        super().__init__()
        self.latent_dim = a.latent_dim
        self.generator, self.encoder, self.discriminator = (
            Generator(a), Encoder(a), PairDiscriminator(a))


def pair_scores(nets: Nets, x, *, d_update: bool):
    """[(s_enc, s_gen)] for s_x, s_z, s_xz from one D call on [(x, E(x)); (G(z), z)].
    The team being updated (D if `d_update`, else G and E) keeps its buffers' updates."""
    n = x.shape[0]
    z = torch.randn(n, nets.latent_dim, device=x.device)
    images = torch.cat([x, nets.generator(z, not d_update)])
    latents = torch.cat([nets.encoder(x), z])
    return [(s[:n], s[n:]) for s in nets.discriminator(images, latents, d_update)]


def discriminator_loss(nets: Nets, x):
    return sum(F.relu(1 - e).mean() + F.relu(1 + g).mean()
               for e, g in pair_scores(nets, x, d_update=True))


def encoder_generator_loss(nets: Nets, x):
    return sum(e.mean() - g.mean() for e, g in pair_scores(nets, x, d_update=False))


class Trainer:
    """Alternating updates (D, then E+G) and the EMA of E+G, as jgan's step; with
    `autocast_dtype` (torch.bfloat16) the loss functions run under autocast."""

    def __init__(self, nets: Nets, a: Arch, compile_losses: bool, *,
                 autocast_dtype: torch.dtype | None = None, compile_mode: str | None = None):
        self.nets = nets
        self.device_type = next(nets.parameters()).device.type
        self.autocast_dtype = autocast_dtype
        self.d_params = list(nets.discriminator.parameters())
        self.eg_params = [*nets.generator.parameters(), *nets.encoder.parameters()]
        adam = lambda params, lr: torch.optim.Adam(params, lr=lr, betas=(a.b1, a.b2),
                                                   eps=1e-8, foreach=True)
        self.d_opt, self.eg_opt = adam(self.d_params, a.d_lr), adam(self.eg_params, a.g_lr)
        self.ema = [p.detach().clone() for p in self.eg_params]
        self.ema_decay, self.ema_warmup, self.num_steps = a.ema_decay, a.ema_warmup, 0
        d_fn = lambda x: discriminator_loss(nets, x)
        eg_fn = lambda x: encoder_generator_loss(nets, x)
        if compile_losses:   # trace the reversible backward's autograd.grad, no graph break
            torch._dynamo.config.trace_autograd_ops = True
        compile_ = lambda fn: torch.compile(fn, mode=compile_mode)
        self.d_loss = compile_(d_fn) if compile_losses else d_fn
        self.eg_loss = compile_(eg_fn) if compile_losses else eg_fn

    def _update(self, opt, loss_fn, x, trained, frozen):
        for p in trained:
            p.requires_grad_(True)
        for p in frozen:
            p.requires_grad_(False)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(self.device_type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            loss = loss_fn(x)
        loss.backward()
        opt.step()
        return loss.detach()

    def step(self, x):
        d = self._update(self.d_opt, self.d_loss, x, self.d_params, self.eg_params)
        g = self._update(self.eg_opt, self.eg_loss, x, self.eg_params, self.d_params)
        decay = self.ema_decay
        if self.ema_warmup:
            decay = min(decay, (1.0 + self.num_steps) / (10.0 + self.num_steps))
        with torch.no_grad():
            torch._foreach_lerp_(self.ema, self.eg_params, 1.0 - decay)
        self.num_steps += 1
        return d, g


# --------------------------------------------------------------------------- checks

def torch_param_counts(nets: Nets) -> dict:
    return {name: sum(p.numel() for p in getattr(nets, name).parameters())
            for name in ("generator", "encoder", "discriminator")}


def jgan_param_counts(config) -> dict:
    """Leaves of `params` per network of jgan's game, built from `config` (shapes only:
    nothing is computed; `main` keeps JAX on its CPU backend, so no GPU memory is taken)."""
    import jax
    import jax.numpy as jnp
    from jgan.train import builders
    game = builders.build_game(config)
    r, c, b = config.data.resolution, config.data.channels, 2
    batch = {"image": jax.ShapeDtypeStruct((b, r, r, c), jnp.float32),
             "label": jax.ShapeDtypeStruct((b,), jnp.int32)}
    params = jax.eval_shape(game.init, jax.random.PRNGKey(0), batch).params()
    return {name: int(sum(np.size(leaf) for leaf in jax.tree.leaves(params[name])))
            for name in ("generator", "encoder", "discriminator")}


def check_param_counts(nets: Nets, config) -> dict:
    ours, theirs = torch_param_counts(nets), jgan_param_counts(config)
    for name in ours:
        print(f"params {name:14s} torch {ours[name]:>10,d}   jgan {theirs[name]:>10,d}")
    wrong = [n for n in ours if ours[n] != theirs[n]]
    if wrong:
        raise SystemExit("bigbigan_torch_reference: parameter counts differ for "
                         + ", ".join(f"{n} (torch {ours[n]}, jgan {theirs[n]})" for n in wrong))
    return {"torch": ours, "jgan": theirs}


# --------------------------------------------------------------------------- timing

DTYPES = {"float32": None, "bfloat16": torch.bfloat16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_mode(a: Arch, batch_size: int, mode: str, args, *, dtype: str = "float32",
              device: torch.device | str = "cpu") -> dict:
    device = torch.device(device)
    torch.manual_seed(0)
    if mode == "compile":
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
    nets = Nets(a).to(device)
    trainer = Trainer(nets, a, compile_losses=mode == "compile", autocast_dtype=DTYPES[dtype],
                      compile_mode=getattr(args, "compile_mode", None))
    shape = (batch_size, a.channels, a.resolution, a.resolution)
    x = torch.rand(shape, device=device) * 2 - 1
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.warmup):
        losses = trainer.step(x)
    _sync(device)
    warmup_s = time.perf_counter() - start
    rounds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(args.steps):
            losses = trainer.step(x)
        d, g = (float(v) for v in losses)                  # waits for the device
        rounds.append(1e3 * (time.perf_counter() - start) / args.steps)
        if not (math.isfinite(d) and math.isfinite(g)):
            raise SystemExit(f"bigbigan_torch_reference: non-finite losses d={d} g={g} "
                             f"(batch {batch_size}, {mode}, {dtype}).")
    ms = statistics.median(rounds)
    out = {"batch": batch_size, "mode": mode, "dtype": dtype, "resolution": a.resolution,
           "ms_per_step": round(ms, 3), "images_per_s": round(batch_size / ms * 1e3, 1),
           "rounds_ms": [round(r, 3) for r in rounds], "steps": args.steps,
           "warmup_steps": args.warmup, "warmup_s": round(warmup_s, 2),
           "d_loss": d, "g_loss": g, "device": device.type,
           "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                           else "cpu"),
           "threads": torch.get_num_threads(), "torch": torch.__version__}
    if device.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    if mode == "compile":
        out["graph_breaks"] = sum(torch._dynamo.utils.counters["graph_break"].values())
        out["compile_mode"] = getattr(args, "compile_mode", None) or "default"
    if getattr(args, "profile", None):
        out["profile"] = profile_steps(trainer, x, Path(args.profile),
                                       f"torch-r{a.resolution}-b{batch_size}-{dtype}-{mode}",
                                       args.profile_steps, device)
    return out


def profile_steps(trainer: Trainer, x, directory: Path, name: str, steps: int,
                  device: torch.device) -> dict:
    """`steps` steps under `torch.profiler`: DIR/NAME.json.gz (Chrome trace) and
    DIR/NAME.txt (operators by device time, or CPU time on a CPU)."""
    from torch.profiler import ProfilerActivity, profile
    directory.mkdir(parents=True, exist_ok=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                           else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            losses = trainer.step(x)
        [float(v) for v in losses]
        _sync(device)
    trace = directory / f"{name}.json.gz"
    prof.export_chrome_trace(str(trace))
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    table = directory / f"{name}.txt"
    table.write_text(prof.key_averages().table(sort_by=sort, row_limit=40))
    return {"trace": str(trace), "table": str(table), "steps": steps}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch_sizes", default="256,512,1024,2048",
                   type=lambda s: [int(v) for v in s.split(",") if v])
    p.add_argument("--dtypes", default="float32",
                   type=lambda s: [v for v in s.split(",") if v],
                   help="comma-separated: float32 (TF32 on CUDA), bfloat16 (autocast)")
    p.add_argument("--resolution", type=int, default=32, choices=(32, 64, 128),
                   help="image size: bigbigan.py's networks for it (res64, res128)")
    p.add_argument("--device", default=None,
                   help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (median reported)")
    p.add_argument("--steps", type=int, default=5, help="steps per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (compiles)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                   help="also time torch.compile (default backend)")
    p.add_argument("--compile_mode", default=None,
                   help="torch.compile's mode (default, reduce-overhead, max-autotune, ...)")
    p.add_argument("--modes", default=None, type=lambda s: [v for v in s.split(",") if v],
                   help="modes to time, of eager,compile (default: both, or eager with "
                        "--no-compile)")
    p.add_argument("--config_arg", default="mnist",
                   help="the bigbigan.py argument whose networks are timed (mnist,small: CPU-sized)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch.set_num_threads; 0 keeps PyTorch's default")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="after timing, profile --profile_steps steps of each mode into DIR")
    p.add_argument("--profile_steps", type=int, default=3)
    args = p.parse_args(argv)
    if min(args.rounds, args.steps, args.warmup + 1, *args.batch_sizes) < 1:
        p.error("--rounds, --steps and the batch sizes must be >= 1, --warmup >= 0.")
    if set(args.dtypes) - set(DTYPES):
        p.error(f"--dtypes takes {sorted(DTYPES)}, got {args.dtypes}.")
    if args.modes is None:
        args.modes = ["eager", "compile"] if args.compile else ["eager"]
    if set(args.modes) - {"eager", "compile"}:
        p.error(f"--modes takes eager,compile, got {args.modes}.")
    return args


def main(argv=None):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")   # jgan's param counts: no GPU memory
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":   # float32 as XLA on GPUs: TF32 products, tuned convolutions
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    # One static graph per batch size, as XLA compiles (no dynamic-shape recompile).
    torch._dynamo.config.automatic_dynamic_shapes = False
    config = load_config(with_resolution(args.config_arg, args.resolution))
    arch = arch_from_config(config)
    counts = check_param_counts(Nets(arch), config)
    print(json.dumps({"param_counts": counts}), flush=True)
    results = []
    for batch_size in args.batch_sizes:
        for dtype in args.dtypes:
            for mode in args.modes:
                results.append(time_mode(arch, batch_size, mode, args, dtype=dtype,
                                         device=device))
                print(json.dumps(results[-1]), flush=True)
    print(f"\n{'res':>4} {'batch':>6} {'dtype':>9} {'mode':>8} {'ms/step':>10} {'images/s':>10}  "
          f"(torch {torch.__version__}, {device}, {torch.get_num_threads()} threads)")
    for r in results:
        print(f"{r['resolution']:>4} {r['batch']:>6} {r['dtype']:>9} {r['mode']:>8} "
              f"{r['ms_per_step']:>10.1f} {r['images_per_s']:>10.1f}")


if __name__ == "__main__":
    sys.exit(main())
