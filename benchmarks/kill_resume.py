"""Stops a run in every way a user's run can stop, resumes it, and checks it ends as if
it had not stopped: a table of ways x repeats, each byte-identical or not.

    python benchmarks/kill_resume.py                       # 10 repeats of each way
    python benchmarks/kill_resume.py --repeats=3 --ways=sigkill_random,sigint

The run is `experiments/configs/mixture.py:ring,non_saturating,runlocal` lengthened by
--num_steps with a checkpoint every --checkpoint_every steps (so that there is training
to interrupt between the start-up and the end), through `python -m experiments.main`.
An uninterrupted run is the reference. Each trial starts the same command in a fresh
workdir, stops it as its way says, reruns the same command to the end, and compares
`eval.json` and `metrics.jsonl` byte for byte with the reference's.

Ways:
  sigkill_random      SIGKILL at a uniformly random moment of the reference's training
                      (from shortly before its first metrics.jsonl line to its end)
  sigkill_checkpoint  SIGKILL while a checkpoint is being written (a temporary
                      directory under checkpoints/), at a random one of them
  sigkill_before_eval SIGKILL after the last checkpoint, before eval.json is written
  sigterm             SIGTERM at a random moment as above (the run checkpoints and
                      exits 143)
  sigint              SIGINT (Ctrl-C) at a random moment as above (checkpoints, exits 130)
  rerun_finished      the finished run's command again (on a copy of the reference)

A stop that lands before training starts or after the run finished still counts: the
rerun must then give the same files too. Prints one line per trial and the table.
"""
from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

CONFIG = "experiments/configs/mixture.py:ring,non_saturating,runlocal"
OUTPUTS = ("eval.json", "metrics.jsonl")
WAYS = ("sigkill_random", "sigkill_checkpoint", "sigkill_before_eval", "sigterm", "sigint",
        "rerun_finished")
POLL_SECONDS = 0.002


def _command(workdir: Path, args) -> list[str]:
    return [sys.executable, "-m", "experiments.main", f"--config={CONFIG}",
            f"--workdir={workdir}", f"--config.num_steps={args.num_steps}",
            f"--config.checkpoint_every={args.checkpoint_every}",
            f"--config.sample_every={args.checkpoint_every}", "--config.progress_bar=False"]


def _run_to_end(workdir: Path, args) -> None:
    subprocess.run(_command(workdir, args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _timed_reference(workdir: Path, args) -> tuple[float, float]:
    """Runs the reference; returns (seconds to its first logged line, seconds in all)."""
    start = time.monotonic()
    proc = subprocess.Popen(_command(workdir, args), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first_log = None
    while proc.poll() is None:
        if first_log is None and (workdir / "metrics.jsonl").exists():
            first_log = time.monotonic() - start
        time.sleep(POLL_SECONDS)
    if proc.returncode:
        raise SystemExit(f"the reference run failed (exit {proc.returncode}): run "
                         f"{' '.join(_command(workdir, args))} to see why.")
    duration = time.monotonic() - start
    return (duration if first_log is None else first_log), duration


def _writing_checkpoint(workdir: Path) -> bool:
    directory = workdir / "checkpoints"
    return directory.exists() and any("tmp" in p.name for p in directory.iterdir())


def _last_checkpoint_done(workdir: Path, num_steps: int) -> bool:
    final = workdir / "checkpoints" / str(num_steps)
    return final.is_dir() and not _writing_checkpoint(workdir)


def _wait_then_signal(proc, signum: int, ready, deadline: float) -> str:
    """Sends `signum` once `ready()` holds (or at `deadline`); says what it hit."""
    while proc.poll() is None:
        if ready() or time.monotonic() >= deadline:
            proc.send_signal(signum)
            return "hit"
        time.sleep(POLL_SECONDS)
    return "finished first"


def _stop(way: str, workdir: Path, args, window: tuple[float, float],
          rng: random.Random) -> str:
    proc = subprocess.Popen(_command(workdir, args), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    start = time.monotonic()
    duration = window[1]
    at = start + rng.uniform(0.9 * window[0], window[1])
    if way == "sigkill_checkpoint":
        # The k-th checkpoint write, k random: count the writes as they start.
        target, seen, writing = rng.randint(1, args.num_steps // args.checkpoint_every), 0, False
        def ready():
            nonlocal seen, writing
            now = _writing_checkpoint(workdir)
            if now and not writing:
                seen += 1
            writing = now
            return now and seen >= target
        how = _wait_then_signal(proc, signal.SIGKILL, ready, start + 10 * duration)
    elif way == "sigkill_before_eval":
        how = _wait_then_signal(
            proc, signal.SIGKILL,
            lambda: _last_checkpoint_done(workdir, args.num_steps)
            and not (workdir / "eval.json").exists(), start + 10 * duration)
    else:
        signum = {"sigkill_random": signal.SIGKILL, "sigterm": signal.SIGTERM,
                  "sigint": signal.SIGINT}[way]
        how = _wait_then_signal(proc, signum, lambda: time.monotonic() >= at, at)
    code = proc.wait()
    return f"{how}, exit {code}"


def _same(workdir: Path, reference: Path) -> bool:
    return all((workdir / name).read_bytes() == (reference / name).read_bytes()
               for name in OUTPUTS)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="workdirs/benchmark_kill_resume")
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--num_steps", type=int, default=200)
    parser.add_argument("--checkpoint_every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    reference = root / "reference"
    window = _timed_reference(reference, args)
    print(f"reference: {window[1]:.1f} s for {args.num_steps} steps, the first logged at "
          f"{window[0]:.1f} s", flush=True)
    rng = random.Random(args.seed)
    table = {}
    for way in args.ways.split(","):
        if way not in WAYS:
            raise SystemExit(f"--ways: {way!r} is not one of {WAYS}.")
        for i in range(args.repeats):
            workdir = root / f"{way}_{i}"
            if way == "rerun_finished":
                shutil.copytree(reference, workdir)
                stopped = "finished"
            else:
                stopped = _stop(way, workdir, args, window, rng)
            _run_to_end(workdir, args)
            same = _same(workdir, reference)
            table.setdefault(way, []).append(same)
            print(f"{way:20s} #{i}: {stopped:22s} -> {'identical' if same else 'DIFFERENT'}",
                  flush=True)
            if same:
                shutil.rmtree(workdir)
    print(f"\n{'way':20s} identical / trials")
    for way, results in table.items():
        print(f"{way:20s} {sum(results):2d} / {len(results)}")
    if not all(all(r) for r in table.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
