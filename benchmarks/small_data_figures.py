"""Issue 29's small-data figures: FID on 500 pictures with no augmentation, DiffAugment
and ADA against training steps, and the discriminator's overfitting.

    PYTHONPATH=. python benchmarks/small_data_figures.py                  # stylegan, 64 px
    PYTHONPATH=. python benchmarks/small_data_figures.py --model=progan
    PYTHONPATH=. python benchmarks/small_data_figures.py --root=workdirs/small32 \\
        --resolution=32 --width=64 --num_steps=5000 --checkpoint_every=1000   # CPU-sized
    # smoke test (minutes on a CPU):
    PYTHONPATH=. python benchmarks/small_data_figures.py --root=/tmp/sd --resolution=16 \\
        --num_train=16 --num_heldout=16 --num_steps=40 --checkpoint_every=20 --width=8 \\
        --num_samples=16

Folders (written once by `jgan.data.example_folder.write_example_folder` at
--resolution, checked against their manifest afterwards): ROOT/fashion{num_train}, the
training set (Fashion-MNIST train split; ROOT/fashion500 by default), and
ROOT/fashion_test{num_heldout}, held-out pictures of the test split (ROOT/fashion_test2000).

Runs, each `experiments/configs/image_folder.py:{model},small` in ROOT/NAME, trained by
`python -m experiments.main` keeping every checkpoint (`checkpoints_kept=0`; a rerun
resumes a run that stopped and reuses one that finished, i.e. has eval.json):
  none         `--config.{model}.augment.policy=` (D sees the pictures as they are)
  diffaugment  the config as is (colour, translation, cutout with p = 1)
  ada          `image_folder.py:{model},small,ada` (the same groups, p tuned by ADA)
with data.root = the training folder, data.resolution = --resolution, --num_steps
(progan: stage_steps = num_steps / levels), a checkpoint every --checkpoint_every steps,
the networks at --width (the maximum channels; channel bases scaled with it; 0: the
config's widths), and no FID during training (eval.metrics="").

For each run and each kept checkpoint:
  fid            FID of --num_samples samples (EMA generator, the run's seed, as
                 `jgan.runs.evaluation.evaluate_run` samples) against the held-out
                 folder, through `jgan.eval.suite.Evaluator` with
                 `reference_root=ROOT/fashion_test...` (all its pictures: eval.num_real
                 is larger). A ProGAN checkpoint of an earlier stage is scored on its
                 samples upscaled (nearest) to --resolution.
  d_acc_train    fraction of the training pictures with D(x) > 0 (raw logit; ProGAN's
                 critic: its raw output), the pictures unaugmented and prepared as
                 training prepares the folder (`_PrepareExample`: [-1, 1]); ProGAN's D
                 at the checkpoint's level and fade alpha, on `stage_reals`.
  d_acc_heldout  the same on as many held-out pictures
  d_mean_train, d_mean_heldout   D's mean output on each (the ADA paper's curves)
  augment_p      ADA's p in the checkpoint (the fixed p otherwise, 0 for none)
Rows go to ROOT/small_data.json (with timings; rows already there for the same run, step
and --num_samples are reused), a markdown table is printed, and ROOT/small_data.png
holds two panels: FID against step per run, D's accuracy on training (solid) and held-out
(dashed) pictures against step per run. Last, the goal's ratios at each run's best
step: FID(none) / FID(diffaugment) and FID(none) / FID(ada) (issue 29: >= 2).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.experiment_runs import run, train_command  # noqa: E402

RUNS = ("none", "diffaugment", "ada")
SHARED_FID_WEIGHTS = REPO.parent / "shared/data/fid/inception_v3_fid_pool3_pytorchfid_names.npz"


# ----------------------------------------------------------------------------- folders
def example_folder(out: Path, *, num: int, resolution: int, split: str, data_dir: str) -> Path:
    """`out`, written by `write_example_folder` if missing; checked against its manifest."""
    from jgan.data.example_folder import MANIFEST, write_example_folder
    manifest = out / MANIFEST
    if not manifest.exists():
        print(f"Writing {num} {split} pictures of {resolution} px to {out}", flush=True)
        write_example_folder(out, num=num, resolution=resolution, split=split,
                             data_dir=data_dir)
    saved = json.loads(manifest.read_text())
    if (saved["num"], saved["resolution"], saved["split"]) != (num, resolution, split):
        raise SystemExit(f"{out} holds {saved['num']} {saved['split']} pictures of "
                         f"{saved['resolution']} px, not {num} {split} of {resolution} px: "
                         "use another --root.")
    return out


# ------------------------------------------------------------------------------ training
def overrides(args, name: str, train_folder: Path) -> dict:
    """The `--config.KEY=VALUE` pairs of run `name`."""
    m = args.model
    o = {"data.root": train_folder.resolve(), "data.resolution": args.resolution,
         "checkpoint_every": args.checkpoint_every, "sample_every": args.checkpoint_every,
         "checkpoints_kept": 0, "eval.metrics": ""}
    if name == "none":
        o[f"{m}.augment.policy"] = ""   # absl: `--config.x=` sets the empty string
    if args.width and m == "stylegan":   # the small config's ratios: 4096/256, 2048/256
        o.update({"stylegan.channel_max": args.width, "stylegan.channel_base": 16 * args.width,
                  "stylegan.d_channel_max": args.width,
                  "stylegan.d_channel_base": 8 * args.width})
    elif args.width:                     # progan: 1024 / 128
        o.update({"progan.max_channels": args.width, "progan.channel_base": 8 * args.width})
    if m == "progan":   # the config's num_steps counts the levels of 64 px
        levels = int(round(math.log2(args.resolution))) - 1
        stage_steps = args.num_steps // levels if args.num_steps else 2_000
        o["progan.stage_steps"] = stage_steps
        o["num_steps"] = levels * stage_steps
    return o


def trained(args, root: Path, name: str, train_folder: Path) -> tuple[Path, float]:
    """(workdir, training seconds: 0 for a finished run reused)."""
    workdir = root / name
    if (workdir / "eval.json").exists():
        return workdir, 0.0
    config = f"image_folder.py:{args.model},small{',ada' if name == 'ada' else ''}"
    o = overrides(args, name, train_folder)
    num_steps = None if args.model == "progan" else args.num_steps
    command = train_command(config, workdir, data_dir=args.data_dir, num_steps=num_steps,
                            overrides=o)
    return workdir, run(command)


def checkpoint_steps(workdir: Path) -> list[int]:
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()
                  if p.is_dir() and p.name.isdigit())


# ---------------------------------------------------------------------- discriminator
def prepared(folder: Path, config, num: int) -> np.ndarray:
    """The first `num` pictures of `folder` as training reads them: float32 [-1, 1]."""
    from jgan.data.images import ImageFolderSource, _PrepareExample
    d = config.data
    source = ImageFolderSource(folder, resolution=d.resolution, channels=d.channels)
    if len(source) < num:
        raise SystemExit(f"{folder} has {len(source)} pictures; {num} are needed.")
    prepare = _PrepareExample(d.resolution, d.channels, d.get("resize", "bicubic"))
    return np.stack([prepare(source[i])["image"] for i in range(num)])


def discriminator_fn(config, game, step: int):
    """`(state, x [B, R, R, C] in [-1, 1]) -> D's raw outputs [B]`, jitted: ProGAN's at
    the step's level and fade alpha, on the reals as that stage shows them."""
    import jax
    from jgan.families.network_names import DISCRIMINATOR
    if config.family != "progan":
        return jax.jit(lambda state, x: game.apply(state, DISCRIMINATOR, x).reshape(-1))
    from jgan.core.stages import stage_at
    from jgan.families import progan
    from jgan.train import builders
    s, levels = config.progan, progan.num_levels(config)
    level = stage_at(builders.build_stages(config), step)[0]
    fade = 0 if level == 0 else int(round(s.fade_fraction * s.stage_steps))
    alpha = progan.fade_alpha(jax.numpy.asarray(step), start=level * s.stage_steps,
                              fade_steps=fade)

    def apply(state, x):
        x = progan.stage_reals(x, level=level, num_levels=levels, alpha=alpha)
        return game.apply(state, DISCRIMINATOR, x, alpha).reshape(-1)
    return jax.jit(apply)


def d_outputs(fn, state, images: np.ndarray, batch_size: int) -> np.ndarray:
    """D on `images` in training-size batches (minibatch-stddev groups as in training);
    the last batch is padded with the first images, whose outputs are dropped."""
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        n = len(x)
        if n < batch_size:
            x = np.concatenate([x, images[:batch_size - n]])
        out.append(np.asarray(fn(state, x))[:n])
    return np.concatenate(out)


# ---------------------------------------------------------------------------------- FID
class FidScorer:
    """FID of a checkpoint's samples against the held-out folder; one `Evaluator` (the
    folder's Inception statistics computed once, and cached on disk by the suite)."""

    def __init__(self, args, heldout: Path):
        self.args, self.heldout, self._evaluators = args, heldout, {}

    def __call__(self, config, game, state) -> float:
        from jgan.eval import suite
        from jgan.runs.evaluation import sample_batches
        from jgan.train import builders
        a = self.args
        settings = suite.EvalSettings.from_config(
            config, metrics="fid", reference_root=str(self.heldout.resolve()),
            num_samples=a.num_samples, inception_weights=a.inception_weights or None,
            batch_size=a.eval_batch_size)
        key = repr(settings)
        if key not in self._evaluators:
            self._evaluators[key] = suite.Evaluator(settings)
        use_ema = config.game.ema_decay is not None
        sampler = builders.build_generator_inputs(config)
        state = builders.build_sampling_state(config, game, sampler, use_ema=use_ema)(state)
        batches = sample_batches(game, state, sampler, batch_size=settings.batch_size,
                                 seed=config.seed, use_ema=use_ema)
        r = config.data.resolution

        def full_size(batches):   # a ProGAN stage below the last one: nearest upscaling
            for b in batches:
                f = r // b.shape[1]
                yield b if f == 1 else np.repeat(np.repeat(b, f, 1), f, 2)
        results = self._evaluators[key].evaluate(full_size(batches))
        return float(results["fid"]["value"])


# -------------------------------------------------------------------------------- rows
def checkpoint_row(args, name: str, workdir: Path, step: int, fid_scorer, train_folder: Path,
                   heldout: Path, cache: dict) -> dict:
    from jgan.runs.load import load_run
    config, game, state = load_run(workdir, step=step)
    row = {"run": name, "step": step}
    t = time.time()
    fn = discriminator_fn(config, game, step)
    if "train" not in cache:
        cache["train"] = prepared(train_folder, config, args.num_train)
        cache["heldout"] = prepared(heldout, config, args.num_train)
    for split in ("train", "heldout"):
        out = d_outputs(fn, state, cache[split], config.batch_size)
        row[f"d_acc_{split}"] = float(np.mean(out > 0))
        row[f"d_mean_{split}"] = float(np.mean(out))
    row["d_seconds"] = time.time() - t
    augment = state.extras.get("augment") if state.extras else None
    section = config[args.model].augment
    row["augment_p"] = (float(np.asarray(augment.probability)) if augment is not None
                        else float(section.probability) if section.policy.strip() else 0.0)
    t = time.time()
    row["fid"] = fid_scorer(config, game, state)
    row["fid_seconds"] = time.time() - t
    row["num_samples"] = args.num_samples
    return row


def markdown(rows: list[dict]) -> str:
    cols = ("run", "step", "fid", "d_acc_train", "d_acc_heldout", "d_mean_train",
            "d_mean_heldout", "augment_p")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c])
                                       for c in cols) + " |")
    return "\n".join(lines)


def best(rows: list[dict], name: str) -> dict | None:
    mine = [r for r in rows if r["run"] == name]
    return min(mine, key=lambda r: r["fid"]) if mine else None


def ratios(rows: list[dict]) -> dict:
    out, base = {}, best(rows, "none")
    for name in ("diffaugment", "ada"):
        other = best(rows, name)
        if base and other:
            out[f"fid_none/fid_{name}"] = {
                "value": base["fid"] / other["fid"], "none_best_step": base["step"],
                "none_fid": base["fid"], f"{name}_best_step": other["step"],
                f"{name}_fid": other["fid"], "goal_met": base["fid"] / other["fid"] >= 2.0}
    return out


def plot(rows: list[dict], names: list[str], out: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_fid, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for i, name in enumerate(names):
        mine = sorted((r for r in rows if r["run"] == name), key=lambda r: r["step"])
        steps, colour = [r["step"] for r in mine], f"C{i}"
        ax_fid.plot(steps, [r["fid"] for r in mine], "o-", color=colour, label=name)
        ax_acc.plot(steps, [r["d_acc_train"] for r in mine], "o-", color=colour,
                    label=f"{name}: training pictures")
        ax_acc.plot(steps, [r["d_acc_heldout"] for r in mine], "s--", color=colour,
                    label=f"{name}: held-out pictures")
    ax_fid.set(xlabel="step", ylabel="FID (held-out pictures)", title="FID")
    ax_acc.set(xlabel="step", ylabel="fraction with D(x) > 0", ylim=(-0.02, 1.02),
               title="D on real pictures (unaugmented)")
    for ax in (ax_fid, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("stylegan", "progan"), default="stylegan")
    parser.add_argument("--root", default="workdirs/small_data")
    parser.add_argument("--data_dir", default="../shared/data/tfds")
    parser.add_argument("--resolution", type=int, default=64, help="64; 32 for a CPU")
    parser.add_argument("--num_train", type=int, default=500)
    parser.add_argument("--num_heldout", type=int, default=2000)
    parser.add_argument("--runs", default=",".join(RUNS), help="a subset of none,diffaugment,ada")
    parser.add_argument("--num_steps", type=int, default=None,
                        help="the runs' steps (default: the config's, 10k)")
    parser.add_argument("--checkpoint_every", type=int, default=1000,
                        help="steps between checkpoints: the FID curve's points")
    parser.add_argument("--width", type=int, default=0,
                        help="max channels of G and D, bases scaled with it (0: the config's)")
    parser.add_argument("--num_samples", type=int, default=2000, help="samples per FID")
    parser.add_argument("--eval_batch_size", type=int, default=200,
                        help="samples per generator and Inception call")
    parser.add_argument("--inception_weights",
                        default=str(SHARED_FID_WEIGHTS) if SHARED_FID_WEIGHTS.is_file() else "",
                        help="FID weights (default: ../shared/data/fid's, else the suite's)")
    args = parser.parse_args()
    names = [n for n in args.runs.split(",") if n]
    if set(names) - set(RUNS):
        parser.error(f"--runs: {sorted(set(names) - set(RUNS))} not in {RUNS}")
    if args.num_heldout < args.num_train:
        parser.error("--num_heldout must be >= --num_train (D's accuracy compares as many)")

    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    train_folder = example_folder(root / f"fashion{args.num_train}", num=args.num_train,
                                  resolution=args.resolution, split="train",
                                  data_dir=args.data_dir)
    heldout = example_folder(root / f"fashion_test{args.num_heldout}", num=args.num_heldout,
                             resolution=args.resolution, split="test", data_dir=args.data_dir)
    out = root / "small_data.json"
    old = json.loads(out.read_text()) if out.exists() else {"rows": []}
    done = {(r["run"], r["step"], r.get("num_samples")): r for r in old["rows"]}

    rows, timings, fid_scorer, cache = [], {}, FidScorer(args, heldout), {}
    for name in names:
        workdir, seconds = trained(args, root, name, train_folder)
        timings[name] = {"train_seconds": seconds}
        for step in checkpoint_steps(workdir):
            row = done.get((name, step, args.num_samples))
            if row is None:
                row = checkpoint_row(args, name, workdir, step, fid_scorer, train_folder,
                                     heldout, cache)
                print(json.dumps(row), flush=True)
            rows.append(row)
    goal = ratios(rows)
    out.write_text(json.dumps({"args": vars(args), "timings": timings, "rows": rows,
                               "ratios": goal}, indent=2))
    plot(rows, names, root / "small_data.png",
         f"{args.model}, {args.num_train} pictures at {args.resolution} px"
         f"{f', width {args.width}' if args.width else ''}")
    print(markdown(rows))
    for key, r in goal.items():
        print(f"{key} at each run's best step: {r['value']:.2f} "
              f"({r['none_fid']:.2f} at step {r['none_best_step']} / "
              f"{[v for k, v in r.items() if k.endswith('_fid') and k != 'none_fid'][0]:.2f}); "
              f"goal >= 2: {'met' if r['goal_met'] else 'not met'}")
    print(f"Training seconds: {timings}")
    print(f"Wrote {out} and {root / 'small_data.png'}")


if __name__ == "__main__":
    main()
