"""Projection-GAN training-step throughput at 32x32: jgan (JAX/XLA) against PyTorch.

Both sides train the identical class-conditional SNGAN ResNet (Miyato et al. 2018;
Miyato & Koyama 2018): `jgan.models.resnet` and its PyTorch twin
`benchmarks/resnet_projection_reference.py` (the parameter counts are checked):

  G: z[128] -> dense -> 4x4x256 -> 3 up-blocks (CBN -> ReLU -> up2 -> conv3x3 -> CBN
     -> ReLU -> conv3x3, + conv1x1 -> up2) -> BN -> ReLU -> conv3x3 -> tanh
  D: optimized down-block, down-block, 2 blocks (width 128, spectral norm everywhere),
     ReLU, sum pooling -> h -> linear + <V_sn[y], h>

hinge loss, Adam(2e-4, b1=0, b2=0.9) on both sides, 10 classes, one alternating step:
a D update on real images with their labels and G(z, y_f).detach() with uniformly random
y_f, then a G update with a fresh z and y_f against the updated D. Every D call in
training runs one power iteration per spectral-normalized layer, on both sides.

jgan runs `jax.jit(make_step(conditional_game(...)), donate_argnums=0)` on JAX's default
backend; its compile time (trace + lower, XLA compile) is reported separately and
excluded from images/second. PyTorch runs eager (NCHW, fp32) on `--device` (cpu:
`torch.set_num_threads(--threads)`; cuda: `torch.cuda.synchronize()` around each timed
run). `--torch-lean` adds a PyTorch step without the work jgan's per-team gradients
never do (see benchmarks/dcgan_throughput.py). Images/second is measured in `--rounds`
alternating rounds of `--steps` steps and the medians are compared. Input is synthetic
(uniform images, random labels): a step's cost does not depend on the values.

  PYTHONPATH=. python benchmarks/projection_gan_throughput.py --steps 3 --rounds 2

A step is about 1 TFLOP at the default widths, seconds on a CPU: the defaults are sized
for a 2-core machine; on a GPU use e.g. --steps 50 --rounds 5 --device cuda. The CPU
caveats of benchmarks/dcgan_throughput.py apply (XLA uses every core; measure on an
idle machine; the "CPU ms/step" column shows starvation).

Sweeps, precision, torch.compile and MFU take the flags of benchmarks/dcgan_throughput.py
(its docstring says what each does): `--batches 64,512,2048`, `--dtype float32,bfloat16`
(jgan: a bfloat16 `jgan.precision.Policy` for both networks; PyTorch: its forward passes
and losses under `torch.autocast(dtype=torch.bfloat16)`, float32 parameters; float32 on
CUDA: TF32 matmuls and convolutions on both sides, JAX's default precision there, and
`cudnn.benchmark`), `--torch-compile [--torch-compile-mode MODE]` (the lean step's two
forward + loss functions under torch.compile, compile time reported apart),
`--skip-torch-eager`, MFU from XLA's FLOP count of jgan's step (`--peak-tflops` where
benchmarks/mfu.py does not know the device), `--json PATH` (a JSON line per runner and
configuration), `--max-seconds`, `--round-seconds`, `--profile-steps`. Both sides average
the losses in float32. PyTorch's spectral-norm parametrization runs inside the autocast
region too (its matrix-vector products follow autocast's op lists); jgan's power
iteration keeps its float32 vectors (docs/scaling.md, "Mixed precision").

  PYTHONPATH=. python benchmarks/projection_gan_throughput.py --device cuda \
      --batches 64,512,2048 --dtype bfloat16,float32 --torch-compile --steps 20 \
      --round-seconds 1 --rounds 3 --warmup 3 --json sngan32.jsonl
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput_report import (add_sweep_args, finish_sweep_args, jax_env_for,  # noqa: E402
                               run_sweep)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=128, help="D's width (SNGAN: 128).")
    p.add_argument("--g-width", type=int, default=None, help="G's width (default 2 x --width, "
                   "SNGAN's 256).")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--latent", type=int, default=128)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=5, help="timed steps per round and side.")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing "
                   "(after jgan's compile).")
    p.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds.")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (CPU).")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="torch's device.")
    p.add_argument("--xla-flags", default="",
                   help="extra XLA_FLAGS for jgan (set before JAX is imported).")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--skip-jgan", action="store_true")
    p.add_argument("--torch-lean", action="store_true", help="also time a PyTorch step with "
                   "G under no_grad in the D update and D frozen in the G update.")
    p.add_argument("--seed", type=int, default=0)
    add_sweep_args(p, torch_device_flag="--device")
    args = p.parse_args(argv)
    finish_sweep_args(p, args)
    args.g_width = args.g_width or 2 * args.width
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.xla_flags:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + ARGS.xla_flags).strip()
if ARGS is not None:
    jax_env_for(ARGS.device, ARGS.skip_torch)

from throughput_report import (compare_runners, dynamo_counts, torch_autocast,  # noqa: E402
                               torch_compile, torch_setup, uses_cudagraphs)
from mfu import step_flops  # noqa: E402

import jax  # noqa: E402  (after XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jgan.families.conditional import conditional_game  # noqa: E402
from jgan.models.resnet import ResNetDiscriminator, ResNetGenerator  # noqa: E402
from jgan.core.steps import make_step  # noqa: E402
from jgan.precision import Policy, apply_to_game  # noqa: E402

LR, BETA1, BETA2 = 2e-4, 0.0, 0.9
RES, CHANNELS = 32, 3


def synthetic_batch(args):
    """Uniform images `[B, 32, 32, 3]` in [-1, 1] and uniform labels `[B]`, NHWC."""
    rng = np.random.default_rng(args.seed)
    return (rng.uniform(-1, 1, (args.batch, RES, RES, CHANNELS)).astype(np.float32),
            rng.integers(0, args.classes, args.batch).astype(np.int32))


def count(tree) -> int:
    return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


class JganRunner:
    def __init__(self, args):
        gen = ResNetGenerator(num_classes=args.classes, width=args.g_width,
                              latent_dim=args.latent, resolution=RES, channels=CHANNELS)
        disc = ResNetDiscriminator(num_classes=args.classes, width=args.width)
        game = conditional_game(
            generator=gen, discriminator=disc, latent_dim=args.latent,
            num_classes=args.classes, loss_type="hinge",
            generator_optimizer=optax.adam(LR, b1=BETA1, b2=BETA2),
            discriminator_optimizer=optax.adam(LR, b1=BETA1, b2=BETA2))
        dtype = getattr(args, "dtype", "float32")
        if dtype != "float32":   # every network computes in dtype; params, losses float32
            game = apply_to_game(game, {n: Policy.from_name(dtype) for n in game.modules})
        images, labels = synthetic_batch(args)
        self.batch = {"image": jnp.asarray(images), "label": jnp.asarray(labels)}
        self.state = game.init(jax.random.key(args.seed), self.batch)
        self.step = jax.jit(make_step(game), donate_argnums=0)
        self.g_params = count(self.state.teams["generator"].params)
        self.d_params = count(self.state.teams["discriminator"].params)
        t0 = time.perf_counter()
        lowered = self.step.lower(self.state, self.batch)
        t1 = time.perf_counter()
        compiled = lowered.compile()
        t2 = time.perf_counter()
        # FLOPs of one step (XLA's count of the compiled program; the unoptimized
        # program's where a backend gives none).
        try:
            self.lowered_flops = float(lowered.cost_analysis()["flops"])
        except Exception:   # noqa: BLE001
            self.lowered_flops = float("nan")
        try:
            self.step_flops = step_flops(compiled)
        except (KeyError, TypeError):
            self.step_flops = float("nan")
        if not self.step_flops > 0:
            self.step_flops = self.lowered_flops
        self.trace_s, self.xla_compile_s, self.compile_s = t1 - t0, t2 - t1, t2 - t0
        t0 = time.perf_counter()
        self.state, metrics = self.step(self.state, self.batch)
        jax.block_until_ready((self.state, metrics))
        self.first_step_s = time.perf_counter() - t0

    def run(self, n: int) -> float:
        """Seconds for n steps (dispatched asynchronously, the last result awaited)."""
        t0 = time.perf_counter()
        state = self.state
        for _ in range(n):
            state, _ = self.step(state, self.batch)
        jax.block_until_ready(state)
        self.state = state
        return time.perf_counter() - t0


class TorchRunner:
    """PyTorch's step: eager, or with `compile_mode` its two forward + loss functions
    under torch.compile (then always the lean step); bfloat16 `args.dtype` under
    autocast. The constructor runs the first step (torch.compile's compile time)."""

    def __init__(self, args, lean: bool = False, compile_mode: str | None = None):
        import torch
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import resnet_projection_reference as ref
        self.torch, self.args = torch, args
        self.lean = lean or compile_mode is not None
        self.dtype = getattr(args, "dtype", "float32")
        self.dev = torch.device(args.device)
        torch_setup(torch, args.device, args.threads)
        torch.manual_seed(args.seed)
        self.g = ref.Generator(args.classes, args.g_width, args.latent, RES, CHANNELS)
        self.d = ref.Discriminator(args.classes, args.width, channels=CHANNELS)
        self.g.to(self.dev).train(), self.d.to(self.dev).train()
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=LR, betas=(BETA1, BETA2))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=LR, betas=(BETA1, BETA2))
        images, labels = synthetic_batch(args)
        self.images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(self.dev)
        self.labels = torch.from_numpy(labels).long().to(self.dev)
        self.g_params = sum(p.numel() for p in self.g.parameters())
        self.d_params = sum(p.numel() for p in self.d.parameters())
        self.compile_mode = compile_mode
        self.cudagraphs = uses_cudagraphs(compile_mode, args.device)
        self.d_loss_fn, self.g_loss_fn = self._d_loss, self._g_loss
        if compile_mode is not None:
            self.d_loss_fn = torch_compile(torch, self._d_loss, compile_mode)
            self.g_loss_fn = torch_compile(torch, self._g_loss, compile_mode)
        # torch.compile compiles in the first call (forward and backward graphs); the
        # second step shows whether anything recompiled.
        before = dynamo_counts(torch)
        self.first_step_s = self.run(1)
        self.compile_s = self.first_step_s if compile_mode is not None else None
        mid = dynamo_counts(torch)
        self.second_step_s = self.run(1)
        after = dynamo_counts(torch)
        self.compile_info = (
            f"torch.compile: {mid['graphs'] - before['graphs']} graphs, "
            f"{mid['graph_breaks'] - before['graph_breaks']} graph breaks in the first step, "
            f"{after['graphs'] - mid['graphs']} recompiled in the second "
            f"({self.second_step_s:.3f} s)" if compile_mode is not None else "")

    def _d_loss(self, images, labels, z, y_fake):
        torch = self.torch
        with torch_autocast(torch, self.dev.type, self.dtype):
            if self.lean:
                with torch.no_grad():
                    fake = self.g(z, y_fake)
            else:
                fake = self.g(z, y_fake).detach()
            return (torch.relu(1 - self.d(images, labels)).float().mean()
                    + torch.relu(1 + self.d(fake, y_fake)).float().mean())

    def _g_loss(self, z, y_fake):
        torch = self.torch
        with torch_autocast(torch, self.dev.type, self.dtype):
            return -self.d(self.g(z, y_fake), y_fake).float().mean()

    def step(self):
        torch, args, dev = self.torch, self.args, self.dev
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        b = self.images.shape[0]
        sample = lambda: (torch.randn(b, args.latent, device=dev),
                          torch.randint(0, args.classes, (b,), device=dev))
        # Discriminator update on (real, y) and (G(z, y_f).detach(), y_f).
        z, y_fake = sample()
        self.opt_d.zero_grad(set_to_none=True)
        d_loss = self.d_loss_fn(self.images, self.labels, z, y_fake)
        d_loss.backward()
        self.opt_d.step()
        # Generator update, fresh z and y_f, against the updated D (hinge: -D).
        z, y_fake = sample()
        self.opt_g.zero_grad(set_to_none=True)
        if self.lean:
            self.d.requires_grad_(False)
        g_loss = self.g_loss_fn(z, y_fake)
        g_loss.backward()
        if self.lean:
            self.d.requires_grad_(True)
        self.opt_g.step()
        if self.cudagraphs:   # outputs of a CUDA graph are overwritten by its next replay
            d_loss, g_loss = d_loss.detach().clone(), g_loss.detach().clone()
        return d_loss, g_loss

    def _sync(self):
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def run(self, n: int) -> float:
        self._sync()
        t0 = time.perf_counter()
        for _ in range(n):
            losses = self.step()
        [loss.item() for loss in losses]
        self._sync()
        return time.perf_counter() - t0


def main(args):
    """Every (batch, dtype) of the sweep in turn (`run_config`); returns the JSON rows."""
    ncpu = os.cpu_count()
    print(f"jax {jax.__version__}: {jax.devices()}; {ncpu} CPUs visible; "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    if (not args.skip_jgan and jax.default_backend() == "cpu" and args.device == "cpu"
            and ncpu and ncpu > args.threads):
        print(f"WARNING: XLA will use {ncpu} cores but torch only --threads={args.threads}; "
              f"pin the process (taskset -c 0-{args.threads - 1}) for a fair comparison.")
    if not args.skip_torch:
        import torch
        torch_setup(torch, args.device, args.threads)
        extra = (f"{args.threads} threads" if args.device == "cpu" else
                 f"{torch.cuda.get_device_name(0)}, TF32 convolutions "
                 f"{torch.backends.cudnn.allow_tf32}, matmuls "
                 f"{torch.backends.cuda.matmul.allow_tf32}")
        print(f"torch {torch.__version__} on {args.device} ({extra})")
    return run_sweep(args, run_config, model=f"sngan_resnet{RES}", torch_device=args.device)


def run_config(args, torch_runners):
    """One batch and dtype: builds the runners, times them; returns (runners, medians,
    stats, flops)."""
    print(f"\nProjection GAN throughput: {RES}x{RES}x{CHANNELS}, G width {args.g_width}, "
          f"D width {args.width}, batch {args.batch}, latent {args.latent}, {args.classes} "
          f"classes, {args.dtype}, hinge, Adam({LR}, b1={BETA1}, b2={BETA2}), alternating step")
    runners = {}
    if not args.skip_jgan:
        jr = runners["jgan"] = JganRunner(args)
        print(f"jgan   params: G {jr.g_params:,}  D {jr.d_params:,}")
        print(f"jgan   compile: {jr.compile_s:.2f} s (trace+lower {jr.trace_s:.2f} s, XLA compile "
              f"{jr.xla_compile_s:.2f} s); first step after it {1e3 * jr.first_step_s:.0f} ms; "
              f"{jr.step_flops / 1e9:.1f} GFLOP/step (unoptimized program: "
              f"{jr.lowered_flops / 1e9:.1f})")
    for name, kwargs in torch_runners:
        tr = runners[name] = TorchRunner(args, **kwargs)
        print(f"{name} params: G {tr.g_params:,}  D {tr.d_params:,}; first step "
              f"{tr.first_step_s:.2f} s" + (f"; {tr.compile_info}" if tr.compile_info else ""))
    torch_names = [n for n, _ in torch_runners]
    if "jgan" in runners and torch_names:
        tr = runners[torch_names[0]]
        same = (jr.g_params, jr.d_params) == (tr.g_params, tr.d_params)
        print(f"parameter counts match: {same}")
        if not same:
            sys.exit("parameter counts differ: not the same architecture")
    flops = runners["jgan"].step_flops if "jgan" in runners else None
    stats = {}
    med = compare_runners(runners, steps=args.steps, warmup=args.warmup, rounds=args.rounds,
                          batch=args.batch, digits=1, flops=flops, peaks=args.peaks_now,
                          stats=stats, round_seconds=args.round_seconds)
    return runners, med, stats, flops


if __name__ == "__main__":
    main(ARGS)
