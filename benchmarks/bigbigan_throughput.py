"""Large-batch BigBiGAN: training-step throughput against the batch size, jgan against
the PyTorch reference of the same step (`bigbigan_torch_reference.py`) in the same run.

    PYTHONPATH=. python benchmarks/bigbigan_throughput.py --batch_sizes=256,512,1024,2048
    PYTHONPATH=. python benchmarks/bigbigan_throughput.py --no_torch   # jgan alone
    PYTHONPATH=. python benchmarks/bigbigan_throughput.py --scale=small --no-torch_compile

jgan's step is the trainer's (`benchmarks/step_time.time_steps`: `builders.build_step`
jitted with the state donated) for `bigbigan.py:mnist,large_batch` (`--scale=small`:
`mnist,small`) at each batch size,
on the devices JAX sees (the batch replicated: on one device, the whole step). The torch
reference runs in a subprocess per batch size, eager and with `torch.compile`. Printed:
milliseconds per step (median of --rounds rounds of --steps steps), images per second,
and the ratio of jgan's images/s to each torch mode's.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# --scale: the large-batch networks, or the CPU-sized ones of `,small` (the same step at
# the same batch sizes; what a 2-core CPU can time in minutes).
SCALES = {"full": "mnist,large_batch", "small": "mnist,small"}


def jgan_row(batch: int, args) -> dict:
    sys.path.insert(0, str(HERE))
    import jax
    from step_time import time_steps

    from experiments.configs import bigbigan
    config = bigbigan.get_config(SCALES[args.scale])
    config.batch_size = batch
    config.data.data_dir = args.data_dir
    result = time_steps(config, steps=args.steps, warmup=args.warmup, rounds=args.rounds)
    ms = statistics.median(result["ms_per_step"])
    return {"impl": "jgan", "mode": "jit", "batch": batch, "ms_per_step": ms,
            "images_per_s": 1000 * batch / ms, "compile_s": result["compile_s"],
            "devices": len(jax.devices()), "platform": jax.devices()[0].platform}


def torch_rows(batch: int, args) -> list[dict]:
    command = [sys.executable, str(HERE / "bigbigan_torch_reference.py"),
               f"--batch_sizes={batch}", f"--steps={args.steps}", f"--rounds={args.rounds}",
               f"--warmup={args.warmup}", f"--config_arg={SCALES[args.scale]}"]
    command += [] if args.torch_compile else ["--no-compile"]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"the torch reference failed:\n{out.stderr[-3000:]}")
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    rows = [r for r in rows if "mode" in r]   # the first line holds the parameter counts
    return [{"impl": "torch", "mode": r["mode"], "batch": batch, "ms_per_step": r["ms_per_step"],
             "images_per_s": r["images_per_s"]} for r in rows]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_sizes", default="256,512,1024,2048",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data_dir", default="../shared/data/tfds")
    parser.add_argument("--scale", default="full", choices=sorted(SCALES))
    parser.add_argument("--no_torch", action="store_true")
    parser.add_argument("--torch_compile", action=argparse.BooleanOptionalAction, default=True,
                        help="also time torch.compile (2-3 min of compiling per batch on a CPU)")
    args = parser.parse_args()
    rows = []
    for batch in args.batch_sizes:
        jgan = jgan_row(batch, args)
        rows.append(jgan)
        print(json.dumps(jgan), flush=True)
        for row in ([] if args.no_torch else torch_rows(batch, args)):
            row["jgan_speedup"] = jgan["images_per_s"] / row["images_per_s"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{'impl':6s} {'mode':8s} {'batch':>6s} {'ms/step':>10s} {'images/s':>10s} "
          f"{'jgan x':>7s}")
    for r in rows:
        speedup = f"{r['jgan_speedup']:.2f}" if "jgan_speedup" in r else ""
        print(f"{r['impl']:6s} {r['mode']:8s} {r['batch']:6d} {r['ms_per_step']:10.1f} "
              f"{r['images_per_s']:10.1f} {speedup:>7s}")


if __name__ == "__main__":
    main()
