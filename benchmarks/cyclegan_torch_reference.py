"""PyTorch twin of jgan's CycleGAN networks and training step, for timing comparisons only.

    PYTHONPATH=. python benchmarks/cyclegan_torch_reference.py                 # 256 px
    PYTHONPATH=. python benchmarks/cyclegan_torch_reference.py --resolution=32 --steps=2

PyTorch is used by the benchmarks only (`benchmarks/cyclegan_throughput.py` times this
step against jgan's); nothing in `jgan/` or `tests/` imports it.

Re-implements, layer for layer, the game of `jgan.families.cyclegan` under
`experiments/configs/cyclegan.py:folder_domains` (the paper's 256 px: generator width
64, 9 residual blocks, 70 x 70 PatchGANs of width 64, batch 1; `--resolution` changes
only the image size). The architecture is read from the config's `cyclegan` section and
the settings this script does not implement are refused (`arch_from_config`).

  G_AB, G_BA  `jgan.models.resnet_translator.ResnetTranslator`: reflection pad 3 - conv7x7
     (w) - norm - ReLU; 2 x [conv3x3 stride 2 padding 1 (2w, 4w) - norm - ReLU];
     `generator_blocks` x residual block [reflection pad 1 - conv3x3 - norm - ReLU -
     reflection pad 1 - conv3x3 - norm, + x]; 2 x [conv-transpose 3x3 stride 2 (2w, w),
     output 2x the input - norm - ReLU]; reflection pad 3 - conv7x7 (C) - tanh.
  D_A, D_B    `jgan.models.patchgan.PatchGAN`: conv4x4 padding 1 of widths w, 2w, 4w, ...
     (at most 8w), stride 2 for the first `discriminator_layers` and 1 for the next,
     norm on all but the first, LeakyReLU(0.2); conv4x4 stride 1 padding 1 to 1 logit.
  norm        "instance": flax `nn.InstanceNorm(epsilon=1e-5)`, a learned scale and bias
     per channel (`nn.InstanceNorm2d(affine=True)`; CycleGAN's PyTorch code has none);
     "batch": `jgan.models.unet.BatchStatisticsNorm` (batch statistics, no running
     averages); "none". Every convolution has a bias, as flax's do.

One step is jgan's alternating step with the teams in the game's order (generators, then
discriminators), each update on the whole batch:
  1. generator update (one Adam over G_AB and G_BA; D frozen, no weight gradients):
     L_G = lsg(D_B(G_AB(a))) + lsg(D_A(G_BA(b)))
           + lambda (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)
           + lambda_id lambda (|G_AB(b) - b|_1 + |G_BA(a) - a|_1),
     lsg(f) = mean (f - 1)^2 / 2, |.|_1 the mean absolute error, lambda = 10, lambda_id 0.5.
  2. discriminator update, against fakes of the *updated* generators (recomputed, no
     gradients), each drawn through its domain's image pool of 50:
     L_D = 1/2 lsd(D_A(a), D_A(pool_A(G_BA(b)))) + 1/2 lsd(D_B(b), D_B(pool_B(G_AB(a)))),
     lsd(r, f) = mean (r - 1)^2 / 2 + mean f^2 / 2.
  Adam(2e-4, b1 0.5, b2 0.999, eps 1e-8) per team, the learning rate constant for the
  first half of `num_steps` and then linear to 0 (`LambdaLR`, as optax's schedule).
The image pool (`ImagePool`) follows `jgan.families.image_pool`: each fake in turn is
stored and shown while the pool holds fewer than 50; once full, with probability 1/2 a
uniformly picked stored image is shown and the new one takes its slot, else the new one
is shown. Its draws come from Python's `random` (no device synchronization).

Differences from jgan's step that remain (none changes the work done):
  * Layout NCHW instead of NHWC; random numbers and initial values differ (same schemes:
    flax's LeCun-normal kernels, zero biases, unit scales).
  * Conv-transpose: flax's "SAME" transposed convolution does not flip the kernel and may
    place its padding a pixel differently from `ConvTranspose2d(padding=1,
    output_padding=1)`; same shapes and FLOPs, different numbers.
  * jgan runs the step as one XLA program (pool queries in it, as `lax.scan`); here the
    pool and the optimizers run eagerly between the forward/backward calls (with
    `compile_losses`, the generator loss, the generators' fakes and the discriminator
    loss are three compiled functions).
  * jgan's step also returns the gradients' global norms and the discriminators' mean
    logits as metrics (a few reductions); this step returns the two losses.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import math
import os
import random
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CONFIG_MODULE = "experiments.configs.cyclegan"
NETWORKS = ("generator_a2b", "generator_b2a", "discriminator_a", "discriminator_b")


# --------------------------------------------------------------------------- config

@dataclasses.dataclass(frozen=True)
class Arch:
    resolution: int
    channels: int
    generator_width: int
    generator_blocks: int
    discriminator_width: int
    discriminator_layers: int
    norm: str
    cycle_weight: float
    identity_weight: float
    pool_size: int
    g_lr: float
    d_lr: float
    b1: float
    b2: float
    schedule: str
    num_steps: int


def load_config(arg: str = "folder_domains", resolution: int | None = None):
    """`cyclegan.py:ARG` (e.g. "folder_domains", "folder_domains,runlocal"), its
    `data.resolution` set to `resolution` when given."""
    config = importlib.import_module(CONFIG_MODULE).get_config(arg)
    if resolution:
        config.data.resolution = resolution
    return config


def arch_from_config(c) -> Arch:
    """The architecture and step settings of `c`; refuses what this script does not
    implement."""
    g, s, opt = c.game, c.cyclegan, c.optimizer
    supported = {
        "loss_type": g.loss_type == "least_squares", "update_rule": g.update_rule == "alternating",
        "ema_decay": g.ema_decay is None, "micro_batches": g.micro_batches == 1,
        "unroll_steps": g.unroll_steps == 0, "norm": s.norm in ("instance", "batch", "none"),
        "optimizer": all(o.name == "adam" and o.schedule in ("constant", "linear_decay")
                         and not o.clip_weights for o in opt.values()),
        "same_betas_and_schedule": (opt.generator.b1, opt.generator.b2, opt.generator.schedule)
        == (opt.discriminator.b1, opt.discriminator.b2, opt.discriminator.schedule)}
    unsupported = [k for k, ok in supported.items() if not ok]
    if unsupported:
        raise SystemExit(f"cyclegan_torch_reference: config settings not replicated: {unsupported}")
    return Arch(c.data.resolution, c.data.channels, s.generator_width, s.generator_blocks,
                s.discriminator_width, s.discriminator_layers, s.norm, s.cycle_weight,
                s.identity_weight, s.pool_size, opt.generator.learning_rate,
                opt.discriminator.learning_rate, opt.generator.b1, opt.generator.b2,
                opt.generator.schedule, c.num_steps)


# --------------------------------------------------------------------------- layers

class BatchStatisticsNorm(nn.Module):
    """`jgan.models.unet.BatchStatisticsNorm`: batch statistics, scale and bias, no
    running averages."""

    def __init__(self, c: int):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))

    def forward(self, x):
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, 1e-5)


def norm_layer(kind: str, c: int) -> nn.Module:
    """jgan's `unet.normalization(kind)` for `c` channels."""
    if kind == "instance":
        return nn.InstanceNorm2d(c, eps=1e-5, affine=True)
    return BatchStatisticsNorm(c) if kind == "batch" else nn.Identity()


def flax_init_(module: nn.Module) -> None:
    """flax's defaults on every convolution: LeCun-normal kernels (truncated normal of
    variance 1 / fan_in), zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
            nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
            nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------- networks

class ResidualBlock(nn.Module):
    def __init__(self, c: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm_layer(norm, c), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm_layer(norm, c))

    def forward(self, x):
        return x + self.body(x)


class ResnetTranslator(nn.Module):
    """`jgan.models.resnet_translator.ResnetTranslator`: [B, C, H, W] -> [B, C, H, W]."""

    def __init__(self, channels: int, width: int, num_blocks: int, norm: str):
        super().__init__()
        w = width
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, w, 7), norm_layer(norm, w), nn.ReLU()]
        for c_in, c_out in ((w, 2 * w), (2 * w, 4 * w)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), norm_layer(norm, c_out),
                       nn.ReLU()]
        layers += [ResidualBlock(4 * w, norm) for _ in range(num_blocks)]
        for c_in, c_out in ((4 * w, 2 * w), (2 * w, w)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
                       norm_layer(norm, c_out), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        flax_init_(self)

    def forward(self, x):
        return self.net(x)


class PatchGAN(nn.Module):
    """`jgan.models.patchgan.PatchGAN`: [B, C, H, W] -> logits [B, 1, H', W']."""

    def __init__(self, channels: int, width: int, num_layers: int, norm: str):
        super().__init__()
        layers, c_in = [], channels
        for i in range(num_layers + 1):
            c_out = min(width * 2 ** i, 8 * width)
            layers.append(nn.Conv2d(c_in, c_out, 4, stride=2 if i < num_layers else 1, padding=1))
            if i > 0:
                layers.append(norm_layer(norm, c_out))
            layers.append(nn.LeakyReLU(0.2))
            c_in = c_out
        layers.append(nn.Conv2d(c_in, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        flax_init_(self)

    def forward(self, x):
        return self.net(x)


def build_networks(a: Arch) -> nn.ModuleDict:
    """The four networks under jgan's names (`NETWORKS`)."""
    gen = lambda: ResnetTranslator(a.channels, a.generator_width, a.generator_blocks, a.norm)
    disc = lambda: PatchGAN(a.channels, a.discriminator_width, a.discriminator_layers, a.norm)
    return nn.ModuleDict({"generator_a2b": gen(), "generator_b2a": gen(),
                          "discriminator_a": disc(), "discriminator_b": disc()})


# --------------------------------------------------------------------------- image pool

class ImagePool:
    """`jgan.families.image_pool` on a preallocated `[size, C, H, W]` buffer; the count
    and the draws live on the host, so a query never waits for the device."""

    def __init__(self, size: int, shape: tuple, device, seed: int = 0):
        self.images = torch.zeros((size, *shape), device=device)
        self.size, self.count, self.rng = size, 0, random.Random(seed)

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        """The images to show for `fakes` [B, C, H, W], each stored in turn."""
        shown = []
        for image in fakes.float():
            if self.count < self.size:            # not full: store it and show it
                self.images[self.count].copy_(image)
                self.count += 1
                shown.append(image)
            elif self.rng.random() < 0.5:         # full, swap: show a stored one
                i = self.rng.randrange(self.size)
                shown.append(self.images[i].clone())
                self.images[i].copy_(image)
            else:                                  # full, no swap: show the new one
                shown.append(image)
        return torch.stack(shown)


# --------------------------------------------------------------------------- losses

def l1(x, y):
    return (x - y).abs().mean()


def lsgan_generator(fake_logits):
    return 0.5 * (fake_logits.float() - 1).square().mean()


def lsgan_discriminator(real_logits, fake_logits):
    return (0.5 * (real_logits.float() - 1).square().mean()
            + 0.5 * fake_logits.float().square().mean())


def generator_loss(nets: nn.ModuleDict, a: Arch, real_a, real_b):
    """L_G of the module docstring (`cyclegan._generator_loss`)."""
    g_ab, g_ba = nets["generator_a2b"], nets["generator_b2a"]
    fake_b, fake_a = g_ab(real_a), g_ba(real_b)
    total = (lsgan_generator(nets["discriminator_b"](fake_b))
             + lsgan_generator(nets["discriminator_a"](fake_a)))
    total = total + a.cycle_weight * (l1(g_ba(fake_b), real_a) + l1(g_ab(fake_a), real_b))
    if a.identity_weight:
        identity = l1(g_ab(real_b), real_b) + l1(g_ba(real_a), real_a)
        total = total + a.identity_weight * a.cycle_weight * identity
    return total


def generator_fakes(nets: nn.ModuleDict, real_a, real_b):
    """(G_BA(b), G_AB(a)): the fakes of domains A and B, without gradients."""
    with torch.no_grad():
        return nets["generator_b2a"](real_b), nets["generator_a2b"](real_a)


def discriminator_loss(nets: nn.ModuleDict, real_a, real_b, shown_a, shown_b):
    """L_D of the module docstring (`cyclegan._discriminator_loss`), given the fakes the
    pools show."""
    d_a, d_b = nets["discriminator_a"], nets["discriminator_b"]
    return 0.5 * (lsgan_discriminator(d_a(real_a), d_a(shown_a))
                  + lsgan_discriminator(d_b(real_b), d_b(shown_b)))


# --------------------------------------------------------------------------- the step

def lr_lambda(schedule: str, num_steps: int):
    """optax's schedule of `jgan.optimizers.build_optimizer` as a LambdaLR factor."""
    half = max(num_steps // 2, 1)
    if schedule == "constant":
        return lambda t: 1.0
    return lambda t: 1.0 if t < half else max(0.0, 1.0 - (t - half) / half)


class Trainer:
    """jgan's alternating CycleGAN step: the generators' update, then the
    discriminators' against the updated generators' fakes through the image pools.

    Args:
      nets: `build_networks(a)`, on the device.
      a: the architecture and step settings.
      compile_fn: `fn -> compiled fn` (e.g. torch.compile) for the generator loss, the
        fakes and the discriminator loss; None: eager.
      autocast: `() -> context` around the forward passes and losses (bfloat16
        autocast), or None.
    """

    def __init__(self, nets: nn.ModuleDict, a: Arch, *, compile_fn=None, autocast=None):
        self.nets, self.arch = nets.train(), a
        self.autocast = autocast or contextlib.nullcontext
        self.g_params = [*nets["generator_a2b"].parameters(), *nets["generator_b2a"].parameters()]
        self.d_params = [*nets["discriminator_a"].parameters(),
                         *nets["discriminator_b"].parameters()]
        adam = lambda params, lr: torch.optim.Adam(params, lr=lr, betas=(a.b1, a.b2), eps=1e-8,
                                                   foreach=True)
        self.g_opt, self.d_opt = adam(self.g_params, a.g_lr), adam(self.d_params, a.d_lr)
        factor = lr_lambda(a.schedule, a.num_steps)
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor)
                           for o in (self.g_opt, self.d_opt)]
        device = next(nets.parameters()).device
        shape = (a.channels, a.resolution, a.resolution)
        self.pools = [ImagePool(a.pool_size, shape, device, seed) for seed in (0, 1)]
        wrap = compile_fn or (lambda fn: fn)
        self.g_loss = wrap(lambda x, y: generator_loss(nets, a, x, y))
        self.fakes = wrap(lambda x, y: generator_fakes(nets, x, y))
        self.d_loss = wrap(lambda x, y, sx, sy: discriminator_loss(nets, x, y, sx, sy))

    @staticmethod
    def _trainable(params, flag: bool) -> None:
        for p in params:
            p.requires_grad_(flag)

    def _update(self, opt, scheduler, loss_fn, *inputs):
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            loss = loss_fn(*inputs)
        loss.backward()
        opt.step()
        scheduler.step()
        return loss.detach()

    def step(self, real_a, real_b):
        """One step on `[B, C, H, W]` batches of both domains; returns (L_G, L_D)."""
        self._trainable(self.g_params, True)
        self._trainable(self.d_params, False)
        g = self._update(self.g_opt, self.schedulers[0], self.g_loss, real_a, real_b)
        self._trainable(self.d_params, True)
        with self.autocast():
            fake_a, fake_b = self.fakes(real_a, real_b)
        shown_a, shown_b = self.pools[0].query(fake_a), self.pools[1].query(fake_b)
        d = self._update(self.d_opt, self.schedulers[1], self.d_loss, real_a, real_b,
                         shown_a, shown_b)
        return g, d


# --------------------------------------------------------------------------- checks

def torch_param_counts(nets: nn.ModuleDict) -> dict:
    return {name: sum(p.numel() for p in nets[name].parameters()) for name in NETWORKS}


def jgan_param_counts(config) -> dict:
    """Leaves of `params` per network of jgan's game built from `config`, by shape only
    (`jax.eval_shape`: nothing is computed)."""
    import jax
    import jax.numpy as jnp
    from jgan.train import builders
    game = builders.build_game(config)
    r, c = config.data.resolution, config.data.channels
    batch = {"image_a": jax.ShapeDtypeStruct((1, r, r, c), jnp.float32),
             "image_b": jax.ShapeDtypeStruct((1, r, r, c), jnp.float32),
             "label_a": jax.ShapeDtypeStruct((1,), jnp.int32),
             "label_b": jax.ShapeDtypeStruct((1,), jnp.int32)}
    return params_per_network(jax.eval_shape(game.init, jax.random.PRNGKey(0), batch))


def params_per_network(state) -> dict:
    """`{network: parameter count}` of a jgan CycleGAN `GameState` (or its shapes)."""
    import jax
    params = {**state.teams["generator"].params, **state.teams["discriminator"].params}
    return {name: int(sum(np.size(leaf) for leaf in jax.tree.leaves(params[name])))
            for name in NETWORKS}


def check_param_counts(nets: nn.ModuleDict, jgan_counts: dict) -> dict:
    """Prints both frameworks' counts per network; exits naming any that differ."""
    ours = torch_param_counts(nets)
    for name in NETWORKS:
        print(f"params {name:16s} torch {ours[name]:>12,d}   jgan {jgan_counts[name]:>12,d}")
    wrong = [n for n in NETWORKS if ours[n] != jgan_counts[n]]
    if wrong:
        raise SystemExit("cyclegan_torch_reference: parameter counts differ for "
                         + ", ".join(f"{n} (torch {ours[n]}, jgan {jgan_counts[n]})"
                                     for n in wrong))
    return {"torch": ours, "jgan": dict(jgan_counts)}


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config_arg", default="folder_domains",
                   help="the cyclegan.py argument whose networks are built")
    p.add_argument("--resolution", type=int, default=0, help="image size (0: the config's)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=0,
                   help="eager steps to run after the parameter check (losses printed)")
    return p.parse_args(argv)


def main(argv=None):
    """Checks the parameter counts against jgan's; runs `--steps` eager steps."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")   # jgan's counts: shapes only, no GPU memory
    args = parse_args(argv)
    config = load_config(args.config_arg, args.resolution or None)
    arch = arch_from_config(config)
    torch.manual_seed(0)
    nets = build_networks(arch)
    print(json.dumps({"param_counts": check_param_counts(nets, jgan_param_counts(config))}))
    trainer = Trainer(nets, arch)
    shape = (args.batch, arch.channels, arch.resolution, arch.resolution)
    a, b = torch.rand(shape) * 2 - 1, torch.rand(shape) * 2 - 1
    for i in range(args.steps):
        g, d = (float(v) for v in trainer.step(a, b))
        print(f"step {i}: L_G {g:.4f}  L_D {d:.4f}")
        if not (math.isfinite(g) and math.isfinite(d)):
            raise SystemExit("cyclegan_torch_reference: non-finite losses.")


if __name__ == "__main__":
    sys.exit(main())
