"""CycleGAN training-step throughput: jgan against its PyTorch twin
(`cyclegan_torch_reference.py`, eager and, with --torch_compile, `torch.compile`), in
alternating rounds of one process.

    # CPU, 64 px (on an idle 2-core machine: tens of minutes in all, torch.compile's
    # compiling about 2 minutes of it per batch size):
    PYTHONPATH=. python benchmarks/cyclegan_throughput.py --resolution=64 \\
        --batch_sizes=1,4 --steps=5 --warmup=2 --rounds=5 --torch_compile \\
        --json=cyclegan64_cpu.jsonl
    # GPU, 256 px (the paper's size; torch on cuda, JAX on its default backend):
    PYTHONPATH=. python benchmarks/cyclegan_throughput.py --resolution=256 \\
        --batch_sizes=1,4 --steps=50 --warmup=5 --rounds=5 --torch_compile \\
        --json=cyclegan256_gpu.jsonl
    # checking the script (tiny: 32 px, one step per round):
    PYTHONPATH=. python benchmarks/cyclegan_throughput.py --resolution=32 \\
        --batch_sizes=1 --steps=1 --warmup=1 --rounds=1

PyTorch is for benchmarks only: nothing in `jgan/` or `tests/` imports it.

What is timed, for each batch size (and dtype):

* jgan: the trainer's step for `experiments/configs/cyclegan.py:folder_domains` (the
  paper's networks: ResNet generators of width 64 with 9 blocks, 70 x 70 PatchGANs of
  width 64, least squares, cycle lambda 10, identity 0.5 lambda, pools of 50, Adam 2e-4
  b1 0.5; `--config_arg` picks another, e.g. `folder_domains,runlocal`) with
  `data.resolution = --resolution`, `batch_size` = the batch size and
  `precision.compute_dtype` = the dtype: `builders.build_game`, then
  `jax.jit(builders.build_step(config, game), donate_argnums=0)` as
  `jgan.train.chunks` jits it for a pipeline-fed run, on JAX's first device. The batch
  is random images of both domains of the config's shape (`{"image_a", "image_b",
  "label_a", "label_b"}`, uniform in [-1, 1]): a step's cost does not depend on the
  values, so no data root is needed.
* torch: the same step (`cyclegan_torch_reference.Trainer`: generators' update, then
  the discriminators' against the updated generators' fakes through the pools), eager
  ("torch") and with `--torch_compile` its three functions under `torch.compile`
  ("torch-compile", compiled in its first step, reported apart), float32 (TF32 and the
  cuDNN autotuner on CUDA, as XLA's defaults) or bfloat16 autocast, on cuda when
  available (`--torch_device`). On the CPU torch gets as many threads as XLA:CPU uses
  (the CPUs this process may run on, `os.sched_getaffinity`; `--torch_threads` sets
  another count). Each network's parameter count is printed for both frameworks and
  the run stops if any differs.

Images per second count pairs: a step of batch B translates B images of each domain.
Rounds alternate the order of the runners (`throughput_report.compare_runners`), so
that a shared machine's drifts hit both sides alike; each runner's median over
`--rounds` rounds of `--steps` steps is reported, with the ratio jgan / torch. Each
batch size prints its table as it ends; the sweep's table (ms/step, images/s, jgan's
ratio to each torch mode) comes at the end, and `--json PATH` appends one JSON line per
runner and batch size (`throughput_report.result_rows`). `--max_seconds S` starts no
batch size that would end past S seconds. MFU divides XLA's FLOP count of jgan's
compiled step by each runner's time and the device's peak (`mfu.py`; none on a CPU
unless `--peak_tflops`).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from throughput_report import (TORCH_DTYPES, compare_runners, dynamo_counts,  # noqa: E402
                               jax_env_for, run_sweep, torch_autocast, torch_compile,
                               torch_setup, uses_cudagraphs)


# --------------------------------------------------------------------------- flags

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x.strip()]
    p.add_argument("--resolution", type=int, default=64,
                   help="image size, a multiple of 4 (the paper: 256; 64 on a CPU)")
    p.add_argument("--batch_sizes", type=ints, default=[1, 4], help="comma list")
    p.add_argument("--dtypes", default="float32",
                   type=lambda s: [x for x in s.split(",") if x.strip()],
                   help="comma list of float32, bfloat16")
    p.add_argument("--steps", type=int, default=5, help="timed steps per round and runner")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (after compiling)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (median reported)")
    p.add_argument("--config_arg", default="folder_domains",
                   help="cyclegan.py's argument (folder_domains,runlocal: tiny networks)")
    p.add_argument("--torch_compile", action=argparse.BooleanOptionalAction, default=False,
                   help="also time the torch step under torch.compile")
    p.add_argument("--torch_compile_mode", default=None,
                   help="torch.compile's mode (default: inductor's default)")
    p.add_argument("--torch_device", default=None,
                   help="torch's device (default: cuda when available, else cpu)")
    p.add_argument("--torch_threads", type=int, default=0,
                   help="torch's CPU threads (0: as many as XLA:CPU uses)")
    p.add_argument("--no_torch", action="store_true", help="jgan alone")
    p.add_argument("--peak_tflops", default=None,
                   help="peak TFLOP/s for MFU: one value or float32's,bfloat16's")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="append one JSON line per runner and batch size to PATH")
    p.add_argument("--max_seconds", type=float, default=0.0,
                   help="start no batch size that would end past this (0: no limit)")
    p.add_argument("--round_seconds", type=float, default=0.0,
                   help="about this many seconds per runner and round, at most --steps "
                        "steps (0: --steps)")
    p.add_argument("--profile_steps", type=int, default=0,
                   help="after timing, print torch.profiler's costliest kernels over this "
                        "many steps of each runner")
    args = p.parse_args(argv)
    _check(p, args)
    return _as_sweep_args(args)


def _check(p, args) -> None:
    if args.resolution < 32 or args.resolution % 4:
        p.error(f"--resolution must be a multiple of 4 and >= 32, got {args.resolution}.")
    if min(args.steps, args.rounds, args.warmup + 1, *args.batch_sizes) < 1:
        p.error("--steps, --rounds and the batch sizes must be >= 1, --warmup >= 0.")
    if not args.dtypes or set(args.dtypes) - set(TORCH_DTYPES):
        p.error(f"--dtypes takes {TORCH_DTYPES}, got {args.dtypes}.")


def _as_sweep_args(args):
    """The attributes `throughput_report.run_sweep` reads, from this script's flags."""
    args.batches, args.skip_torch = args.batch_sizes, args.no_torch
    args.skip_torch_eager, args.torch_lean = False, False
    args.torch_compile_mode = args.torch_compile_mode or "default"
    args.torch_compile = args.torch_compile or args.torch_compile_mode != "default"
    args.peak_by_dtype = None
    if args.peak_tflops:
        values = [float(v) for v in args.peak_tflops.split(",")]
        args.peak_by_dtype = dict(zip(TORCH_DTYPES, values * 2 if len(values) == 1 else values))
    return args


def jax_cpu_count() -> int:
    """The CPUs XLA:CPU's thread pool uses: those this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# --------------------------------------------------------------------------- jgan

def jgan_config(args, batch: int, dtype: str):
    """`cyclegan.py:--config_arg` at `--resolution`, `batch` and `dtype`, validated."""
    import cyclegan_torch_reference as ref
    from jgan.train import builders
    config = ref.load_config(args.config_arg, args.resolution)
    config.batch_size = batch
    config.precision.compute_dtype = dtype
    builders.validate(config)
    return config


def synthetic_batch(config, seed: int = 0) -> dict:
    """A batch of both domains as the translation pipeline gives it, random values."""
    import numpy as np
    rng = np.random.default_rng(seed)
    b, r, c = config.batch_size, config.data.resolution, config.data.channels
    image = lambda: rng.uniform(-1, 1, (b, r, r, c)).astype(np.float32)
    label = lambda: np.zeros((b,), np.int32)
    return {"image_a": image(), "image_b": image(), "label_a": label(), "label_b": label()}


class JganRunner:
    """jgan's step, compiled ahead of time (trace + lower, XLA compile timed apart), then
    run once; `run(n)` times n more."""

    def __init__(self, config):
        import jax
        from mfu import step_flops

        from jgan.train import builders
        game = builders.build_game(config)
        self.batch = jax.device_put(synthetic_batch(config))
        self.state = jax.jit(game.init)(jax.random.PRNGKey(config.seed), self.batch)
        step = jax.jit(builders.build_step(config, game), donate_argnums=0)
        t0 = time.perf_counter()
        lowered = step.lower(self.state, self.batch)
        t1 = time.perf_counter()
        self.step = lowered.compile()
        t2 = time.perf_counter()
        self.trace_s, self.xla_compile_s, self.compile_s = t1 - t0, t2 - t1, t2 - t0
        self.step_flops = step_flops(self.step)
        self.first_step_s = self.run(1)

    def run(self, n: int) -> float:
        """Seconds for n steps (dispatched asynchronously, the last state awaited)."""
        import jax
        t0 = time.perf_counter()
        for _ in range(n):
            self.state, _ = self.step(self.state, self.batch)
        jax.block_until_ready(self.state)
        return time.perf_counter() - t0


# --------------------------------------------------------------------------- torch

class TorchRunner:
    """The reference's step on `--torch_device`: eager, or (`compile_mode`) its three
    functions under torch.compile. The constructor runs the first step (torch.compile's
    compile time) and a second (to show recompiles)."""

    def __init__(self, args, config, compile_mode: str | None = None):
        import torch

        import cyclegan_torch_reference as ref
        self.torch, self.dev = torch, torch.device(args.torch_device)
        arch = ref.arch_from_config(config)
        torch.manual_seed(0)
        nets = ref.build_networks(arch).to(self.dev)
        compile_fn = (None if compile_mode is None
                      else lambda fn: torch_compile(torch, fn, compile_mode))
        self.trainer = ref.Trainer(nets, arch, compile_fn=compile_fn, autocast=lambda:
                                   torch_autocast(torch, self.dev.type, args.dtype))
        batch = synthetic_batch(config)   # jgan's values, NHWC -> NCHW
        self.a, self.b = (torch.from_numpy(batch[k].transpose(0, 3, 1, 2).copy()).to(self.dev)
                          for k in ("image_a", "image_b"))
        self.cudagraphs = uses_cudagraphs(compile_mode, self.dev.type)
        before = dynamo_counts(torch)
        self.first_step_s = self.run(1)
        self.compile_s = self.first_step_s if compile_mode is not None else None
        mid = dynamo_counts(torch)
        second_s = self.run(1)
        after = dynamo_counts(torch)
        self.compile_info = "" if compile_mode is None else (
            f"torch.compile: {mid['graphs'] - before['graphs']} graphs, "
            f"{mid['graph_breaks'] - before['graph_breaks']} graph breaks in the first step, "
            f"{after['graphs'] - mid['graphs']} recompiled in the second ({second_s:.2f} s)")

    def _sync(self) -> None:
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def run(self, n: int) -> float:
        """Seconds for n steps, the losses read back (and the device synchronized)."""
        self._sync()
        t0 = time.perf_counter()
        for _ in range(n):
            if self.cudagraphs:
                self.torch.compiler.cudagraph_mark_step_begin()
            losses = self.trainer.step(self.a, self.b)
            if self.cudagraphs:   # a CUDA graph's outputs are overwritten by its next replay
                losses = [loss.clone() for loss in losses]
        [float(loss) for loss in losses]
        self._sync()
        return time.perf_counter() - t0


# --------------------------------------------------------------------------- main

def check_param_counts(args) -> dict:
    """Both frameworks' parameter counts per network at `--resolution`; exits if any
    differs (`cyclegan_torch_reference.check_param_counts`)."""
    import cyclegan_torch_reference as ref
    config = ref.load_config(args.config_arg, args.resolution)
    nets = ref.build_networks(ref.arch_from_config(config))
    return ref.check_param_counts(nets, ref.jgan_param_counts(config))


def run_config(cfg, torch_specs):
    """One batch size and dtype: builds the runners, times them in alternating rounds;
    returns (runners, medians, stats, FLOPs per step) for `run_sweep`."""
    config = jgan_config(cfg, cfg.batch, cfg.dtype)
    s = config.cyclegan
    print(f"\nCycleGAN {config.data.resolution} px, batch {cfg.batch}, {cfg.dtype}: G width "
          f"{s.generator_width} x {s.generator_blocks} blocks, PatchGAN width "
          f"{s.discriminator_width} x {s.discriminator_layers} layers, {s.norm} norm, pools "
          f"of {s.pool_size}")
    runners = {"jgan": JganRunner(config)}
    jr = runners["jgan"]
    print(f"jgan compile {jr.compile_s:.1f} s (trace+lower {jr.trace_s:.1f} s, XLA "
          f"{jr.xla_compile_s:.1f} s); first step {jr.first_step_s:.2f} s; "
          f"{jr.step_flops / 1e9:.1f} GFLOP/step")
    for name, kwargs in torch_specs:
        tr = runners[name] = TorchRunner(cfg, config, **kwargs)
        print(f"{name} first step {tr.first_step_s:.2f} s"
              + (f"; {tr.compile_info}" if tr.compile_info else ""))
    stats = {}
    med = compare_runners(runners, steps=cfg.steps, warmup=cfg.warmup, rounds=cfg.rounds,
                          batch=cfg.batch, digits=2, flops=jr.step_flops,
                          peaks=cfg.peaks_now, stats=stats,
                          round_seconds=cfg.round_seconds or None)
    return runners, med, stats, jr.step_flops


def main(argv=None):
    args = parse_args(argv)
    if not args.no_torch:
        import torch
        args.torch_device = args.torch_device or ("cuda" if torch.cuda.is_available() else "cpu")
        args.torch_threads = args.torch_threads or jax_cpu_count()
        torch_setup(torch, args.torch_device, args.torch_threads)
    else:
        args.torch_device = args.torch_device or "cpu"
    jax_env_for(args.torch_device, args.no_torch)   # before JAX is imported
    import jax
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax_cpu_count()} CPUs "
          f"for XLA:CPU)")
    if not args.no_torch:
        print(f"torch {torch.__version__} on {args.torch_device}, "
              f"{torch.get_num_threads()} threads")
    check_param_counts(args)
    model = f"cyclegan{args.resolution}" + (
        "" if args.config_arg == "folder_domains" else f":{args.config_arg}")
    return run_sweep(args, run_config, model=model, torch_device=args.torch_device)


if __name__ == "__main__":
    main()
