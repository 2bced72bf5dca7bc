"""Issue 28's translation figures: pix2pix, CycleGAN and StarGAN scored by classifiers
that never saw a translation.

    PYTHONPATH=. python benchmarks/translation_figures.py pix2pix
    PYTHONPATH=. python benchmarks/translation_figures.py cyclegan
    PYTHONPATH=. python benchmarks/translation_figures.py stargan

Tables (each over the whole test split unless --num):
  pix2pix   edges -> Fashion-MNIST, GAN + 100 L1 against the same U-Net with L1 only
            (`pix2pix.py:edges2fashion,l1`): the Fashion classifier's accuracy on the
            outputs against the source item's label, and on the real targets; L1 to the
            target; the classifier's Frechet distance between outputs and targets; the
            mean gradient magnitude of the outputs over the targets' (blur is below 1).
  cyclegan  MNIST <-> textured MNIST: the label kept in each direction, by a classifier
            of the output's domain (`classifier_domains.py:mnist2textured,a|b`), the
            same classifier on that domain's real test images, the label after the
            round trip, and the cycle error |F(G(a)) - a|, |G(F(b)) - b|.
  stargan   each test image translated to each one-attribute change (red, green, blue,
            texture flipped, stroke flipped): the target attributes read back by
            independent classifiers (`classifier_domains.py:attributes,colour|
            background|stroke`), all three right at once, and the digit kept
            (`attributes,label`).

Every run is `python -m experiments.main` in ROOT/NAME (a rerun resumes a run that
stopped and reuses one that finished); the networks are the configs' at --width (16:
the CPU-sized figures) and --num_steps. Grids go to ROOT/p2p.png (edges, each run's
outputs, targets: a row each), ROOT/sg.png (StarGAN) and
ROOT/NAME_a2b.png, ROOT/NAME_b2a.png (CycleGAN: input, translation, the way back). The
table is printed and written to ROOT/TABLE.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.experiment_runs import run, train_command  # noqa: E402

# Each table's runs: name -> (config, family section whose widths --width sets).
RUNS = {"pix2pix": {"p2p_gan": ("pix2pix.py:edges2fashion", "pix2pix"),
                    "p2p_l1": ("pix2pix.py:edges2fashion,l1", "pix2pix")},
        "cyclegan": {"cg": ("cyclegan.py:mnist2textured", "cyclegan")},
        "stargan": {"sg": ("stargan.py", "stargan")}}
GRID_COLUMNS = 12
STEPS = {"pix2pix": 5_000, "cyclegan": 4_000, "stargan": 5_000}
# Classifiers: name -> (config, overrides, steps).
CLASSIFIERS = {
    "clf_fashion32": ("classifier_fashion_mnist.py:pad32", {"data.channels": 1}, 3_000),
    "clf_textured_a": ("classifier_domains.py:mnist2textured,a", {}, 1_000),
    "clf_textured_b": ("classifier_domains.py:mnist2textured,b", {}, 2_000),
    "clf_attr_label": ("classifier_domains.py:attributes,label", {}, 1_500),
    **{f"clf_attr_{t}": (f"classifier_domains.py:attributes,{t}", {}, 500)
       for t in ("colour", "background", "stroke")}}


def trained(root: Path, name: str, config: str, args, *, num_steps: int,
            overrides: dict | None = None) -> Path:
    workdir = root / name
    if not (workdir / "eval.json").exists():
        run(train_command(config, workdir, data_dir=args.data_dir, num_steps=num_steps,
                          overrides=overrides))
    return workdir


def classifier(root: Path, name: str, args):
    from jgan.eval.classifier import load_classifier
    config, overrides, steps = CLASSIFIERS[name]
    return load_classifier(trained(root, name, config, args, num_steps=steps,
                                   overrides=overrides))


def translation_run(root: Path, table: str, name: str, args):
    """(workdir, config, game, state) of run `name` of `table`, trained if missing."""
    from jgan.runs.load import load_run
    config, section = RUNS[table][name]
    widths = {f"{section}.generator_width": args.width,
              f"{section}.discriminator_width": args.width}
    workdir = trained(root, name, config, args, num_steps=args.num_steps or STEPS[table],
                      overrides=widths)
    return (workdir, *load_run(workdir))


def predict(clf, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits, features = clf.logits_and_features(np.clip(images, -1.0, 1.0))
    return logits.argmax(-1), features


def gradient_energy(images: np.ndarray) -> float:
    """Mean |finite-difference gradient| of images [N, H, W, C]: lower is blurrier."""
    dy = np.abs(np.diff(images, axis=1)).mean()
    dx = np.abs(np.diff(images, axis=2)).mean()
    return float(dx + dy) / 2.0


def pix2pix_table(args) -> list[dict]:
    from jgan.eval.classifier import classifier_frechet_distance
    from jgan.families import registry, translation
    from jgan.train import writers
    root, rows, shown = Path(args.root), [], []
    clf = classifier(root, "clf_fashion32", args)
    for name in RUNS["pix2pix"]:
        workdir, config, game, state = translation_run(root, "pix2pix", name, args)
        test = translation.held_out_domains(config, args.num, split="test")
        fn = registry.get_family(config.family).translate(config, game, "a2b")
        out = translation.batched(lambda x: {"y": fn(state, x)[0]}, test["image_a"], 500)["y"]
        shown.append(out[:GRID_COLUMNS])
        predicted, features = predict(clf, out)
        real_predicted, real_features = predict(clf, test["image_b"])
        accuracy = float(np.mean(predicted == test["label_b"]))
        real_accuracy = float(np.mean(real_predicted == test["label_b"]))
        rows.append({"run": name, "step": int(state.step), "num_examples": len(out),
                     "accuracy_outputs": accuracy, "accuracy_targets": real_accuracy,
                     "accuracy_ratio": accuracy / real_accuracy,
                     "l1": float(np.abs(out - test["image_b"]).mean()),
                     "classifier_fd": classifier_frechet_distance(features, real_features),
                     "gradient_ratio": gradient_energy(out) / gradient_energy(test["image_b"])})
    grid = np.concatenate([test["image_a"][:GRID_COLUMNS], *shown, test["image_b"][:GRID_COLUMNS]])
    writers.save_png(writers.titled(writers.image_grid(np.clip(grid, -1, 1), columns=GRID_COLUMNS),
                                    ["rows: edges", "GAN + 100 L1 (p2p_gan)", "L1 only (p2p_l1)", "targets"]), root / "p2p.png")
    return rows


def cyclegan_table(args) -> list[dict]:
    from jgan import sample
    from jgan.families import registry, translation
    root = Path(args.root)
    clfs = {d: classifier(root, f"clf_textured_{d}", args) for d in "ab"}
    workdir, config, game, state = translation_run(root, "cyclegan", "cg", args)
    family = registry.get_family(config.family)
    test = translation.held_out_domains(config, args.num, split="test")
    rows = []
    for direction, source, target in (("a2b", "a", "b"), ("b2a", "b", "a")):
        fn = family.translate(config, game, direction)
        out = translation.batched(lambda x: dict(zip(("there", "back"), fn(state, x))),
                                  test[f"image_{source}"], 500)
        labels = test[f"label_{source}"]
        real_predicted, _ = predict(clfs[target], test[f"image_{target}"])
        rows.append({
            "direction": direction, "step": int(state.step), "num_examples": len(labels),
            "label_kept": float(np.mean(predict(clfs[target], out["there"])[0] == labels)),
            "classifier_on_real_targets": float(np.mean(real_predicted
                                                        == test[f"label_{target}"])),
            "label_after_round_trip": float(np.mean(predict(clfs[source], out["back"])[0]
                                                    == labels)),
            "cycle_l1": float(np.abs(out["back"] - test[f"image_{source}"]).mean())})
        sample.translate(workdir, source="test", out=root / f"cg_{direction}.png", num=32,
                         direction=direction)
    return rows


def stargan_table(args) -> list[dict]:
    from jgan.data.classification_sources import attribute_target
    from jgan.data.derived_domains import ATTRIBUTE_NAMES
    from jgan.families import stargan, translation
    from jgan.train import writers
    root = Path(args.root)
    groups = ("colour", "background", "stroke")
    clfs = {g: classifier(root, f"clf_attr_{g}", args) for g in (*groups, "label")}
    workdir, config, game, state = translation_run(root, "stargan", "sg", args)
    test = stargan.held_out_examples(config, args.num)
    translate = stargan.translate_fn(config, game)
    rows = [{"change": "none (real test images)", "num_examples": len(test["label"]),
             **{g: float(np.mean(predict(clfs[g], test["image"])[0]
                                 == attribute_target(test["attributes"], g))) for g in groups},
             "digit_kept": float(np.mean(predict(clfs["label"], test["image"])[0]
                                         == test["label"]))}]
    for index, attribute in enumerate(ATTRIBUTE_NAMES):
        target = stargan.one_attribute_changed(test["attributes"], index)
        out = np.concatenate([np.asarray(translate(state, test["image"][i:i + 500],
                                                   target[i:i + 500])["images"])
                              for i in range(0, len(target), 500)])
        hits = {g: predict(clfs[g], out)[0] == attribute_target(target, g) for g in groups}
        rows.append({"change": attribute if index < 3 else f"{attribute} flipped",
                     "num_examples": len(out), **{g: float(hits[g].mean()) for g in groups},
                     "all_three": float(np.mean(np.all([hits[g] for g in groups], 0))),
                     "digit_kept": float(np.mean(predict(clfs["label"], out)[0]
                                                 == test["label"]))})
    changed = rows[1:]
    rows.append({"change": "mean over changes", "step": int(state.step),
                 **{k: float(np.mean([r[k] for r in changed]))
                    for k in (*groups, "all_three", "digit_kept")}})
    images, columns = stargan.sample_grids(config, game)(state)["translations"]
    writers.save_png(writers.image_grid(images, columns=columns), root / "sg.png")
    return rows


TABLES = {"pix2pix": pix2pix_table, "cyclegan": cyclegan_table, "stargan": stargan_table}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument("--root", default="workdirs/translation")
    parser.add_argument("--data_dir", default="../shared/data/tfds")
    parser.add_argument("--width", type=int, default=16,
                        help="generator and discriminator width of the runs")
    parser.add_argument("--num_steps", type=int, default=None,
                        help=f"the runs' steps (default {STEPS})")
    parser.add_argument("--num", type=int, default=0, help="test examples (0: all)")
    args = parser.parse_args()
    rows = TABLES[args.table](args)
    out = Path(args.root) / f"{args.table}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    for row in rows:
        print(json.dumps(row))
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
