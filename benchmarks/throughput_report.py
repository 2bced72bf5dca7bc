"""The measurement and report that the training-throughput benchmarks share.

Each side is a runner with `run(n) -> seconds for n steps` (waiting for the device);
jgan's runner also carries its compile times, a compiled torch runner its `compile_s`
(the first step, torch.compile's tracing and code generation included). Rounds
alternate the order of the sides, so that slow drifts of a shared machine hit both
alike; medians are compared.

For sweeps (batch sizes x dtypes, one process): `compare_runners(..., flops=, peaks=,
stats=)` adds model FLOP utilization (benchmarks/mfu.py) to the table and fills `stats`;
`result_rows` turns one configuration's stats into JSON-ready rows, `append_json_lines`
writes them as they come (a run cut short keeps what it measured), `print_sweep` prints
the sweep's table at the end. `torch_setup` / `torch_autocast` / `torch_compile` hold
the PyTorch conventions both benchmarks use, `kernel_profile` a per-kernel time table.
"""
from __future__ import annotations

import contextlib
import json
import statistics
import time


def compare_runners(runners: dict, *, steps: int, warmup: int, rounds: int, batch: int,
                    digits: int = 0, flops: float | None = None,
                    peaks: dict | None = None, stats: dict | None = None,
                    round_seconds: float | None = None) -> dict[str, float]:
    """Times every runner and prints the rounds, a table and the jgan / other ratios.

    Args:
      runners: `{name: runner}`; "jgan" (with `compile_s`, `trace_s`, `xla_compile_s`)
        is compared with every runner whose name does not start with "jgan".
      steps: timed steps per round and runner (with `round_seconds`, the most).
      warmup: untimed steps first (jgan is already compiled by then).
      rounds: measurement rounds.
      batch: images per step.
      digits: decimals of the images/second figures.
      flops: FLOPs of one step (XLA's count, benchmarks/mfu.py `step_flops`); with
        `peaks`, an MFU column.
      peaks: `{name: peak FLOP/s or None}` of the device each runner computes on.
      stats: when given, filled with `{name: {"median_img_s", "best_img_s",
        "ms_per_step", "cpu_ms_per_step", "rounds_img_s", "mfu", "steps"}}`.
      round_seconds: when given, each runner times about this many seconds a round:
        its steps per round are set from its warm-up's time (at least 2, at most
        `steps`), so that a slow runner at a large batch does not spend the budget of a
        sweep.
    Returns:
      `{name: median images/second}`.
    """
    from mfu import mfu
    n_steps = {}
    for name, r in runners.items():
        if warmup or round_seconds:
            t = r.run(max(warmup, 1)) / max(warmup, 1)
        n_steps[name] = (steps if not round_seconds
                         else max(2, min(steps, int(round_seconds / max(t, 1e-9)))))
    if round_seconds:
        print("steps per round: " + ", ".join(f"{n} {k}" for n, k in n_steps.items()))
    rates = {name: [] for name in runners}
    cpu_ms = {name: [] for name in runners}
    for rnd in range(rounds):
        for name in (list(runners) if rnd % 2 == 0 else list(reversed(runners))):
            c0 = time.process_time()
            dt = runners[name].run(n_steps[name])
            cpu_ms[name].append(1e3 * (time.process_time() - c0) / n_steps[name])
            rates[name].append(n_steps[name] * batch / dt)
        print(f"round {rnd + 1}: " + ", ".join(f"{n} {rates[n][-1]:.{digits}f} img/s"
                                               for n in runners))
    show_mfu = bool(flops) and any((peaks or {}).values())
    width = max([11] + [len(n) for n in runners])
    print(f"\n{'':{width}s} {'median img/s':>12s} {'best':>8s} {'ms/step':>8s} "
          f"{'CPU ms/step':>12s}" + (f" {'MFU':>6s}" if show_mfu else "") + "  rounds (img/s)")
    med = {}
    for name, rs in rates.items():
        med[name] = statistics.median(rs)
        util = mfu(flops, batch / med[name], (peaks or {}).get(name)) if flops else None
        if stats is not None:
            stats[name] = {"median_img_s": med[name], "best_img_s": max(rs),
                           "ms_per_step": 1e3 * batch / med[name],
                           "cpu_ms_per_step": statistics.median(cpu_ms[name]),
                           "rounds_img_s": list(rs), "mfu": util,
                           "steps": n_steps[name]}
        mfu_col = ""
        if show_mfu:
            mfu_col = f" {100 * util:5.1f}%" if util is not None else f" {'-':>6s}"
        print(f"{name:{width}s} {med[name]:12.{digits}f} {max(rs):8.{digits}f} "
              f"{1e3 * batch / med[name]:8.1f} {statistics.median(cpu_ms[name]):12.1f}"
              + mfu_col + "  " + " ".join(f"{r:.{digits}f}" for r in rs))
    print("(CPU ms/step: process CPU time, all threads. Much less than threads x ms/step "
          "means the run was starved by other processes.)")
    if flops:
        print(f"one step = {flops / 1e9:.2f} GFLOP (XLA's cost analysis of jgan's step)"
              + ("" if show_mfu else "; MFU not shown: the device's peak is not known "
                 "(--peak-tflops)"))
    for name, r in runners.items():
        if not name.startswith("jgan") and getattr(r, "compile_s", None) is not None:
            print(f"{name} compile time (its first step): {r.compile_s:.2f} s, not included "
                  "in img/s")
    if "jgan" in med:
        jr = runners["jgan"]
        print(f"jgan compile time: {jr.compile_s:.2f} s (trace+lower {jr.trace_s:.2f} s + XLA "
              f"{jr.xla_compile_s:.2f} s), not included in img/s")
        for other in med:
            if not other.startswith("jgan"):
                print(f"ratio jgan / {other}: {med['jgan'] / med[other]:.2f}x (median), "
                      f"{max(rates['jgan']) / max(rates[other]):.2f}x (best rounds)")
    return med


def result_rows(runners: dict, stats: dict, *, common: dict, sides: dict | None = None,
                flops: float | None = None, peaks: dict | None = None) -> list[dict]:
    """One JSON-ready row per runner of one configuration: `common` (model, batch, dtype,
    ...) plus the runner's name, side and mode (`sides[name] = (side, mode)`), its
    stats, compile seconds, the step's FLOPs and the peak its MFU divides by."""
    rows = []
    for name, s in stats.items():
        r = runners[name]
        side, mode = (sides or {}).get(name, (name.split("-")[0], name))
        rows.append({**common, "runner": name, "side": side, "mode": mode,
                     "ms_per_step": s["ms_per_step"], "images_per_s": s["median_img_s"],
                     "best_images_per_s": s["best_img_s"], "rounds_images_per_s":
                     s["rounds_img_s"], "cpu_ms_per_step": s["cpu_ms_per_step"],
                     "steps_per_round": s["steps"], "rounds": len(s["rounds_img_s"]),
                     "mfu": s["mfu"], "compile_s": getattr(r, "compile_s", None),
                     "flops_per_step": flops,
                     "peak_flops": (peaks or {}).get(name)})
    return rows


def append_json_lines(path: str | None, rows: list[dict]) -> None:
    """Appends `rows` to `path` as JSON lines (nothing when `path` is None)."""
    if not path:
        return
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def print_sweep(rows: list[dict], reference: str = "torch-compile") -> None:
    """The sweep's table: one line per (batch, dtype, runner), with jgan's ratio to
    `reference` (or to "torch" when no compiled runner ran) per configuration."""
    if not rows:
        return
    print(f"\nsweep: {'batch':>6s} {'dtype':>9s} {'runner':<28s} {'img/s':>10s} "
          f"{'ms/step':>8s} {'MFU':>6s} {'compile s':>9s}  jgan/it")
    for row in rows:
        if "error" in row:
            print(f"       {row['batch']:6d} {row['dtype']:>9s} {row.get('runner', '-'):<28s} "
                  f"error: {row['error'][:80]}")
            continue
        same = [r for r in rows if r["batch"] == row["batch"] and r["dtype"] == row["dtype"]
                and "error" not in r]
        jgan = [r for r in same if r["runner"] == "jgan"]
        ratio = (f"{jgan[0]['images_per_s'] / row['images_per_s']:.2f}x"
                 if jgan and row["runner"] != "jgan" else "")
        util = f"{100 * row['mfu']:5.1f}%" if row.get("mfu") is not None else f"{'-':>6s}"
        comp = f"{row['compile_s']:9.1f}" if row.get("compile_s") is not None else f"{'-':>9s}"
        print(f"       {row['batch']:6d} {row['dtype']:>9s} {row['runner']:<28s} "
              f"{row['images_per_s']:10.1f} {row['ms_per_step']:8.2f} {util} {comp}  {ratio}")
    goal = [r for r in rows if r.get("runner") in (reference, "torch") and "error" not in r]
    if goal:
        print(f"(jgan/it: jgan's images/second over that runner's, same batch and dtype; "
              f"issue 27's goal is >= 1.2x {reference})")


# --------------------------------------------------------------------------- PyTorch

TORCH_DTYPES = ("float32", "bfloat16")


def torch_setup(torch, device: str, threads: int | None = None) -> None:
    """PyTorch as a performance-minded user runs it: on CUDA, TF32 for float32 matmuls
    and convolutions (what JAX's default precision does on GPU) and cuDNN's autotuner
    (`cudnn.benchmark`, shapes are fixed); on the CPU, `threads` intra-op threads."""
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    elif threads:
        torch.set_num_threads(threads)


def torch_autocast(torch, device: str, dtype: str):
    """`torch.autocast(device, dtype=torch.bfloat16)` for "bfloat16" (parameters stay
    float32, matmuls and convolutions run in bfloat16, losses in float32), a null
    context for "float32"."""
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=getattr(torch, dtype))


def torch_compile(torch, fn, mode: str | None):
    """`torch.compile(fn, mode=mode, dynamic=False)` (static shapes: each runner has
    one batch size; dynamo's caches are reset first, so that runners built one after
    another in a sweep never reach its recompile limit and fall back to eager)."""
    torch._dynamo.reset()
    return torch.compile(fn, mode=None if mode in (None, "default") else mode, dynamic=False)


def dynamo_counts(torch) -> dict[str, int]:
    """torch.compile's totals so far: graphs compiled and graph breaks (a difference of
    two calls shows what a step compiled; graphs after the first step are recompiles)."""
    counters = torch._dynamo.utils.counters
    return {"graphs": int(counters["stats"].get("unique_graphs", 0)),
            "graph_breaks": int(sum(counters["graph_break"].values()))}


def uses_cudagraphs(mode: str | None, device: str) -> bool:
    """Whether a torch.compile `mode` records CUDA graphs (each step must then call
    `torch.compiler.cudagraph_mark_step_begin()`)."""
    return device == "cuda" and mode in ("reduce-overhead", "max-autotune")


def kernel_profile(runner, steps: int, device: str, rows: int = 15) -> str:
    """The `rows` costliest kernels (CUDA: device time; CPU: host time) over `steps`
    steps of `runner`, as torch.profiler's table. CUPTI traces every kernel of the
    process, so on a GPU this shows XLA's kernels for a jgan runner as well."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        runner.run(steps)
    key = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    try:
        return prof.key_averages().table(sort_by=key, row_limit=rows)
    except (KeyError, AttributeError, RuntimeError):   # renamed device_time_total
        return prof.key_averages().table(sort_by=key.replace("cuda", "device"),
                                         row_limit=rows)


# --------------------------------------------------------------------------- sweeps

def add_sweep_args(p, *, torch_device_flag: str) -> None:
    """The sweep, precision, torch.compile, MFU and JSON flags both benchmarks take."""
    p.add_argument("--batches", default=None, help="comma list of batch sizes to sweep "
                   "(e.g. 64,512,2048; overrides --batch), run in the order given.")
    p.add_argument("--dtype", default="float32", help="float32, bfloat16, or a comma list "
                   "to sweep: jgan's networks compute in it (jgan.precision, float32 "
                   "parameters), torch's forward passes and losses run under autocast.")
    p.add_argument("--torch-compile", action="store_true", help="also time PyTorch's lean "
                   "step with its two forward + loss functions under torch.compile "
                   "(compiled in its first step, reported separately).")
    p.add_argument("--torch-compile-mode", default="default",
                   choices=("default", "reduce-overhead", "max-autotune",
                            "max-autotune-no-cudagraphs"),
                   help="torch.compile's mode (implies --torch-compile when not default).")
    p.add_argument("--skip-torch-eager", action="store_true",
                   help="no eager PyTorch step (with --torch-compile: only the compiled one).")
    p.add_argument("--peak-tflops", default=None, help="the device's dense peak TFLOP/s for "
                   "MFU, one figure or FLOAT32,BFLOAT16; default: benchmarks/mfu.py's table "
                   f"by device kind (none on a CPU). Torch's device is {torch_device_flag}'s.")
    p.add_argument("--json", default=None, metavar="PATH", help="append one JSON line per "
                   "runner and configuration (model, batch, dtype, side, mode, ms/step, "
                   "images/s, MFU, compile seconds, ...), written as each configuration ends.")
    p.add_argument("--max-seconds", type=float, default=0.0, help="sweep budget: a "
                   "configuration is not started when the time so far plus the longest one "
                   "so far would pass it (0: no limit).")
    p.add_argument("--round-seconds", type=float, default=0.0, help="time about this many "
                   "seconds per runner and round, at most --steps steps (0: --steps each).")
    p.add_argument("--profile-steps", type=int, default=0, help="after timing, profile this "
                   "many steps of each runner (torch.profiler; on CUDA its CUPTI trace shows "
                   "XLA's kernels too) and print the costliest kernels; with --json also "
                   "written to PATH.profile.txt.")


def finish_sweep_args(p, args) -> None:
    """Parses the comma lists: `args.batches`, `args.dtypes`, `args.peak_by_dtype`."""
    try:
        args.batches = ([int(b) for b in args.batches.split(",") if b.strip()]
                        if args.batches else [args.batch])
    except ValueError:
        p.error(f"--batches={args.batches!r} is not a comma list of integers.")
    if not args.batches or min(args.batches) < 1:
        p.error("--batches needs positive batch sizes.")
    args.dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    bad = [d for d in args.dtypes if d not in TORCH_DTYPES]
    if bad or not args.dtypes:
        p.error(f"--dtype: {bad or args.dtype!r} not in {TORCH_DTYPES}.")
    args.peak_by_dtype = None
    if args.peak_tflops:
        try:
            vals = [float(v) for v in args.peak_tflops.split(",")]
        except ValueError:
            vals = []
        if len(vals) not in (1, 2):
            p.error("--peak-tflops is one number or FLOAT32,BFLOAT16.")
        args.peak_by_dtype = dict(zip(TORCH_DTYPES, vals * 2 if len(vals) == 1 else vals))
    if args.torch_compile_mode != "default":
        args.torch_compile = True
    args.batch = args.batches[0]
    args.dtype = args.dtypes[0]


def jax_env_for(torch_device: str, skip_torch: bool) -> None:
    """Before JAX is imported: with PyTorch on the same GPU, JAX must not preallocate
    75% of its memory (XLA_PYTHON_CLIENT_PREALLOCATE=false unless set)."""
    import os
    if torch_device == "cuda" and not skip_torch:
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def torch_runner_specs(args) -> list[tuple[str, dict]]:
    """`[(name, TorchRunner kwargs)]`: "torch" (eager), "torch-lean", "torch-compile"
    (or "torch-compile-MODE"), as the flags ask."""
    if args.skip_torch:
        return []
    specs = []
    if not args.skip_torch_eager:
        specs.append(("torch", {}))
        if args.torch_lean:
            specs.append(("torch-lean", {"lean": True}))
    if args.torch_compile:
        mode = args.torch_compile_mode
        specs.append(("torch-compile" + ("" if mode == "default" else f"-{mode}"),
                      {"compile_mode": mode}))
    return specs


def run_sweep(args, run_config, *, model: str, torch_device: str) -> list[dict]:
    """Runs `run_config(cfg, torch_runner_specs) -> (runners, medians, stats, flops)` for
    every batch (outer) and dtype (inner) of `args`, writes each configuration's rows to
    `--json` as it ends and prints the sweep's table. In a sweep of several
    configurations an error (out of memory, a failed compile) is recorded as a row and
    the sweep goes on; a single configuration raises it."""
    import argparse
    import gc
    import sys
    import jax
    from mfu import peak_flops

    configs = [(b, d) for b in args.batches for d in args.dtypes]
    jax_kind = jax.devices()[0].device_kind
    torch_kind, torch_version = "cpu", None
    specs = torch_runner_specs(args)
    if specs:
        import torch
        torch_version = torch.__version__
        if torch_device == "cuda":
            torch_kind = torch.cuda.get_device_name(0)
    rows, start, longest = [], time.perf_counter(), 0.0
    for batch, dtype in configs:
        elapsed = time.perf_counter() - start
        common = {"model": model, "batch": batch, "dtype": dtype, "jax_device": jax_kind,
                  "torch_device": torch_kind if specs else None, "jax": jax.__version__,
                  "torch": torch_version}
        if args.max_seconds and elapsed + longest > args.max_seconds:
            print(f"\nskipped batch {batch} {dtype}: {elapsed:.0f} s so far + {longest:.0f} s "
                  f"> --max-seconds {args.max_seconds:.0f}")
            row = {**common, "error": "skipped: --max-seconds"}
            rows.append(row), append_json_lines(args.json, [row])
            continue
        cfg = argparse.Namespace(**{**vars(args), "batch": batch, "dtype": dtype})
        by_dtype = args.peak_by_dtype or {}
        cfg.peaks_now = {"jgan": peak_flops(jax_kind, dtype, by_dtype.get(dtype)),
                         "jgan-1dev": peak_flops(jax_kind, dtype, by_dtype.get(dtype))}
        for name, _ in specs:
            cfg.peaks_now[name] = peak_flops(torch_kind, dtype, by_dtype.get(dtype))
        t0 = time.perf_counter()
        try:
            runners, med, stats, flops = run_config(cfg, specs)
            sides = {n: ("jgan", "xla" if n == "jgan" else n) for n in runners
                     if n.startswith("jgan")}
            sides.update({n: ("torch", n[len("torch-"):] if "-" in n else "eager")
                          for n in runners if not n.startswith("jgan")})
            new = result_rows(runners, stats, common=common, sides=sides, flops=flops,
                              peaks=cfg.peaks_now)
            if args.profile_steps:
                try:   # a failed profile keeps the configuration's measurements
                    profile_runners(runners, args.profile_steps, torch_device,
                                    f"{model} batch {batch} {dtype}",
                                    (args.json + ".profile.txt") if args.json else None)
                except Exception as e:   # noqa: BLE001
                    print(f"profile failed: {type(e).__name__}: {e}", file=sys.stderr)
            del runners
        except Exception as e:   # noqa: BLE001
            if len(configs) == 1:
                raise
            print(f"\nbatch {batch} {dtype} failed: {type(e).__name__}: {e}", file=sys.stderr)
            new = [{**common, "error": f"{type(e).__name__}: {e}"[:2000]}]
        rows += new
        append_json_lines(args.json, new)
        gc.collect()
        if specs and torch_device == "cuda":
            import torch
            torch.cuda.empty_cache()
        longest = max(longest, time.perf_counter() - t0)
        print(f"(batch {batch} {dtype}: {time.perf_counter() - t0:.0f} s in all)")
    if len(configs) > 1 or args.json:
        print_sweep(rows)
    if args.json:
        print(f"wrote {len(rows)} rows to {args.json}")
    return rows


def profile_runners(runners: dict, steps: int, device: str, title: str,
                    path: str | None) -> None:
    """`kernel_profile` of every runner, appended to `path` (printed when None)."""
    for name, r in runners.items():
        if name.startswith("jgan") and device != "cuda":
            text = "(not on a CPU: torch.profiler sees only PyTorch's own operators there)"
        else:
            text = kernel_profile(r, steps, device)
        block = f"\n=== {title}: {name}, {steps} steps ===\n{text}"
        if path:
            with open(path, "a") as f:
                f.write(block)
        else:
            print(block)
    if path:
        print(f"kernel profiles of {title} appended to {path}")
