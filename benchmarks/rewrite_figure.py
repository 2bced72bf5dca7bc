"""Issue 29's rewriting figure: one rank-one edit of a ProGAN trained here, how often it
shows in samples like its context, and how little it moves the rest.

    PYTHONPATH=. python benchmarks/rewrite_figure.py --root=ROOT

1. Trains (or reuses) ROOT/progan: `progan.py` (Fashion-MNIST, zero-padded to 32 px, 4
   stages) at `--stage_steps` per stage and `--width` channels at most.
2. The edit, chosen from `jgan.sample --seed=0 --num=64`'s samples by their pixels:
   "hollow the item out". Copy: the top-left corner box (R/4 x R/4, background) of the
   sample whose corner is darkest; paste: the centre box (R/4 x R/4) of the sample whose
   centre is brightest; context: the centre boxes of the next `--context` brightest.
   `python -m jgan.rewrite` applies it at `--layer` (16 px) into ROOT/edited.
3. Scored on `--num_test` new samples (seed 1), drawn by the original and the edited
   generator from the same latents:
   * context-like samples: those whose centre box is bright before (mean > 0 in
     [-1, 1]: an item there, as in the context); the edit *appears* in one when its
     centre's mean falls at least half way to the copied patch's mean;
   * the rest: the mean absolute pixel change outside the centre box (all samples);
   * FID of the unedited content: Inception FID against `--num_real` test images with
     the centre box blanked (set to -1) in real and generated images alike, before and
     after (and the plain FID of whole images, for reference).

Writes ROOT/rewrite_figure.json and prints a table; ROOT/edited/rewrite.png is the
before/after grid (copy box red, paste green, context blue). Issue 29's goals: the edit
visible in at least 80 % of context samples, the FID of unedited content changed by
less than 10 %.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.experiment_runs import run, train_command  # noqa: E402

SHARED_FID_WEIGHTS = REPO.parent / "shared/data/fid/inception_v3_fid_pool3_pytorchfid_names.npz"


def trained_progan(args) -> Path:
    workdir = Path(args.root) / "progan"
    if not (workdir / "eval.json").exists():
        w = args.width
        run(train_command("progan.py", workdir, data_dir=args.data_dir,
                          num_steps=4 * args.stage_steps,
                          overrides={"progan.stage_steps": args.stage_steps,
                                     "progan.max_channels": w, "progan.channel_base": 8 * w,
                                     "progan.latent_dim": w}))
    return workdir


def centre_box(r: int) -> tuple[int, int, int, int]:
    return (3 * r // 8, 3 * r // 8, 5 * r // 8, 5 * r // 8)


def corner_box(r: int) -> tuple[int, int, int, int]:
    return (0, 0, r // 4, r // 4)


def box_mean(images: np.ndarray, box) -> np.ndarray:
    """`[N]`: each image's mean over the box `(y0, x0, y1, x1)` and its channels."""
    y0, x0, y1, x1 = box
    return images[:, y0:y1, x0:x1].mean(axis=(1, 2, 3))


def box_text(sample: int, box) -> str:
    return f"{sample}:" + ",".join(str(v) for v in box)


def choose_edit(samples: np.ndarray, num_context: int) -> dict:
    """Copy/paste/context strings for `jgan.rewrite`, and the copied patch's mean."""
    r = samples.shape[1]
    centre, corner = box_mean(samples, centre_box(r)), box_mean(samples, corner_box(r))
    by_centre = [int(i) for i in np.argsort(-centre)]
    paste, context = by_centre[0], by_centre[1:1 + num_context]
    copy = next(int(i) for i in np.argsort(corner) if i not in by_centre[:1 + num_context])
    return {"copy": box_text(copy, corner_box(r)), "paste": box_text(paste, centre_box(r)),
            "context": ";".join(box_text(i, centre_box(r)) for i in context),
            "copy_mean": float(corner[copy])}


class Drawer:
    """Samples `[N, R, R, C]` in [-1, 1] of a run's (EMA) generator from given seeds."""

    def __init__(self, workdir: Path):
        from jgan.runs.load import load_run
        from jgan.train.builders import build_generator_inputs, build_sampling_state
        self.config, self.game, state = load_run(workdir)
        self.sampler = build_generator_inputs(self.config, required=True)
        self.use_ema = bool(state.ema.get(self.game.team_of(self.sampler.network)))
        self.state = build_sampling_state(self.config, self.game, self.sampler,
                                          use_ema=self.use_ema)(state)

    def draw(self, num: int, seed: int, batch: int = 250) -> np.ndarray:
        from jgan.generator_rewriting import generate, sample_inputs
        inputs = sample_inputs(self.sampler, num=num, seed=seed)
        import jax
        return np.concatenate([
            generate(self.game, self.state, self.sampler,
                     jax.tree.map(lambda a: a[i:i + batch], inputs), use_ema=self.use_ema)
            for i in range(0, num, batch)])


def blanked(images: np.ndarray, box) -> np.ndarray:
    y0, x0, y1, x1 = box
    out = np.array(images, np.float32)
    out[:, y0:y1, x0:x1] = -1.0
    return out


def real_test_images(config, num: int, data_dir: str) -> np.ndarray:
    """The first `num` test images at the run's shape, in [-1, 1]."""
    from jgan.data.images import tfds_source, to_run_shape
    source = tfds_source("fashion_mnist", split="test", data_dir=data_dir)
    d = config.data
    return np.stack([to_run_shape(np.asarray(source[i]["image"]), d.resolution, d.channels,
                                  d.resize) for i in range(num)]).astype(np.float32) / 127.5 - 1


def fids(before, after, real, box, weights_path) -> dict:
    from jgan.eval.features import InceptionFeatures
    from jgan.eval.fid import fid_of_features
    from jgan.eval.inception_weights import load_inception_weights
    inception = InceptionFeatures(load_inception_weights(weights_path), "pil_bicubic",
                                  batch_size=100)

    def pool3(images):
        return np.asarray(inception(np.asarray(images, np.float32))["pool3"])

    out = {}
    for name, mask in (("unedited_content", box), ("whole_images", None)):
        prep = (lambda x: blanked(x, mask)) if mask else (lambda x: x)
        real_f = pool3(prep(real))
        out[name] = {"before": fid_of_features(pool3(prep(before)), real_f),
                     "after": fid_of_features(pool3(prep(after)), real_f)}
        out[name]["relative_change"] = out[name]["after"] / out[name]["before"] - 1
    return out


def score(before: np.ndarray, after: np.ndarray, copy_mean: float, *, bright: float) -> dict:
    r = before.shape[1]
    box = centre_box(r)
    centre_before, centre_after = box_mean(before, box), box_mean(after, box)
    like = centre_before > bright
    appears = (centre_before - centre_after) >= 0.5 * (centre_before - copy_mean)
    outside = np.ones(before.shape[1:3], bool)
    outside[box[0]:box[2], box[1]:box[3]] = False
    return {"num_test": int(len(before)), "context_like": int(like.sum()),
            "edit_appears_in_context_like": float(appears[like].mean()) if like.any() else None,
            "edit_appears_elsewhere": float(appears[~like].mean()) if (~like).any() else None,
            "centre_mean_before": float(centre_before[like].mean()),
            "centre_mean_after": float(centre_after[like].mean()),
            "copy_mean": copy_mean,
            "mean_abs_change_outside_box": float(np.abs(after - before)[:, outside].mean()),
            "mean_abs_change_in_box_context_like": float(
                np.abs(after - before)[like][:, box[0]:box[2], box[1]:box[3]].mean())}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="workdirs/rewrite")
    p.add_argument("--data_dir", default="../shared/data/tfds")
    p.add_argument("--stage_steps", type=int, default=1500)
    p.add_argument("--width", type=int, default=64, help="ProGAN's max channels")
    p.add_argument("--layer", default="network/blocks_2/conv1")
    p.add_argument("--context", type=int, default=8, help="context samples")
    p.add_argument("--num_stat_samples", type=int, default=2000)
    p.add_argument("--num_test", type=int, default=2000)
    p.add_argument("--num_real", type=int, default=2000)
    p.add_argument("--bright", type=float, default=0.0)
    p.add_argument("--inception_weights", default=str(SHARED_FID_WEIGHTS))
    args = p.parse_args()
    from jgan.generator_rewriting import rewrite_run
    root = Path(args.root)
    workdir = trained_progan(args)
    original = Drawer(workdir)
    edit = choose_edit(original.draw(64, seed=0), args.context)
    edited_dir = root / "edited"
    if not (edited_dir / "rewrite.json").exists():
        rewrite_run(workdir, edited_dir, layer=args.layer, copy=edit["copy"],
                    paste=edit["paste"], context=edit["context"], num_samples=64, seed=0,
                    num_stat_samples=args.num_stat_samples)
    before = original.draw(args.num_test, seed=1)
    after = Drawer(edited_dir).draw(args.num_test, seed=1)
    result = {"args": vars(args), "edit": edit,
              "rewrite": json.loads((edited_dir / "rewrite.json").read_text()),
              "pixels": score(before, after, edit["copy_mean"], bright=args.bright),
              "fid": fids(before, after, real_test_images(original.config, args.num_real,
                                                          args.data_dir),
                          centre_box(before.shape[1]), args.inception_weights)}
    (root / "rewrite_figure.json").write_text(json.dumps(result, indent=2))
    px, fid = result["pixels"], result["fid"]
    print(f"| edit appears in context-like samples | {px['edit_appears_in_context_like']:.1%} "
          f"({px['context_like']} of {px['num_test']}) |")
    print(f"| edit appears in the other samples | {px['edit_appears_elsewhere']} |")
    print(f"| mean |change| outside the box | {px['mean_abs_change_outside_box']:.4f} |")
    for name, f in fid.items():
        print(f"| FID {name} | {f['before']:.2f} -> {f['after']:.2f} "
              f"({f['relative_change']:+.1%}) |")
    print(f"Grid: {edited_dir / 'rewrite.png'}")


if __name__ == "__main__":
    main()
