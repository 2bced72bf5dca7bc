"""Large-batch BigBiGAN: training-step throughput and model FLOP utilization against the
batch size, jgan against the PyTorch reference of the same step
(`bigbigan_torch_reference.py`, eager and `torch.compile`) in the same run.

    PYTHONPATH=. python benchmarks/bigbigan_throughput.py --batch_sizes=256,512,1024,2048
    PYTHONPATH=. python benchmarks/bigbigan_throughput.py --no_torch   # jgan alone
    PYTHONPATH=. python benchmarks/bigbigan_throughput.py --scale=small --no-torch_compile
    # On a GPU: BigGAN's 64 px networks, both precisions, rows kept as JSON lines.
    PYTHONPATH=. python benchmarks/bigbigan_throughput.py --resolution=64 \\
        --batch_sizes=256,2048 --dtypes=bfloat16,float32 --json=bigbigan.jsonl

What is timed, for each resolution, batch size and dtype:

* jgan: the trainer's step (`builders.build_step`, jitted with the state donated) for
  `bigbigan.py:mnist,large_batch` (`--scale=small`: `mnist,small`, the CPU-sized
  networks; `--scale=tiny`: `mnist,runlocal`, for checking the script), with
  `,res64` / `,res128` for `--resolution` 64 / 128 (BigGAN's networks of that size,
  `jgan.models.resnet`), `precision.compute_dtype` = the dtype (float32 uses XLA's
  default precision: TF32 on NVIDIA GPUs since Ampere), at the batch size, on JAX's
  first device. The batch is random images of the config's shape (a step's cost does
  not depend on the values), so no data set is read.
* torch: the reference in a subprocess, eager and (unless `--no-torch_compile`) with
  `torch.compile`, float32 (TF32 allowed on CUDA) or bfloat16 autocast, on cuda when
  available (`--torch_device`). Its parameter counts are checked equal to jgan's.

Each (resolution, batch, dtype) runs jgan in a subprocess (XLA may take 94 % of the GPU's
memory, `XLA_PYTHON_CLIENT_MEM_FRACTION`) and then torch in another, so that neither
framework's allocator holds GPU memory while the other runs. A worker that fails (out
of memory, say) gives an error row and the run goes on.

Printed, and written as JSON lines to `--json PATH` as each row arrives: milliseconds
per step (median of --rounds rounds of --steps steps), images per second, the ratio of
jgan's images/s to each torch mode's, and the model FLOP utilization (`mfu.py`): one
step's FLOPs by XLA's cost analysis of jgan's compiled step (forward, backward, the
reversible encoder's recomputation and the optimizer updates of both teams), over the
seconds per step, over the device's peak for the dtype (`mfu.PEAK_TFLOPS` by JAX's
device kind, or `--peak_tflops` for float32's and bfloat16's peak, e.g. `494.7,989.4`);
torch's MFU divides the same FLOP count by torch's time. No MFU on a CPU unless
`--peak_tflops` is given. jgan's rows also give the compile time, XLA's memory analysis
of the step and, on a GPU, the peak device memory.

`--profile DIR`: after timing, `--profile_steps` more steps of jgan's step under
`jax.profiler.trace` (DIR/jgan-r{R}-b{B}-{dtype}.xplane.pb.gz; to view it, gunzip it
under LOGDIR/plugins/profile/RUN/ for TensorBoard's profile plugin or XProf) and of each torch
mode under `torch.profiler` (DIR/torch-r{R}-b{B}-{dtype}-{mode}.json.gz, a Chrome /
Perfetto trace, and .txt, operators by device time): three files per row, all in DIR.
`--profile_only=2048:bfloat16` profiles only the rows named (BATCH or BATCH:DTYPE).

`--cost_only`: compile jgan's step at each size and print its FLOPs and XLA's memory
analysis without running it or torch (sizing a GPU run from a CPU: XLA:CPU's memory
figures are a guide, not the GPU's). `--scale=full` on the 2-core CPU (jax 0.10.2):

    res  batch  TFLOP/step (float32)  XLA:CPU temporaries float32 / bfloat16
     64    256         4.06                  7.4 /  8.0 GiB
     64  2,048        32.5                  65.9 / 73.7 GiB
    128    256         7.66                 22.4 / 23.2 GiB
    128  2,048        61.3                 207  / 228  GiB

(XLA:CPU computes bfloat16 convolutions in float32, so its bfloat16 figure is no lower;
a GPU's should be.) So at 128 px batch 2,048 does not fit one 80 or 141 GiB GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# --scale: the large-batch networks, the CPU-sized ones of `,small` (the same step at
# the same batch sizes; what a 2-core CPU can time in minutes), or the tiny ones of
# `,runlocal` (to check this script).
SCALES = {"full": "mnist,large_batch", "small": "mnist,small", "tiny": "mnist,runlocal"}
DTYPES = ("float32", "bfloat16")


def config_arg(scale: str, resolution: int) -> str:
    return SCALES[scale] + (f",res{resolution}" if resolution != 32 else "")


# --------------------------------------------------------------------------- jgan

def jgan_row(resolution: int, batch: int, dtype: str, args) -> dict:
    """Compiles and times jgan's step in this process (a worker): one row."""
    sys.path.insert(0, str(HERE))
    import jax
    import jax.numpy as jnp
    import numpy as np
    from mfu import peak_flops, step_flops

    from experiments.configs import bigbigan
    from jgan.train import builders

    config = bigbigan.get_config(config_arg(args.scale, resolution))
    config.batch_size = batch
    config.precision.compute_dtype = dtype
    builders.validate(config)
    device = jax.devices()[0]
    r, c = config.data.resolution, config.data.channels
    game = builders.build_game(config)
    if args.cost_only:   # shapes only: nothing is computed
        inputs = {"image": jax.ShapeDtypeStruct((batch, r, r, c), jnp.float32),
                  "label": jax.ShapeDtypeStruct((batch,), jnp.int32)}
        state = jax.eval_shape(game.init, jax.random.PRNGKey(config.seed), inputs)
    else:
        rng = np.random.default_rng(0)
        inputs = jax.device_put(
            {"image": rng.uniform(-1, 1, (batch, r, r, c)).astype(np.float32),
             "label": rng.integers(0, 10, (batch,)).astype(np.int32)}, device)
        state = jax.jit(game.init)(jax.random.PRNGKey(config.seed), inputs)
    step = jax.jit(builders.build_step(config, game), donate_argnums=0)
    start = time.perf_counter()
    lowered = step.lower(state, inputs)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    flops = step_flops(compiled)
    row = {"impl": "jgan", "mode": "jit", "resolution": r, "batch": batch, "dtype": dtype,
           "scale": args.scale, "flops_per_step": flops,
           "flops_per_step_hlo": _hlo_flops(lowered), "compile_s": round(compile_s, 2),
           "platform": device.platform, "device_kind": device.device_kind,
           "jax": jax.__version__, **_memory_analysis(compiled)}
    if args.cost_only:
        return row
    for _ in range(args.warmup):
        state, metrics = compiled(state, inputs)
    jax.block_until_ready(state)
    rounds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(args.steps):
            state, metrics = compiled(state, inputs)
        jax.block_until_ready(metrics)
        rounds.append(1000 * (time.perf_counter() - start) / args.steps)
    ms = statistics.median(rounds)
    peak = peak_flops(device.device_kind, dtype, _peak_tflops(args, dtype))
    row.update({"ms_per_step": ms, "rounds_ms": [round(x, 3) for x in rounds],
                "images_per_s": 1000 * batch / ms, "peak_flops": peak,
                "mfu": _mfu(flops, ms, peak), "steps": args.steps, "warmup": args.warmup,
                "losses": {k: float(v) for k, v in metrics.items()
                           if "loss" in k and getattr(v, "ndim", None) == 0}})
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        row["peak_memory_gib"] = round(stats["peak_bytes_in_use"] / 2**30, 2)
    if args.profile and profiled(batch, dtype, args):
        row["profile"] = {"trace": _jax_trace(compiled, state, inputs, args.profile,
                                              f"jgan-r{r}-b{batch}-{dtype}",
                                              args.profile_steps),
                          "steps": args.profile_steps}
    return row


def profiled(batch: int, dtype: str, args) -> bool:
    """Whether `--profile_only` (BATCH or BATCH:DTYPE, comma-separated; empty: all)
    takes this row."""
    if not args.profile_only:
        return True
    return any(part in (str(batch), f"{batch}:{dtype}") for part in args.profile_only.split(","))


def _jax_trace(compiled, state, inputs, directory: str, name: str, steps: int) -> str:
    """`steps` steps under `jax.profiler.trace`, the trace gzipped to
    DIR/NAME.xplane.pb.gz (the profiler nests it 4 folders deep; to view it, gunzip it
    under LOGDIR/plugins/profile/RUN/ and open LOGDIR in TensorBoard's profile plugin
    or XProf)."""
    import glob
    import gzip
    import shutil

    import jax
    scratch = tempfile.mkdtemp(prefix="jgan-profile-")
    with jax.profiler.trace(scratch):
        for _ in range(steps):
            state, metrics = compiled(state, inputs)
        jax.block_until_ready(metrics)
    traces = sorted(glob.glob(os.path.join(scratch, "**", "*.xplane.pb"), recursive=True))
    Path(directory).mkdir(parents=True, exist_ok=True)
    target = os.path.join(directory, f"{name}.xplane.pb.gz")
    if traces:
        with open(traces[-1], "rb") as src, gzip.open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    shutil.rmtree(scratch, ignore_errors=True)
    return target if traces else "no trace written"


def _hlo_flops(lowered) -> float | None:
    """XLA's FLOP count of the step before optimization (a cross-check of the compiled
    program's count, which is what MFU uses)."""
    try:
        analysis = lowered.cost_analysis()
    except Exception:   # noqa: BLE001 - not every backend analyses unoptimized HLO
        return None
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    return float(analysis["flops"]) if analysis and "flops" in analysis else None


def _memory_analysis(compiled) -> dict:
    try:
        m = compiled.memory_analysis()
    except Exception:   # noqa: BLE001 - not every backend reports it
        return {}
    if m is None:
        return {}
    gib = lambda name: round(getattr(m, name, 0) / 2**30, 3)
    return {"xla_temp_gib": gib("temp_size_in_bytes"),
            "xla_argument_gib": gib("argument_size_in_bytes"),
            "xla_output_gib": gib("output_size_in_bytes")}


def _peak_tflops(args, dtype: str) -> float | None:
    if not args.peak_tflops:
        return None
    values = [float(v) for v in args.peak_tflops.split(",")]
    return values[min(DTYPES.index(dtype), len(values) - 1)]


def _mfu(flops: float | None, ms: float, peak: float | None) -> float | None:
    sys.path.insert(0, str(HERE))
    from mfu import mfu
    return None if flops is None else mfu(flops, ms / 1000, peak)


# --------------------------------------------------------------------------- workers

def _forwarded(args) -> list[str]:
    """The options a jgan worker shares with this process."""
    out = [f"--scale={args.scale}", f"--steps={args.steps}", f"--warmup={args.warmup}",
           f"--rounds={args.rounds}", f"--profile_steps={args.profile_steps}"]
    out += [f"--peak_tflops={args.peak_tflops}"] if args.peak_tflops else []
    out += [f"--profile={args.profile}"] if args.profile else []
    out += [f"--profile_only={args.profile_only}"] if args.profile_only else []
    out += ["--cost_only"] if args.cost_only else []
    return out


def _stream(command: list[str], env: dict, what: str):
    """Runs `command`, yielding each JSON line of its stdout as it comes; on failure
    yields `{"error": ...}` with the end of its stderr."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err,
                                text=True)
        for line in proc.stdout:
            if line.startswith("{"):
                yield json.loads(line)
        proc.wait()
        if proc.returncode:
            err.seek(0)
            tail = err.read()[-3000:]
            print(f"{what} failed (exit {proc.returncode}):\n{tail}", file=sys.stderr,
                  flush=True)
            yield {"error": f"{what} exited {proc.returncode}: "
                            f"{tail.strip().splitlines()[-1] if tail.strip() else ''}"}


def run_jgan(resolution: int, batch: int, dtype: str, args) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--_jgan_worker",
               f"--resolution={resolution}", f"--batch_sizes={batch}", f"--dtypes={dtype}",
               *_forwarded(args)]
    # Alone on the device: JAX may take most of its memory (its default is 75 %).
    env = {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.94", **os.environ,
           "PYTHONPATH": os.pathsep.join(
               [str(HERE.parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    rows = list(_stream(command, env, f"jgan (res {resolution}, batch {batch}, {dtype})"))
    row = rows[-1] if rows else {"error": "jgan worker printed nothing"}
    return row if "impl" in row else {"impl": "jgan", "mode": "jit", "resolution": resolution,
                                      "batch": batch, "dtype": dtype, **row}


def run_torch(resolution: int, batch: int, dtype: str, args):
    command = [sys.executable, str(HERE / "bigbigan_torch_reference.py"),
               f"--batch_sizes={batch}", f"--dtypes={dtype}", f"--resolution={resolution}",
               f"--steps={args.steps}", f"--rounds={args.rounds}", f"--warmup={args.warmup}",
               f"--config_arg={SCALES[args.scale]}"]
    command += [] if args.torch_compile else ["--no-compile"]
    command += [f"--device={args.torch_device}"] if args.torch_device else []
    command += [f"--threads={args.torch_threads}"] if args.torch_threads else []
    command += [f"--compile_mode={args.torch_compile_mode}"] if args.torch_compile_mode else []
    command += [f"--profile={args.profile}", f"--profile_steps={args.profile_steps}"] \
        if args.profile and profiled(batch, dtype, args) else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(HERE.parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "JAX_PLATFORMS": "cpu"}
    for r in _stream(command, env, f"torch (res {resolution}, batch {batch}, {dtype})"):
        if "param_counts" in r:
            continue
        if "error" in r:
            yield {"impl": "torch", "mode": "?", "resolution": resolution, "batch": batch,
                   "dtype": dtype, **r}
            continue
        yield {"impl": "torch", **{k: r[k] for k in ("mode", "resolution", "batch", "dtype",
                                                     "ms_per_step", "images_per_s")},
               **{k: r[k] for k in ("rounds_ms", "warmup_s", "device_name", "peak_memory_gib",
                                    "graph_breaks", "compile_mode", "torch", "profile",
                                    "threads") if k in r}}


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x]
    parser.add_argument("--batch_sizes", default="64,128,256,512,1024,2048", type=ints)
    parser.add_argument("--dtypes", default="float32",
                        type=lambda s: [x for x in s.split(",") if x],
                        help="comma-separated compute dtypes: float32, bfloat16")
    parser.add_argument("--resolution", default="32", type=ints,
                        help="image size(s), of 32, 64, 128 (comma-separated)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", default="full", choices=sorted(SCALES))
    parser.add_argument("--peak_tflops", default=None,
                        help="peak TFLOP/s for MFU instead of mfu.PEAK_TFLOPS: one value, "
                             "or float32's,bfloat16's")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="append every row to PATH as a JSON line as it arrives")
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="profile --profile_steps steps of each row into DIR")
    parser.add_argument("--profile_steps", type=int, default=3)
    parser.add_argument("--profile_only", default="",
                        help="profile only these rows: BATCH or BATCH:DTYPE, comma-separated")
    parser.add_argument("--cost_only", action="store_true",
                        help="jgan's FLOPs and XLA memory analysis only: no timing, no torch")
    parser.add_argument("--no_torch", action="store_true")
    parser.add_argument("--torch_compile", action=argparse.BooleanOptionalAction, default=True,
                        help="also time torch.compile (2-3 min of compiling per batch on a CPU)")
    parser.add_argument("--torch_compile_mode", default=None,
                        help="torch.compile's mode (default: inductor's default)")
    parser.add_argument("--torch_device", default=None,
                        help="the torch reference's device (default: cuda when available)")
    parser.add_argument("--torch_threads", type=int, default=0)
    parser.add_argument("--data_dir", default=None,
                        help="ignored (kept for old command lines): the batch is random")
    parser.add_argument("--_jgan_worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if set(args.dtypes) - set(DTYPES):
        parser.error(f"--dtypes takes {DTYPES}, got {args.dtypes}.")
    if set(args.resolution) - {32, 64, 128}:
        parser.error(f"--resolution takes 32, 64, 128, got {args.resolution}.")
    if min(args.steps, args.rounds, args.profile_steps, args.warmup + 1, *args.batch_sizes) < 1:
        parser.error("--steps, --rounds, --profile_steps and the batch sizes must be >= 1, "
                     "--warmup >= 0.")
    return args


def _print_table(rows: list[dict]) -> None:
    print(f"\n{'impl':6s} {'mode':8s} {'res':>4s} {'batch':>6s} {'dtype':9s} {'ms/step':>10s} "
          f"{'images/s':>10s} {'MFU':>6s} {'jgan x':>7s}")
    for r in rows:
        if "error" in r:
            print(f"{r['impl']:6s} {r.get('mode', ''):8s} {r['resolution']:4d} {r['batch']:6d} "
                  f"{r['dtype']:9s} error: {r['error'][:80]}")
            continue
        if "ms_per_step" not in r:   # --cost_only
            print(f"{r['impl']:6s} {r['mode']:8s} {r['resolution']:4d} {r['batch']:6d} "
                  f"{r['dtype']:9s} {r['flops_per_step'] / 1e12:.3f} TFLOP/step, "
                  f"XLA temp {r.get('xla_temp_gib', '?')} GiB, compile {r['compile_s']} s")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else ""
        speedup = f"{r['jgan_speedup']:.2f}" if "jgan_speedup" in r else ""
        print(f"{r['impl']:6s} {r['mode']:8s} {r['resolution']:4d} {r['batch']:6d} "
              f"{r['dtype']:9s} {r['ms_per_step']:10.1f} {r['images_per_s']:10.1f} "
              f"{mfu:>6s} {speedup:>7s}")


def main(argv=None):
    args = parse_args(argv)
    if args._jgan_worker:
        for resolution in args.resolution:
            for batch in args.batch_sizes:
                for dtype in args.dtypes:
                    print(json.dumps(jgan_row(resolution, batch, dtype, args)), flush=True)
        return
    out = open(args.json, "a") if args.json else None   # noqa: SIM115

    def emit(row):
        rows.append(row)
        print(json.dumps(row), flush=True)
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()

    rows = []
    for resolution in args.resolution:
        for batch in args.batch_sizes:
            for dtype in args.dtypes:
                jgan = run_jgan(resolution, batch, dtype, args)
                emit(jgan)
                if args.no_torch or args.cost_only:
                    continue
                for row in run_torch(resolution, batch, dtype, args):
                    if "error" not in row:
                        if "images_per_s" in jgan:
                            row["jgan_speedup"] = jgan["images_per_s"] / row["images_per_s"]
                        row["mfu"] = _mfu(jgan.get("flops_per_step"), row["ms_per_step"],
                                          jgan.get("peak_flops"))
                    emit(row)
    if out:
        out.close()
    _print_table(rows)


if __name__ == "__main__":
    main()
