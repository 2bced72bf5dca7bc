"""Issue 29's style-based generator figure: StyleGAN's FID against a DCGAN whose
generator has about as many parameters, on the same data, and StyleGAN's FID against
its truncation psi.

    PYTHONPATH=. python benchmarks/style_figures.py                    # the configs' widths
    PYTHONPATH=. python benchmarks/style_figures.py --root=workdirs/style64 --width=64 \\
        --num_steps=5000 --checkpoint_every=1000                         # CPU-sized
    PYTHONPATH=. python benchmarks/style_figures.py --counts_only --width=64   # G/D sizes
    # smoke test (minutes on a CPU):
    PYTHONPATH=. python benchmarks/style_figures.py --root=/tmp/style --num_steps=20 \\
        --checkpoint_every=10 --width=8 --num_samples=16 --num_real=16 --eval_batch_size=16

Runs, each trained by `python -m experiments.main` in ROOT/NAME on Fashion-MNIST zero-padded
to 32 px (stylegan.py's default data) with the same batch size (--batch_size, default
stylegan.py's 32), --num_steps, --seed, a checkpoint (and sample grid) every
--checkpoint_every steps, every checkpoint kept (`checkpoints_kept=0`) and no FID during
training (`eval.metrics=""`); a run with eval.json is reused, one that stopped resumes:
  stylegan  `experiments/configs/stylegan.py` (its recipe as is); --width W > 0 sets
            channel_max and d_channel_max to W and scales channel_base and
            d_channel_base with it at the config's ratios (32768/512 and 16384/512), as
            small_data_figures.py scales its config's.
  dcgan     `experiments/configs/dcgan_fashion_mnist.py` (the gan family's DCGAN, its
            recipe as is) at `data.resolution=32, data.resize=pad`, with `model.width`
            chosen so that its generator's parameter count is nearest StyleGAN's
            generator's (counted from `game.init`'s shapes, widths 4, 8, ..., 512;
            --dcgan_width sets it instead). Both counts (G and D) are printed and saved.

For each run and each kept checkpoint (rows: run, step, wall_seconds, fid):
  fid           `jgan.runs.evaluation.evaluate_run(workdir, step=s, overrides={"metrics":
                "fid", "num_samples": N, "num_real": M, ...})`: N samples of the EMA
                generator (the run's seed) against the first M pictures of Fashion-MNIST's
                test split (the run's eval.reference_split, padded as training pads).
  wall_seconds  seconds from the training command's start to the checkpoint's directory
                being written (its mtime), compile time included; for a run reused without
                ROOT/NAME/train_timing.json, from config.json's mtime.
Truncation sweep (rows: psi, fid, sample_std): the final StyleGAN checkpoint scored as
evaluate_run scores it (same settings, latents and EMA generator) with its sampler drawn
at each psi of --psis (`jgan.sample.with_truncation`, the sampler `jgan.sample
--truncation` uses: w = w_avg + psi (w - w_avg)). sample_std is the samples' standard
deviation across samples, averaged over pixels: it shrinks as psi does (checked; a
warning otherwise). psi = 1 repeats the last curve point (the same number, checked).

Writes ROOT/style_figures.json (args, parameter counts, timings, rows, truncation rows;
rows already there for the same run, step, num_samples and num_real are reused), prints
markdown tables, and ROOT/style_figures.png: FID against step, FID against training wall
time (both runs), and FID against psi.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.experiment_runs import run, train_command  # noqa: E402

RUNS = {"stylegan": "stylegan.py", "dcgan": "dcgan_fashion_mnist.py"}
SHARED_FID_WEIGHTS = REPO.parent / "shared/data/fid/inception_v3_fid_pool3_pytorchfid_names.npz"
DCGAN_WIDTHS = tuple(range(4, 513, 4))


# ------------------------------------------------------------------------------ configs
def load_config(name: str):
    """`experiments/configs/{name}`'s default config."""
    return importlib.import_module(f"experiments.configs.{name.removesuffix('.py')}").get_config()


def with_overrides(config, overrides: dict):
    """`config` with the dotted `overrides` set (as `--config.KEY=VALUE` sets them)."""
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        section = config
        for p in parents:
            section = section[p]
        section[leaf] = value
    return config


def common_overrides(args) -> dict:
    return {"batch_size": args.batch_size, "seed": args.seed, "num_steps": args.num_steps,
            "checkpoint_every": args.checkpoint_every, "sample_every": args.checkpoint_every,
            "checkpoints_kept": 0, "eval.metrics": ""}


def stylegan_overrides(args) -> dict:
    o = common_overrides(args)
    if args.width:
        s = load_config(RUNS["stylegan"]).stylegan
        o.update({"stylegan.channel_max": args.width,
                  "stylegan.channel_base": args.width * s.channel_base // s.channel_max,
                  "stylegan.d_channel_max": args.width,
                  "stylegan.d_channel_base": args.width * s.d_channel_base // s.d_channel_max})
    return o


def dcgan_overrides(args, width: int) -> dict:
    return {**common_overrides(args), "data.resolution": 32, "data.resize": "pad",
            "model.width": width}


def param_counts(config) -> dict:
    """{"generator": n, "discriminator": n}: parameters of `game.init` (shapes only)."""
    import jax
    from jgan.families.network_names import DISCRIMINATOR, GENERATOR
    from jgan.runs.load import example_batch
    from jgan.train import builders
    game = builders.build_game(config)
    state = jax.eval_shape(game.init, jax.random.PRNGKey(0), example_batch(config))
    return {net: sum(int(np.prod(a.shape)) for a in
                     jax.tree.leaves(state.teams[game.team_of(net)].params[net]))
            for net in (GENERATOR, DISCRIMINATOR)}


def choose_sizes(args) -> dict:
    """The two runs' overrides and parameter counts; the DCGAN width whose generator's
    count is nearest StyleGAN's (or --dcgan_width). Prints both counts."""
    style = stylegan_overrides(args)
    style_counts = param_counts(with_overrides(load_config(RUNS["stylegan"]), style))
    counts = {}
    for w in ([args.dcgan_width] if args.dcgan_width else DCGAN_WIDTHS):
        counts[w] = param_counts(with_overrides(load_config(RUNS["dcgan"]), dcgan_overrides(args, w)))
        if counts[w]["generator"] > 2 * style_counts["generator"]:
            break   # the counts grow with the width: the rest are farther
    width = min(counts, key=lambda w: abs(counts[w]["generator"] - style_counts["generator"]))
    sizes = {"stylegan": {"overrides": style, "params": style_counts},
             "dcgan": {"overrides": dcgan_overrides(args, width), "params": counts[width],
                       "width": width,
                       "candidates": {w: c["generator"] for w, c in counts.items()}}}
    for name, s in sizes.items():
        p = s["params"]
        print(f"{name}: generator {p['generator']:,} parameters, discriminator "
              f"{p['discriminator']:,}{f' (model.width={width})' if name == 'dcgan' else ''}",
              flush=True)
    return sizes


# ------------------------------------------------------------------------------ training
def trained(args, root: Path, name: str, overrides: dict) -> tuple[Path, dict]:
    """(workdir, timing: {"start", "train_seconds"}); a finished run is reused."""
    workdir = root / name
    timing_file = workdir / "train_timing.json"
    if (workdir / "eval.json").exists():
        if timing_file.exists():
            return workdir, json.loads(timing_file.read_text())
        return workdir, {"start": (workdir / "config.json").stat().st_mtime,
                         "train_seconds": None}
    o = {k: v for k, v in overrides.items() if k != "num_steps"}
    command = train_command(RUNS[name], workdir, data_dir=args.data_dir,
                            num_steps=overrides["num_steps"], overrides=o)
    start = time.time()
    seconds = run(command)   # a resumed run: the time of this command only
    timing = {"start": start, "train_seconds": seconds}
    timing_file.write_text(json.dumps(timing))
    return workdir, timing


def checkpoint_steps(workdir: Path) -> list[int]:
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()
                  if p.is_dir() and p.name.isdigit())


# ---------------------------------------------------------------------------------- FID
def eval_overrides(args) -> dict:
    o = {"metrics": "fid", "num_samples": args.num_samples, "num_real": args.num_real,
         "batch_size": args.eval_batch_size, "data_dir": args.data_dir}
    if args.inception_weights:
        o["inception_weights"] = args.inception_weights
    return o


def checkpoint_fid(args, workdir: Path, step: int) -> float:
    from jgan.runs.evaluation import evaluate_run
    results = evaluate_run(workdir, step=step, overrides=eval_overrides(args))
    return float(results["metrics"]["fid"]["value"])


def truncation_sweep(args, workdir: Path, step: int) -> list[dict]:
    """FID and sample std at each psi of --psis: `evaluate_run`'s path (its settings,
    latents and EMA generator), the sampler drawn at psi (`with_truncation`)."""
    from jgan.eval import suite
    from jgan.runs.evaluation import sample_batches
    from jgan.runs.load import load_run
    from jgan.sample import with_truncation
    from jgan.train import builders
    config, game, state = load_run(workdir, step=step)
    if "eval" not in config:
        config.eval = suite.default_eval_config()
    settings = suite.EvalSettings.from_config(config, **eval_overrides(args))
    evaluator = suite.Evaluator(settings)   # the reference statistics once
    use_ema = config.game.ema_decay is not None
    base = builders.build_generator_inputs(config)
    sampling_state = builders.build_sampling_state(config, game, base, use_ema=use_ema)(state)
    rows = []
    for psi in args.psis:
        sampler = with_truncation(base, psi, config.family)
        seen = []

        def recorded(batches):   # the batches the evaluator takes, kept for their std
            for b in batches:
                seen.append(b)
                yield b
        t = time.time()
        batches = sample_batches(game, sampling_state, sampler, batch_size=settings.batch_size,
                                 seed=config.seed, use_ema=use_ema,
                                 generate=sampler.jitted_generate(game, use_ema=use_ema))
        fid = float(evaluator.evaluate(recorded(batches))["fid"]["value"])
        samples = np.concatenate(seen)[:args.num_samples]
        row = {"psi": psi, "step": step, "fid": fid,
               "sample_std": float(np.mean(np.std(samples, axis=0))),
               "sampler_psi": float(sampler.truncation_psi), "seconds": time.time() - t,
               "num_samples": args.num_samples, "num_real": args.num_real}
        print(json.dumps(row), flush=True)
        rows.append(row)
    by_psi = sorted(rows, key=lambda r: -r["psi"])
    stds = [r["sample_std"] for r in by_psi]
    if any(b >= a for a, b in zip(stds, stds[1:])):
        print(f"WARNING: sample std does not shrink with psi: {stds}", flush=True)
    return rows


# ---------------------------------------------------------------------------- outputs
def markdown(rows: list[dict], trunc: list[dict]) -> str:
    lines = ["| run | step | wall s | FID |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['step']} | {r['wall_seconds']:.0f} | {r['fid']:.2f} |")
    lines += ["", "| psi | FID | sample std |", "|---|---|---|"]
    for r in trunc:
        lines.append(f"| {r['psi']:g} | {r['fid']:.2f} | {r['sample_std']:.4f} |")
    return "\n".join(lines)


def plot(rows: list[dict], trunc: list[dict], sizes: dict, out: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_step, ax_wall, ax_psi) = plt.subplots(1, 3, figsize=(15, 4))
    for i, name in enumerate(RUNS):
        mine = sorted((r for r in rows if r["run"] == name), key=lambda r: r["step"])
        label = f"{name} (G {sizes[name]['params']['generator'] / 1e6:.2f}M)"
        ax_step.plot([r["step"] for r in mine], [r["fid"] for r in mine], "o-", color=f"C{i}",
                     label=label)
        ax_wall.plot([r["wall_seconds"] for r in mine], [r["fid"] for r in mine], "o-",
                     color=f"C{i}", label=label)
    trunc = sorted(trunc, key=lambda r: r["psi"])
    ax_psi.plot([r["psi"] for r in trunc], [r["fid"] for r in trunc], "o-", color="C0",
                label=f"stylegan, step {trunc[0]['step']}" if trunc else "stylegan")
    ax_step.set(xlabel="step", ylabel="FID (Fashion-MNIST test)", title="FID against step")
    ax_wall.set(xlabel="training wall time (s)", ylabel="FID", title="FID against wall time")
    ax_psi.set(xlabel="truncation psi", ylabel="FID", title="StyleGAN truncation sweep")
    for ax in (ax_step, ax_wall, ax_psi):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="workdirs/style")
    parser.add_argument("--data_dir", default="../shared/data/tfds")
    parser.add_argument("--num_steps", type=int, default=20_000, help="both runs' steps")
    parser.add_argument("--checkpoint_every", type=int, default=1000,
                        help="steps between checkpoints: the FID curve's points")
    parser.add_argument("--batch_size", type=int, default=32, help="both runs' batch size")
    parser.add_argument("--seed", type=int, default=0, help="both runs' seed")
    parser.add_argument("--width", type=int, default=0,
                        help="StyleGAN's max channels of G and D, bases scaled (0: the config's)")
    parser.add_argument("--dcgan_width", type=int, default=0,
                        help="DCGAN's model.width (0: the G parameter count nearest StyleGAN's)")
    parser.add_argument("--num_samples", type=int, default=10_000, help="samples per FID")
    parser.add_argument("--num_real", type=int, default=10_000, help="test pictures per FID")
    parser.add_argument("--eval_batch_size", type=int, default=200,
                        help="samples per generator and Inception call")
    parser.add_argument("--psis", default="1.0,0.9,0.8,0.7,0.5")
    parser.add_argument("--inception_weights",
                        default=str(SHARED_FID_WEIGHTS) if SHARED_FID_WEIGHTS.is_file() else "",
                        help="FID weights (default: ../shared/data/fid's, else the suite's)")
    parser.add_argument("--counts_only", action="store_true",
                        help="print the parameter counts and the DCGAN width, then stop")
    args = parser.parse_args()
    args.psis = [float(p) for p in args.psis.split(",") if p]

    sizes = choose_sizes(args)
    if args.counts_only:
        return
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    out = root / "style_figures.json"
    old = json.loads(out.read_text()) if out.exists() else {"rows": []}
    done = {(r["run"], r["step"], r.get("num_samples"), r.get("num_real")): r
            for r in old["rows"]}

    rows, timings, workdirs = [], {}, {}
    for name in RUNS:
        workdir, timing = trained(args, root, name, sizes[name]["overrides"])
        workdirs[name], timings[name] = workdir, timing
        for step in checkpoint_steps(workdir):
            row = done.get((name, step, args.num_samples, args.num_real))
            if row is None:
                t = time.time()
                fid = checkpoint_fid(args, workdir, step)
                written = (workdir / "checkpoints" / str(step)).stat().st_mtime
                row = {"run": name, "step": step, "wall_seconds": written - timing["start"],
                       "fid": fid, "fid_seconds": time.time() - t,
                       "num_samples": args.num_samples, "num_real": args.num_real}
                print(json.dumps(row), flush=True)
            rows.append(row)

    final = checkpoint_steps(workdirs["stylegan"])[-1]
    trunc = truncation_sweep(args, workdirs["stylegan"], final)
    last = next(r for r in rows if r["run"] == "stylegan" and r["step"] == final)
    for r in trunc:
        if r["psi"] == 1.0 and not np.isclose(r["fid"], last["fid"], rtol=1e-3):
            print(f"WARNING: FID at psi 1 ({r['fid']:.4f}) is not evaluate_run's at step "
                  f"{final} ({last['fid']:.4f})", flush=True)
    out.write_text(json.dumps({"args": vars(args), "sizes": sizes, "timings": timings,
                               "rows": rows, "truncation": trunc}, indent=2))
    png = root / "style_figures.png"
    plot(rows, trunc, sizes, png,
         f"Fashion-MNIST 32 px, batch {args.batch_size}, {args.num_steps} steps; FID of "
         f"{args.num_samples} samples vs {args.num_real} test pictures")
    print(markdown(rows, trunc))
    print("Training seconds: " + ", ".join(f"{k} {v['train_seconds']}" for k, v in timings.items()))
    print(f"Wrote {out} and {png}")


if __name__ == "__main__":
    main()
