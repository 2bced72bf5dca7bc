"""Issue 26's figures: the encoder families trained from their shipped configs and read
from their eval.json (`jgan.families.representation` and each family's own metrics).

    PYTHONPATH=. python benchmarks/encoder_adversary_figures.py probe --dataset=mnist
    PYTHONPATH=. python benchmarks/encoder_adversary_figures.py ablation --seeds=0,1,2
    PYTHONPATH=. python benchmarks/encoder_adversary_figures.py ablation --scale=small
    PYTHONPATH=. python benchmarks/encoder_adversary_figures.py clustering
    PYTHONPATH=. python benchmarks/encoder_adversary_figures.py vaegan --dataset=mnist

Tables:
  probe      BigBiGAN's linear probes (both readouts) and k-NN against BiGAN, the
             autoencoder, the VAE and the AAE with the same RevNet encoder on the same
             32-px inputs (`,revnet`), and the BigBiGAN encoder at its initial
             parameters (`jgan.probe --random_init`, same protocol).
  ablation   the BigBiGAN paper's ablation rows (Table 1) on `bigbigan.py:DATASET`, each
             over --seeds: FID-like columns from the classifier's feature distance of
             samples and of reconstructions, the classifier's label agreement on G(E(x))
             and the linear probe; each row's direction against the base row.
  clustering the AAE's unsupervised clustering with 16 and 30 categories on MNIST: test
             error after giving each cluster its majority label (paper: 9.55 %, 4.10 %).
  vaegan     the VAE-GAN against the VAE of the same encoder and decoder: FID of samples
             and of reconstructions (`--metrics`, default fid), with both sample grids.

Every run is `python -m experiments.main` in ROOT/TABLE/NAME (a rerun resumes a run that
stopped and reuses one that finished); `--num_steps` shortens every run (schedules scale
with it), so figures at fewer steps than the configs' are labelled with their steps.
A classifier for the classifier metrics is trained once per dataset at the runs' input
shape (32 px zero-padded for the BigBiGAN configs) unless --classifier_workdir is given.
The table is printed and written to ROOT/TABLE/summary.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from experiment_runs import run, train_command  # noqa: E402

# The BigBiGAN paper's ablations (Donahue & Simonyan 2019, Table 1), as config overrides,
# with the direction the paper found on each column relative to the base row.
ABLATIONS = {
    "base": {},
    "deterministic_E": {"bigan.stochastic": False},
    "uniform_prior": {"bigan.prior": "uniform"},
    "x_unary_only": {"bigan.unary_z": False},
    "z_unary_only": {"bigan.unary_x": False},
    "no_unaries_bigan": {"bigan.unary_x": False, "bigan.unary_z": False},
    "small_G": {"bigan.generator_width": "half"},   # of the scale's width
    "E_lr_x10": {"bigan.encoder_lr_multiplier": 10.0},
    "high_res_E": {"bigan.encoder_resolution": 64},
}
PAPER_DIRECTION = {   # (sample quality, linear probe) against base; None: no clear effect
    "deterministic_E": (None, "worse"), "uniform_prior": (None, None),
    "x_unary_only": ("worse", None), "z_unary_only": ("worse", "worse"),
    "no_unaries_bigan": ("worse", "worse"), "small_G": ("worse", "worse"),
    "E_lr_x10": (None, "better"), "high_res_E": (None, "better"),
}
PROBE_RUNS = {"bigbigan": "bigbigan.py:{d}{s}", "bigan": "bigan.py:{d}{s}",
              "autoencoder": "autoencoder.py:{d},revnet{s}", "vae": "vae.py:{d},revnet{s}",
              "aae": "aae.py:{d},revnet{s}"}
# The VAE's importance-weighted bound (5,000 samples per test image) is not these tables'.
NO_IWAE = {"vae.iwae_samples": 1, "vae.iwae_chunk": 1}
# --scale: the configs' own networks, or their CPU-sized `,small` variants; the generator
# width of each (small_G halves it).
SCALES = {"full": ("", 128), "small": (",small", 16)}


def train(config: str, workdir: Path, args, overrides: dict | None = None) -> dict:
    """eval.json of `config` trained in `workdir` (trained unless it is there)."""
    if not (workdir / "eval.json").exists():
        if args.inception_weights:
            overrides = {"eval.inception_weights": args.inception_weights, **(overrides or {})}
        seconds = run(train_command(config, workdir, data_dir=args.data_dir,
                                    num_steps=args.num_steps, overrides=overrides))
        (workdir / "seconds.txt").write_text(f"{seconds:.0f}\n")
    return json.loads((workdir / "eval.json").read_text())


def classifier(dataset: str, resolution: int, args) -> str:
    """A classifier of `dataset` at the runs' input shape (zero-padded to `resolution`)."""
    if args.classifier_workdir:
        return args.classifier_workdir
    workdir = Path(args.root) / f"classifier_{dataset}_{resolution}"
    if not (workdir / "eval.json").exists():
        run(train_command(f"classifier_{dataset}.py", workdir, data_dir=args.data_dir,
                          overrides={"data.resolution": resolution, "data.resize": "pad"}))
    return str(workdir)


def probe_row(family: dict) -> dict:
    p = family["probe"]
    return {"linear": p["linear"]["top1"], "bn_crelu": p["linear_bn_crelu"]["top1"],
            "knn": p["knn_top1"], "feature_dim": p["feature_dim"]}


def probe_table(args) -> list[dict]:
    root, rows = Path(args.root) / "probe", []
    for name, config in PROBE_RUNS.items():
        workdir = root / f"{name}_{args.dataset}"
        result = train(config.format(d=args.dataset, s=SCALES[args.scale][0]), workdir, args,
                       {"seed": args.seeds[0], **(NO_IWAE if name == "vae" else {})})
        rows.append({"encoder": name, "step": result["step"], **probe_row(result["family_metrics"])})
        if name == "bigbigan":   # the same encoder at its initial parameters
            out = workdir / "probe_encoder_random_init.json"
            if not out.exists():
                run([sys.executable, "-m", "jgan.probe", f"--workdir={workdir}",
                     "--network=encoder", f"--data_dir={args.data_dir}", "--random_init",
                     f"--num_test={result['family_metrics']['probe']['num_test']}",
                     f"--out={out}"])
            r = json.loads(out.read_text())
            rows.append({"encoder": "random_init", "step": 0, "linear": r["linear"]["top1"],
                         "bn_crelu": r["linear_bn_crelu"]["top1"], "knn": r["knn_top1"],
                         "feature_dim": r["feature_dim"]})
    return rows


def ablation_table(args) -> list[dict]:
    root, rows = Path(args.root) / "ablation", []
    eval_overrides = {"eval.classifier_workdir": classifier(args.dataset, 32, args),
                      "eval.metrics": args.metrics, "eval.num_samples": args.eval_samples}
    suffix, generator_width = SCALES[args.scale]
    for name, overrides in ABLATIONS.items():
        if args.rows and name not in args.rows:
            continue
        overrides = {k: generator_width // 2 if v == "half" else v for k, v in overrides.items()}
        seeds = []
        for seed in args.seeds:
            result = train(f"bigbigan.py:{args.dataset}{suffix}", root / f"{name}_seed{seed}", args,
                           {"seed": seed, **eval_overrides, **overrides})
            family = result["family_metrics"]
            metric = args.metrics.split(",")[0]
            seeds.append({"samples": result["metrics"][metric]["value"],
                          "reconstructions": family["reconstructions"]["metrics"][metric]["value"],
                          "label_agreement": family["reconstructions"]["label_agreement"],
                          **probe_row(family)})
        rows.append({"row": name, "seeds": len(seeds), "steps": result["step"],
                     **{k: summarize([s[k] for s in seeds])
                        for k in ("samples", "reconstructions", "label_agreement", "linear",
                                  "bn_crelu", "knn")}})
    base = rows[0]
    if base["row"] != "base":   # directions need the base row
        return rows
    for row in rows[1:]:
        quality = "better" if row["samples"]["mean"] < base["samples"]["mean"] else "worse"
        probe = "better" if row["linear"]["mean"] > base["linear"]["mean"] else "worse"
        paper = PAPER_DIRECTION[row["row"]]
        row["direction"] = {"samples": quality, "probe": probe,
                            "paper_samples": paper[0], "paper_probe": paper[1]}
    return rows


def summarize(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values}


def clustering_table(args) -> list[dict]:
    rows = []
    for k, paper in ((16, 0.0955), (30, 0.0410)):
        result = train(f"aae.py:mnist,clusters{k}", Path(args.root) / "clustering" / f"clusters{k}",
                       args, {"seed": args.seeds[0]})
        f = result["family_metrics"]
        rows.append({"clusters": k, "step": result["step"], "test_error": f["cluster_test_error"],
                     "paper": paper, "clusters_used": f["clusters_used"],
                     "below_paper": f["cluster_test_error"] < paper})
    return rows


def vaegan_table(args) -> list[dict]:
    root, rows = Path(args.root) / "vaegan", []
    overrides = {"eval.metrics": args.metrics, "eval.num_samples": args.eval_samples,
                 "eval.num_real": args.eval_samples, "seed": args.seeds[0]}
    for name in ("vae", "vaegan"):
        extra = {f"{name}.eval_examples": args.eval_samples}
        if name == "vae":
            extra.update(NO_IWAE)
        result = train(f"{name}.py:{args.dataset}", root / f"{name}_{args.dataset}", args,
                       {**overrides, **extra})
        metric = args.metrics.split(",")[0]
        recon = result["family_metrics"]["reconstructions"]["metrics"][metric]["value"]
        rows.append({"model": name, "step": result["step"],
                     f"sample_{metric}": result["metrics"][metric]["value"],
                     f"reconstruction_{metric}": recon,
                     "grid": str(sorted((root / f"{name}_{args.dataset}" / "samples").glob(
                         "step_*.png"))[-1])})
    vae, vaegan = rows
    for key in (k for k in vae if k.startswith(("sample_", "reconstruction_"))):
        vaegan[f"{key}_ratio_to_vae"] = vaegan[key] / vae[key]
    return rows


TABLES = {"probe": probe_table, "ablation": ablation_table, "clustering": clustering_table,
          "vaegan": vaegan_table}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument("--dataset", default="fashion_mnist", choices=("mnist", "fashion_mnist"))
    parser.add_argument("--root", default="workdirs/encoder_adversaries")
    parser.add_argument("--data_dir", default="../shared/data/tfds")
    parser.add_argument("--num_steps", type=int, default=None, help="override the configs'")
    parser.add_argument("--scale", default="full", choices=sorted(SCALES),
                        help="probe, ablation: the configs' networks or their `,small` variants")
    parser.add_argument("--seeds", default="0,1,2", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--rows", default="", type=lambda s: [r for r in s.split(",") if r],
                        help="ablation: only these rows (e.g. to split the runs between "
                             "processes); default every row")
    parser.add_argument("--metrics", default=None,
                        help="eval.metrics (ablation: classifier_fd; vaegan: fid)")
    parser.add_argument("--eval_samples", type=int, default=10_000)
    parser.add_argument("--classifier_workdir", default="")
    parser.add_argument("--inception_weights",
                        default="../shared/data/fid/inception_v3_fid_pool3_pytorchfid_names.npz",
                        help="FID weights (the offline copy; '' downloads them)")
    args = parser.parse_args()
    if set(args.rows) - set(ABLATIONS):
        parser.error(f"--rows: unknown {sorted(set(args.rows) - set(ABLATIONS))}; "
                     f"the rows are {', '.join(ABLATIONS)}.")
    if args.metrics is None:
        args.metrics = "fid" if args.table == "vaegan" else "classifier_fd"
    rows = TABLES[args.table](args)
    out = Path(args.root) / args.table / "summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    for row in rows:
        print(json.dumps(row))
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
