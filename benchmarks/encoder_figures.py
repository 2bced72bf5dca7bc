"""The autoencoder's and the VAE's figures: test NLL by the importance-weighted bound
and linear-probe / k-NN accuracy of the encoder against a random encoder.

    python benchmarks/encoder_figures.py --data_dir=../shared/data/tfds
    python benchmarks/encoder_figures.py --num_steps=6000 --iwae_examples=500 ...

Each run is the shipped config (`experiments/configs/{autoencoder,vae}.py:DATASET`),
trained in a fresh workdir under --root with `python -m experiments.main` (a rerun
resumes a run that stopped); `--num_steps` shortens every run (the schedules scale with
it) and `--iwae_examples` bounds the test images of the VAE's evaluation (0: the whole
split; the bound keeps k = `vae.iwae_samples`, 5,000). The encoder of each run and the
same architecture at its initial parameters are then probed with `python -m
jgan.probe --network=encoder` (default protocol: logistic regression and k-NN on the
encoder's features, all train and test images). The figures come from each run's
eval.json and probe JSONs; the table is printed and written to ROOT/summary.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from experiment_runs import run, train_command  # noqa: E402

RUNS = ("vae:mnist", "vae:fashion_mnist", "autoencoder:mnist", "autoencoder:fashion_mnist")


def _train(family: str, dataset: str, workdir: Path, args) -> float:
    overrides = ({"vae.eval_examples": args.iwae_examples}
                 if family == "vae" and args.iwae_examples is not None else {})
    return run(train_command(f"{family}.py:{dataset}", workdir, data_dir=args.data_dir,
                             num_steps=args.num_steps, overrides=overrides))


def _probe(workdir: Path, random_init: bool, args) -> dict:
    out = workdir / ("probe_encoder_random_init.json" if random_init else "probe_encoder.json")
    if not out.exists():
        run([sys.executable, "-m", "jgan.probe", f"--workdir={workdir}", "--network=encoder",
             f"--data_dir={args.data_dir}", f"--out={out}"]
            + (["--random_init"] if random_init else []))
    return json.loads(out.read_text())


def _accuracies(result: dict) -> tuple[float, float]:
    return result["linear"]["top1"], result["knn_top1"]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=",".join(RUNS), help="family:dataset,...")
    parser.add_argument("--root", default="workdirs/benchmark_encoders")
    parser.add_argument("--data_dir", default="../shared/data/tfds")
    parser.add_argument("--num_steps", type=int, default=None, help="override the configs'")
    parser.add_argument("--iwae_examples", type=int, default=None,
                        help="test images of the VAE's bounds (default: the config's)")
    args = parser.parse_args()
    rows = []
    for spec in args.runs.split(","):
        family, dataset = spec.split(":")
        workdir = Path(args.root) / f"{family}_{dataset}"
        seconds = _train(family, dataset, workdir, args)
        final = json.loads((workdir / "eval.json").read_text())
        trained, random = _probe(workdir, False, args), _probe(workdir, True, args)
        rows.append({"family": family, "dataset": dataset, "train_and_eval_seconds": seconds,
                     "eval": final, "probe": trained, "probe_random_init": random})
        print(json.dumps(rows[-1]["eval"].get("final_metrics", {}), sort_keys=True), flush=True)
    print("\nfamily       dataset        steps   linear (trained / random)   "
          "k-NN (trained / random)   test NLL (IWAE k, images)")
    for row in rows:
        lin, knn = _accuracies(row["probe"])
        lin0, knn0 = _accuracies(row["probe_random_init"])
        family_eval = row["eval"].get("family_metrics", {})
        nll = family_eval.get("test_nll_iwae")
        nll_text = (f"{nll:.2f} (k={family_eval['iwae_samples']}, "
                    f"{family_eval['num_examples']})" if nll is not None else "-")
        print(f"{row['family']:12s} {row['dataset']:14s} {row['probe']['step']:6d}   "
              f"{100 * lin:6.2f} / {100 * lin0:6.2f}           {100 * knn:6.2f} / "
              f"{100 * knn0:6.2f}        {nll_text}")
    (Path(args.root) / "summary.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
