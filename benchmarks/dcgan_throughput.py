"""DCGAN training-step throughput: jgan (JAX/XLA) against PyTorch, eager and compiled.

Both sides train the identical DCGAN (Radford et al. 2016) on MNIST-shaped batches:

  G: z[100] -> Linear(no bias) -> BN -> ReLU -> [B, 2w, 7, 7]
     -> ConvTranspose(4, 2, 1, no bias) -> BN -> ReLU -> [B, w, 14, 14]
     -> ConvTranspose(4, 2, 1) -> tanh -> [B, 1, 28, 28]
  D: Conv(4, 2, 1) -> LeakyReLU(0.2) -> Conv(4, 2, 1) -> BN -> LeakyReLU(0.2)
     -> Linear -> one logit

(one more block each at 32 / 64 px), batch-norm momentum 0.1 / eps 1e-5 (flax's
momentum 0.9), non-saturating loss with BCE-with-logits (softplus), Adam(2e-4,
b1=0.5, b2=0.999) on both sides, one alternating step: a D update on a real batch
and G(z).detach(), then a G update with a fresh z against the updated D.

jgan runs `jax.jit(make_step(game), donate_argnums=0)`; its compile time (trace, lower
and XLA compile, ahead of the first step) is reported separately and excluded from
images/second. PyTorch runs at its eager defaults (NCHW, fp32, oneDNN convolutions,
`torch.set_num_threads(--threads)`); `--torch-lean` adds a PyTorch step without the
work jgan's per-team gradients never do (D's weight gradients in the G update, G's
autograd graph in the D update). Steady-state images/second is measured in `--rounds`
alternating rounds and the medians are compared. XLA's CPU runtime uses every core of
the machine (no thread-count flag); on a machine with more cores than `--threads` the
comparison favours jgan, so the script warns in that case (pin with `taskset`).

Input is synthetic (uniform in [-1, 1]): a step's cost does not depend on pixel values.

  PYTHONPATH=. python benchmarks/dcgan_throughput.py --steps 40 --rounds 5 --torch-lean

Sweeps, precision, torch.compile and MFU (issue 27; the same flags in
benchmarks/projection_gan_throughput.py, shared code in benchmarks/throughput_report.py):

* `--batches 64,512,2048` and `--dtype float32,bfloat16` run every batch (outer, in the
  order given) and dtype (inner) in one process; each configuration builds fresh runners.
  bfloat16: jgan's networks compute in it by the project's precision policy
  (`jgan.precision.apply_to_game`, a bfloat16 `Policy` for every network: float32
  parameters, optimizer state, batch statistics and losses); PyTorch's forward passes
  and losses run under `torch.autocast(device, dtype=torch.bfloat16)` with float32
  parameters and the backward pass outside it, as a performance-minded user writes it.
  float32: on CUDA PyTorch runs with TF32 matmuls and convolutions
  (`torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True`),
  which is what JAX's default precision does for float32 on NVIDIA GPUs (Ampere and
  later); `cudnn.benchmark` is on (fixed shapes).
* `--torch-compile` adds "torch-compile": the lean step (the work jgan's per-team
  gradients do) with its D and G forward + loss functions under
  `torch.compile(mode=--torch-compile-mode, dynamic=False)`, the backward passes and the
  Adam updates as in eager. It compiles in its first step (forward and backward graphs),
  reported as its compile time and excluded from images/second like jgan's; the runner
  line shows its graphs, graph breaks and any recompilation in the second step.
  `--skip-torch-eager` drops the eager step(s).
* MFU: jgan's FLOPs per step from XLA's cost analysis of the compiled step
  (benchmarks/mfu.py `step_flops`; the unoptimized program's count is printed beside it),
  over the device's dense peak for the dtype (benchmarks/mfu.py's table by device kind,
  TF32 for float32; `--peak-tflops F32[,BF16]` for another device). Each PyTorch runner's
  MFU divides the same FLOP count by its own time (same architecture: parameter counts
  are checked). No peak on a CPU: the FLOPs are printed, MFU is not.
* `--json PATH` appends one JSON line per runner and configuration (model, batch, dtype,
  side, mode, ms/step, images/s, MFU, compile seconds, FLOPs, peak, versions), written as
  each configuration ends; in a sweep a failed configuration (out of memory) becomes an
  "error" row and the sweep goes on. `--max-seconds S` starts no configuration that would
  end past S seconds (judged by the longest so far); `--round-seconds T` sizes each
  runner's round to about T seconds (at most --steps steps), so large batches stay cheap;
  `--profile-steps N` prints (and writes to PATH.profile.txt) torch.profiler's costliest
  kernels over N steps of each runner: on CUDA, CUPTI records XLA's kernels too.
* With `--torch-device cuda` JAX's GPU memory is not preallocated
  (XLA_PYTHON_CLIENT_PREALLOCATE=false unless set), so both frameworks fit on one GPU.

  PYTHONPATH=. python benchmarks/dcgan_throughput.py --torch-device cuda --resolution 64 \
      --channels 3 --batches 64,512,2048 --dtype bfloat16,float32 --torch-compile \
      --steps 20 --round-seconds 1 --rounds 3 --warmup 3 --json dcgan64.jsonl

Measure on an otherwise idle machine. Another process's CPU-bound job on a 2-core box
halves jgan's speed and cuts PyTorch's by up to 10x (its OpenMP threads spin-wait on
each other); the "CPU ms/step" column shows it: an unstarved run uses about
threads x ms/step of CPU. On a shared machine, running this script in its own session
at high priority (`setsid`, the session's autogroup nice lowered) gives stable numbers.

XLA flags (`--xla-flags`): --xla_cpu_use_onednn=true, --xla_cpu_use_xnnpack=true,
--xla_cpu_enable_concurrency_optimized_scheduler=true changed the step time by less than
the run-to-run noise (~5%); removing YNNPACK's dots
(--xla_cpu_experimental_ynn_fusion_type=-individual_dot) made it ~20% slower. jgan sets
no flags by default.

Rewrites of D's 4x4 stride-2 convolutions were timed against XLA's own (one core, new /
old time of forward + both gradients, interleaved in one process): im2col + one matmul
1.20-1.26, 16 per-tap slices 1.9-2.0, space-to-depth + a 2x2 stride-1 conv 1.62, a
Winograd-style product ~2.9; building the patches costs XLA more than its convolution
loses to a plain matmul. Per step on one core, D's loss and gradients take ~76 ms and
G's ~57 ms; both Adam updates ~1 ms; batch norm and the losses are minor.

Toom-Cook (Winograd) forms of D's second convolution in its space-to-depth form (a 2-tap
stride-1 correlation per axis over 256 channels), F(m, 2) for m = 2, 3, 4, 7, cut the
multiplies 1.4-3.1x and agree with XLA's convolution to 9e-7-3e-5 (relative to the
largest output), yet forward + both gradients took 23-30 ms against XLA's 19.5 ms (2
cores, batch 64, 2026-11-27). Their product stage is batched matmuls, one per transform
point, which XLA:CPU runs at 68-130 GFLOP/s (P points x [M, 256] x [256, 128]; forward +
both gradients alone: P=64, M=64 11.8 ms; P=25, M=256 12.5 ms; P=16, M=576 13.8 ms), so
even with free transforms the best (F(4, 2)) would save under a quarter of that layer.

`--roofline` counts the step's FLOPs (XLA's cost analysis; ~9.6 GFLOP for the 28-px
model at batch 64, almost all of it in D's second convolution and G's first upsampling,
forward and gradients) and measures the machine's fp32 matmul rate, then prints each
side's achieved GFLOP/s and the rate a jgan / torch ratio would need; at 28 px it also
times the step's two dominant products at their own shapes. On the idle 2-core
development machine (2026-11-26): a 2048^3 matmul and both of the step's GEMM shapes
run at ~200-208 GFLOP/s in XLA (165-196 in PyTorch); jgan's step achieves 104 GFLOP/s
(50 %), PyTorch's 112 (54 %), its lean step 121 (58 %); 1.5x PyTorch would need 169
GFLOP/s, 81 % of the matmul rate for the whole step, small layers, batch norm and data
movement included.

`--host-devices N` splits XLA's CPU into N devices and runs jgan's step data-parallel
over them, as the trainer does on several devices (jit over a mesh, batch split, state
replicated, batch statistics over the whole batch: the same function); the same step on
one device is timed in the same run as "jgan-1dev". XLA's one-device step keeps both
cores only ~85 % busy (CPU ms/step ~1.8x ms/step), and a batch of 32 costs less than half
of a batch of 64 (single core: ~67 against ~154 ms), so two devices, one per core, each
with half the batch, are faster. On the idle 2-core machine (2026-11-27, `--steps 40
--warmup 5 --rounds 5 --host-devices 2 --torch-lean`): jgan 761 img/s on two host
devices, 687 on one (1.11x), PyTorch eager 817 (jgan 0.93x), its lean step 866 (0.88x).

Glibc note: with donated state the step's XLA scratch (~34 MB) sits just above glibc's
largest dynamic mmap threshold (32 MB), so every step maps and unmaps it (~8,500 page
faults per step). `MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=2000000000`
in the environment removed them: jgan 90.1 -> 80.5 ms/step, PyTorch-lean 75.1 -> 71.2
(separate runs on a lightly loaded machine; indicative only).
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
    p.add_argument("--width", type=int, default=64, help="DCGAN width (channels of G's "
                   "last hidden map and D's first conv).")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--resolution", type=int, default=28, choices=(28, 32, 64))
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--latent", type=int, default=100)
    p.add_argument("--steps", type=int, default=50, help="timed steps per round and side.")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before timing "
                   "(after jgan's compile).")
    p.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds.")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads.")
    p.add_argument("--xla-flags", default="",
                   help="extra XLA_FLAGS for jgan (set before JAX is imported).")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--skip-jgan", action="store_true")
    p.add_argument("--torch-lean", action="store_true",
                   help="also time a leaner PyTorch step: G forward under no_grad in the D "
                   "update and D's parameters frozen during the G update (no wasted "
                   "weight gradients), which is what jgan's per-team gradients compute.")
    p.add_argument("--torch-device", default="cpu", choices=("cpu", "cuda"),
                   help="where PyTorch runs (jgan runs on JAX's default backend).")
    p.add_argument("--steps-per-call", type=int, default=1,
                   help="jgan steps fused in one jitted lax.scan (as the trainer does for data "
                   "in device memory); 1 = one jitted step per Python call. --steps must be a "
                   "multiple.")
    p.add_argument("--roofline", action="store_true",
                   help="also count the step's FLOPs (XLA's cost analysis) and measure this "
                   "machine's fp32 matmul rate (XLA and PyTorch, a 2048^3 product): each "
                   "side's achieved GFLOP/s and what a given jgan / torch ratio would need.")
    p.add_argument("--host-devices", type=int, default=1,
                   help="on the CPU, split XLA's host into this many devices "
                   "(--xla_force_host_platform_device_count) and run jgan's step data-parallel "
                   "over them: jax.jit over a mesh, the batch split, the state replicated, "
                   "batch statistics over the whole batch, as the trainer does on several "
                   "devices. The function is the same as on one device.")
    p.add_argument("--seed", type=int, default=0)
    add_sweep_args(p, torch_device_flag="--torch-device")
    args = p.parse_args(argv)
    finish_sweep_args(p, args)
    for batch in args.batches:
        if args.host_devices < 1 or batch % args.host_devices:
            p.error(f"--host-devices must be >= 1 and divide the batch ({batch}).")
    if args.steps % args.steps_per_call or args.warmup % args.steps_per_call:
        p.error("--steps and --warmup must be multiples of --steps-per-call.")
    if args.round_seconds and args.steps_per_call > 1:
        p.error("--round-seconds needs --steps-per-call=1.")
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.xla_flags:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + ARGS.xla_flags).strip()
if ARGS is not None and ARGS.host_devices > 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_"
                               f"device_count={ARGS.host_devices}").strip()
if ARGS is not None:
    jax_env_for(ARGS.torch_device, ARGS.skip_torch)

from throughput_report import (compare_runners, dynamo_counts, torch_autocast,  # noqa: E402
                               torch_compile, torch_setup, uses_cudagraphs)
from mfu import step_flops  # noqa: E402

import jax  # noqa: E402  (after XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

from jgan.families import adversarial_game  # noqa: E402
from jgan.precision import Policy, apply_to_game  # noqa: E402
from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator  # noqa: E402
from jgan.sharding import on_mesh  # noqa: E402
from jgan.core.steps import make_step  # noqa: E402

LR, BETA1, BETA2 = 2e-4, 0.5, 0.999
BN_EPS = 1e-5
BN_MOMENTUM_FLAX = 0.9          # running = 0.9 running + 0.1 batch
BN_MOMENTUM_TORCH = 1.0 - BN_MOMENTUM_FLAX


# --------------------------------------------------------------------------- jgan

def build_jgan(args):
    gen = DCGANGenerator(resolution=args.resolution, channels=args.channels, width=args.width)
    disc = DCGANDiscriminator(resolution=args.resolution, width=args.width,
                              normalization="batch")
    game = adversarial_game(
        generator=gen, discriminator=disc, latent_dim=args.latent, loss_type="non_saturating",
        generator_optimizer=optax.adam(LR, b1=BETA1, b2=BETA2),
        discriminator_optimizer=optax.adam(LR, b1=BETA1, b2=BETA2))
    dtype = getattr(args, "dtype", "float32")
    if dtype != "float32":   # every network computes in dtype; params, losses stay float32
        game = apply_to_game(game, {name: Policy.from_name(dtype) for name in game.modules})
    rng = np.random.default_rng(args.seed)
    images = rng.uniform(-1, 1, (args.batch, args.resolution, args.resolution,
                                 args.channels)).astype(np.float32)
    batch = {"image": jnp.asarray(images)}
    state = game.init(jax.random.key(args.seed), batch)
    step_fn = make_step(game)
    mesh = None
    if args.host_devices > 1:
        if len(jax.devices()) < args.host_devices:
            sys.exit(f"--host-devices={args.host_devices}, but JAX has {len(jax.devices())} "
                     "device(s); set XLA_FLAGS before anything imports jax.")
        mesh = Mesh(np.array(jax.devices()[:args.host_devices]), ("data",))
        state = jax.device_put(state, NamedSharding(mesh, P()))
        batch = jax.device_put(batch, NamedSharding(mesh, P("data")))
    if args.steps_per_call > 1:
        def scan_steps(state, batch):
            # Unrolled on XLA's CPU backend, where a conv step in a while loop is ~8x slower.
            state, metrics = jax.lax.scan(lambda s, _: step_fn(s, batch), state, None,
                                          length=args.steps_per_call,
                                          unroll=jax.default_backend() == "cpu")
            return state, jax.tree.map(lambda m: m[-1], metrics)
        step = jax.jit(scan_steps, donate_argnums=0)
    else:
        step = jax.jit(step_fn, donate_argnums=0)
    return game, state, step, batch, mesh


def count(tree) -> int:
    return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


class JganRunner:
    def __init__(self, args):
        self.game, self.state, step, self.batch, mesh = build_jgan(args)
        # Traced, and so always called, with the mesh in context (jgan.sharding).
        self.step = step if mesh is None else on_mesh(mesh, step)
        lower = step.lower if mesh is None else on_mesh(mesh, step.lower)
        self.steps_per_call = args.steps_per_call
        self.num_devices = args.host_devices
        self.g_params = count(self.state.teams["generator"].params)
        self.d_params = count(self.state.teams["discriminator"].params)
        # Compile time, ahead of time: trace + lower to StableHLO, then XLA's compile.
        # jit's cache then holds the executable, so the first call below only runs.
        t0 = time.perf_counter()
        lowered = lower(self.state, self.batch)
        t1 = time.perf_counter()
        compiled = lowered.compile()
        t2 = time.perf_counter()
        # FLOPs of one step (XLA counts a multiply-add as 2, and per device: one SPMD
        # program's analysis is multiplied by the device count), for MFU and the roofline
        # report; the unoptimized program's count where the compiled one has none.
        analysis = compiled.cost_analysis()
        per_program = self.num_devices if not isinstance(analysis, (list, tuple)) else 1
        try:
            flops = step_flops(compiled) * per_program
        except (KeyError, TypeError):
            flops = float("nan")
        try:
            self.lowered_flops = float(lowered.cost_analysis()["flops"]) / self.steps_per_call
        except Exception:   # noqa: BLE001 (not every backend analyses a lowered program)
            self.lowered_flops = float("nan")
        if not flops > 0:
            flops = self.lowered_flops * self.steps_per_call
        self.step_flops = flops / self.steps_per_call
        self.trace_s, self.xla_compile_s = t1 - t0, t2 - t1
        self.compile_s = t2 - t0
        t0 = time.perf_counter()
        self.state, metrics = self.step(self.state, self.batch)
        jax.block_until_ready((self.state, metrics))
        self.first_step_s = time.perf_counter() - t0
        self.metrics = metrics

    def run(self, n: int) -> float:
        """Seconds for n steps (dispatched asynchronously, the last result awaited)."""
        t0 = time.perf_counter()
        state, metrics = self.state, self.metrics
        for _ in range(n // self.steps_per_call):
            state, metrics = self.step(state, self.batch)
        jax.block_until_ready((state, metrics))
        dt = time.perf_counter() - t0
        self.state, self.metrics = state, metrics
        return dt


# --------------------------------------------------------------------------- torch

def build_torch(args):
    import torch
    from torch import nn

    _, n_up = {28: (7, 2), 32: (4, 3), 64: (4, 4)}[args.resolution]
    base = 7 if args.resolution == 28 else 4

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = args.width * 2 ** (n_up - 1)
            self.project = nn.Linear(args.latent, base * base * self.features, bias=False)
            self.project_bn = nn.BatchNorm2d(self.features, eps=BN_EPS,
                                             momentum=BN_MOMENTUM_TORCH)
            layers, f = [], self.features
            for _ in range(n_up - 1):
                layers += [nn.ConvTranspose2d(f, f // 2, 4, 2, 1, bias=False),
                           nn.BatchNorm2d(f // 2, eps=BN_EPS, momentum=BN_MOMENTUM_TORCH),
                           nn.ReLU()]
                f //= 2
            layers += [nn.ConvTranspose2d(f, args.channels, 4, 2, 1), nn.Tanh()]
            self.body = nn.Sequential(*layers)

        def forward(self, z):
            x = self.project(z).view(z.shape[0], self.features, base, base)
            return self.body(torch.relu(self.project_bn(x)))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c, f = [], args.channels, args.width
            for i in range(n_up):
                # No bias where batch norm follows, as in jgan's DCGANDiscriminator.
                layers.append(nn.Conv2d(c, f, 4, 2, 1, bias=(i == 0)))
                if i > 0:
                    layers.append(nn.BatchNorm2d(f, eps=BN_EPS, momentum=BN_MOMENTUM_TORCH))
                layers.append(nn.LeakyReLU(0.2))
                c, f = f, f * 2
            self.body = nn.Sequential(*layers)
            side = args.resolution // 2 ** n_up
            self.logit = nn.Linear(c * side * side, 1)

        def forward(self, x):
            return self.logit(self.body(x).flatten(1))[:, 0]

    torch.manual_seed(args.seed)
    g, d = Generator(), Discriminator()
    for m in list(g.modules()) + list(d.modules()):   # DCGAN init, as jgan's
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return g, d


class TorchRunner:
    """PyTorch's step: eager, or with `compile_mode` its two forward + loss functions
    under torch.compile (then always the lean step); bfloat16 `args.dtype` under
    autocast. The constructor runs the first step (torch.compile's compile time)."""

    def __init__(self, args, lean: bool = False, compile_mode: str | None = None):
        import torch
        import torch.nn.functional as F
        self.torch, self.F = torch, F
        self.lean = lean or compile_mode is not None
        torch_setup(torch, args.torch_device, args.threads)
        self.args = args
        self.dtype = getattr(args, "dtype", "float32")
        self.device = torch.device(args.torch_device)
        self.g, self.d = build_torch(args)
        self.g.to(self.device), self.d.to(self.device)
        self.g.train(), self.d.train()
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=LR, betas=(BETA1, BETA2))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=LR, betas=(BETA1, BETA2))
        rng = np.random.default_rng(args.seed)
        self.images = torch.from_numpy(rng.uniform(
            -1, 1, (args.batch, args.channels, args.resolution, args.resolution)
        ).astype(np.float32)).to(self.device)
        self.g_params = sum(p.numel() for p in self.g.parameters())
        self.d_params = sum(p.numel() for p in self.d.parameters())
        self.compile_mode = compile_mode
        self.cudagraphs = uses_cudagraphs(compile_mode, args.torch_device)
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

    def _d_loss(self, real, z):
        torch, F = self.torch, self.F
        with torch_autocast(torch, self.device.type, self.dtype):
            if self.lean:
                with torch.no_grad():
                    fake = self.g(z)
            else:
                fake = self.g(z).detach()
            real_logits, fake_logits = self.d(real), self.d(fake)
            return (F.binary_cross_entropy_with_logits(real_logits,
                                                       torch.ones_like(real_logits))
                    + F.binary_cross_entropy_with_logits(fake_logits,
                                                         torch.zeros_like(fake_logits)))

    def _g_loss(self, z):
        torch, F = self.torch, self.F
        with torch_autocast(torch, self.device.type, self.dtype):
            logits = self.d(self.g(z))
            return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def step(self):
        torch, args = self.torch, self.args
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        real = self.images
        b = real.shape[0]
        # Discriminator update on real and G(z).detach().
        z = torch.randn(b, args.latent, device=self.device)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss = self.d_loss_fn(real, z)
        d_loss.backward()
        self.opt_d.step()
        # Generator update, fresh z, against the updated D (non-saturating loss).
        z = torch.randn(b, args.latent, device=self.device)
        self.opt_g.zero_grad(set_to_none=True)
        if self.lean:
            self.d.requires_grad_(False)
        g_loss = self.g_loss_fn(z)
        g_loss.backward()
        if self.lean:
            self.d.requires_grad_(True)
        self.opt_g.step()
        if self.cudagraphs:   # outputs of a CUDA graph are overwritten by its next replay
            d_loss, g_loss = d_loss.detach().clone(), g_loss.detach().clone()
        return d_loss, g_loss

    def _sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def run(self, n: int) -> float:
        self._sync()
        t0 = time.perf_counter()
        for _ in range(n):
            d_loss, g_loss = self.step()
        d_loss.item(), g_loss.item()  # waits for the device
        self._sync()
        return time.perf_counter() - t0


# --------------------------------------------------------------------------- roofline

def matmul_gflops(side: str, shape: tuple[int, int, int] = (2048, 2048, 2048), reps: int = 5,
                  threads: int = 2) -> float:
    """Best fp32 GFLOP/s of an [m, k] x [k, n] matrix product over `reps` timed runs."""
    m, k, n = shape
    if side == "xla":
        a = jax.random.normal(jax.random.PRNGKey(0), (m, k), jnp.float32)
        b = jax.random.normal(jax.random.PRNGKey(1), (k, n), jnp.float32)
        mm = jax.jit(lambda x, y: x @ y)
        mm(a, b).block_until_ready()
        def once():
            t0 = time.perf_counter(); mm(a, b).block_until_ready()
            return time.perf_counter() - t0
    else:
        import torch
        torch.set_num_threads(threads)
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        def once():
            t0 = time.perf_counter(); a @ b
            return time.perf_counter() - t0
    return 2 * m * k * n / min(once() for _ in range(reps)) / 1e9


def step_gemm_shapes(args) -> dict[str, tuple[int, int, int]]:
    """The two products that carry almost all of the 28-px step's FLOPs, as GEMMs:
    D's second convolution (im2col: [B*7*7, 16*w] x [16*w, 2w]) and G's first
    upsampling (a matmul before the overlap-add: [B*7*7, 2w] x [2w, 16*w])."""
    b, w = args.batch, args.width
    return {"D conv1 (im2col)": (b * 49, 16 * w, 2 * w),
            "G up0 (matmul)": (b * 49, 2 * w, 16 * w)}


def report_roofline(runners: dict, med: dict, args) -> None:
    """Each side's achieved GFLOP/s against this machine's matmul rate (both sides run
    the same architecture, so jgan's FLOP count serves PyTorch's step too)."""
    flops = runners["jgan"].step_flops
    sides = ["xla"] + (["torch"] if any(not n.startswith("jgan") for n in runners)
                       and args.torch_device == "cpu" else [])
    peak = {side: matmul_gflops(side, threads=args.threads) for side in sides}
    print(f"\nroofline: one step = {flops / 1e9:.2f} GFLOP (XLA's count); fp32 2048^3 matmul: "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items()))
    if args.resolution == 28:
        for name, shape in step_gemm_shapes(args).items():
            rates = {side: matmul_gflops(side, shape, threads=args.threads) for side in sides}
            print(f"  the step's {name} {shape}: "
                  + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rates.items()))
    best = max(peak.values())
    for name, rate in med.items():
        achieved = flops * rate / args.batch / 1e9
        print(f"  {name:11s} {achieved:6.0f} GFLOP/s = {100 * achieved / best:3.0f}% of the best "
              "matmul rate")
    for other in med:
        if not other.startswith("jgan"):
            for target in (1.0, 1.5):
                need = target * flops * med[other] / args.batch / 1e9
                print(f"  jgan at {target:.1f}x {other} needs {need:.0f} GFLOP/s = "
                      f"{100 * need / best:.0f}% of the best matmul rate")


# --------------------------------------------------------------------------- main

def main(args):
    """Every (batch, dtype) of the sweep in turn (`run_config`); returns the JSON rows."""
    ncpu = os.cpu_count()
    print(f"jax {jax.__version__} ({jax.default_backend()}: {jax.devices()[0].device_kind}, "
          f"{ncpu} CPUs visible, XLA uses all; {args.steps_per_call} step(s) per call); "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    if (not args.skip_jgan and jax.default_backend() == "cpu" and ncpu
            and ncpu > args.threads):
        print(f"WARNING: XLA will use {ncpu} cores but torch only --threads={args.threads}; "
              f"pin the process (taskset -c 0-{args.threads - 1}) for a fair comparison.")
    if not args.skip_torch:
        import torch
        print(f"torch {torch.__version__} on {args.torch_device}, {args.threads} threads "
              f"(mkldnn: {torch.backends.mkldnn.is_available()})")
    return run_sweep(args, run_config, model=f"dcgan{args.resolution}",
                     torch_device=args.torch_device)


def run_config(args, torch_runners):
    """One batch and dtype: builds the runners, times them; returns (runners, medians,
    stats, flops)."""
    print(f"\nDCGAN throughput: {args.resolution}x{args.resolution}x{args.channels}, "
          f"width {args.width}, batch {args.batch}, latent {args.latent}, {args.dtype}, "
          f"Adam({LR}, b1={BETA1}), non-saturating, alternating step (d_steps=1)")
    runners = {}
    if not args.skip_jgan:
        jr = JganRunner(args)
        runners["jgan"] = jr
        if args.host_devices > 1:  # the same step on one of those devices, same run
            runners["jgan-1dev"] = JganRunner(argparse.Namespace(**{**vars(args),
                                                                   "host_devices": 1}))
        print(f"jgan   params: G {jr.g_params:,}  D {jr.d_params:,}")
        print(f"jgan   compile: {jr.compile_s:.2f} s (trace+lower {jr.trace_s:.2f} s, XLA compile "
              f"{jr.xla_compile_s:.2f} s); first step after it {1e3 * jr.first_step_s:.0f} ms; "
              f"{jr.step_flops / 1e9:.2f} GFLOP/step (unoptimized program: "
              f"{jr.lowered_flops / 1e9:.2f})")
    for name, kwargs in torch_runners:
        tr = runners[name] = TorchRunner(args, **kwargs)
        print(f"{name} params: G {tr.g_params:,}  D {tr.d_params:,}; first step "
              f"{tr.first_step_s:.2f} s" + (f"; {tr.compile_info}" if tr.compile_info else ""))
    torch_names = [n for n, _ in torch_runners]
    if "jgan" in runners and torch_names:
        tr = runners[torch_names[0]]
        same = (runners["jgan"].g_params, runners["jgan"].d_params) == (tr.g_params, tr.d_params)
        print(f"parameter counts match: {same}")
        if not same:
            sys.exit("parameter counts differ: not the same architecture")
    flops = runners["jgan"].step_flops if "jgan" in runners else None
    stats = {}
    med = compare_runners(runners, steps=args.steps, warmup=args.warmup, rounds=args.rounds,
                          batch=args.batch, digits=0, flops=flops, peaks=args.peaks_now,
                          stats=stats, round_seconds=args.round_seconds)
    if "jgan-1dev" in med:
        print(f"ratio jgan on {args.host_devices} host devices / on one: "
              f"{med['jgan'] / med['jgan-1dev']:.2f}x (median)")
    if args.roofline and "jgan" in runners:
        report_roofline(runners, med, args)
    return runners, med, stats, flops


if __name__ == "__main__":
    main(ARGS)
