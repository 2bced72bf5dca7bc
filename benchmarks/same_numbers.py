"""Proves that a refactor changed no numbers: every shipped config's small variant gives
the same metrics.jsonl and eval.json in two trees, and the new code continues a
checkpoint of the old code exactly as a straight run.

record: `python -m experiments.main` (cwd and PYTHONPATH = --tree) for mixture.py
ring/grid x every game, the TFDS configs, image_folder (generated PNGs), conditional.py
family x dataset (skipped without the dataset in --data_dir; scored by the classifier
run in the same OUT) and the classifiers, into OUT/<slug>; with --half, each GAN
variant also to half its steps (a log, call and checkpoint step) into OUT/<slug>-half.
compare: metrics.jsonl line by line and eval.json (less IGNORED_EVAL_KEYS), exactly.
resume: FROM/<slug>-half copied to OUT/<slug>-resumed, the recorded command rerun in
--tree, the result compared with the straight run FROM/<slug> (or --b/<slug>).

  git worktree add /tmp/base 54be8df
  python benchmarks/same_numbers.py record --tree=/tmp/base --out=/tmp/same_numbers/base --half
  python benchmarks/same_numbers.py record --tree=. --out=/tmp/same_numbers/new
  python benchmarks/same_numbers.py compare --a=/tmp/same_numbers/base --b=/tmp/same_numbers/new
  python benchmarks/same_numbers.py resume --tree=. --from=/tmp/same_numbers/base \
      --out=/tmp/same_numbers/resumed
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = lambda tree: {**os.environ, "PYTHONPATH": str(tree)}  # imports the tree's jgan
# Paths in eval.json (each tree scores with the classifier run in its own OUT). eval.json
# holds no wall-clock timings; a key that is one would be listed here.
IGNORED_EVAL_KEYS = ("classifier_workdir",)
# data.kind -> the TFDS dataset it reads from --data_dir (None: data.name).
TFDS_KINDS = {"tfds": None, "stacked_mnist": "mnist"}
# The classifier that scores a conditional dataset: (data.name, data.channels) -> config.
CLASSIFIERS = {("mnist", 1): ("classifier_mnist", "runlocal"),
               ("fashion_mnist", 1): ("classifier_fashion_mnist", "runlocal"),
               ("fashion_mnist", 3): ("classifier_fashion_mnist", "runlocal,pad32")}
# Run inside the tree: where jgan comes from, the config choices, and the settings of
# the configs named on stdin.
TREE_INFO = """
import importlib, json, sys
import jgan
from experiments.configs import conditional, mixture
configs = {}
for name, arg in json.load(sys.stdin):
    c = importlib.import_module(f"experiments.configs.{name}").get_config(arg)
    configs[f"{name}:{arg}"] = dict(task=c.get("task", "gan"), family=c.get("family", "gan"),
        kind=c.data.kind, dataset=c.data.name, channels=c.data.channels, num_steps=c.num_steps,
        intervals=[c.log_every, c.checkpoint_every, c.get("steps_per_call", 1)])
print(json.dumps(dict(jgan=jgan.__file__, games=mixture.GAMES, families=conditional.FAMILIES,
                      datasets=list(conditional.DATASETS), configs=configs)))
"""


def tree_info(tree: Path, configs=()) -> dict:
    """TREE_INFO's answer, after checking that `tree`'s own jgan is the one imported."""
    out = subprocess.run([sys.executable, "-c", TREE_INFO], cwd=tree, env=ENV(tree),
                         input=json.dumps(list(configs)), capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"reading the configs of {tree} failed:\n{out.stderr[-3000:]}")
    info = json.loads(out.stdout.splitlines()[-1])
    if not Path(info["jgan"]).resolve().is_relative_to(tree):
        sys.exit(f"PYTHONPATH={tree} imports jgan from {info['jgan']}, not from the tree.")
    return info


def candidates(info: dict) -> list[tuple[str, str]]:
    """Every shipped config's small variant, as (config name, argument)."""
    out = [("classifier_mnist", "runlocal"), ("classifier_fashion_mnist", "runlocal"),
           ("classifier_fashion_mnist", "runlocal,pad32")]
    out += [("mixture", f"{m},{g},runlocal") for m in ("ring", "grid") for g in info["games"]]
    out += [(name, "runlocal") for name in ("dcgan_mnist", "wgan_gp_mnist", "sngan_mnist",
                                            "dcgan_fashion_mnist", "dcgan_stacked_mnist",
                                            "image_folder")]
    for family in info["families"]:
        for dataset in info["datasets"]:
            for option in ("", ",augmented") if family == "infogan" else ("",):
                out.append(("conditional", f"{family},{dataset}{option},runlocal"))
    return out


def make_image_folder(root: Path, n: int = 12) -> Path:
    """tests/test_experiments.py's folder of random PNGs of mixed sizes."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    sizes = [(100, 100), (120, 80), (64, 200), (50, 50)]
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)).save(root / f"car_{i}.png")
    return root


def slug(name: str, arg: str) -> str:
    return "-".join([name, *arg.split(",")])


def variant(name: str, arg: str, c: dict, out: Path, data_dir: Path) -> dict | None:
    """One variant's command-line arguments and step counts; None if its data is absent."""
    args = [f"--config=experiments/configs/{name}.py:{arg}", "--config.progress_bar=False"]
    if c["kind"] in TFDS_KINDS:
        tfds_name = TFDS_KINDS[c["kind"]] or c["dataset"]
        if not (data_dir / tfds_name).is_dir():
            print(f"skipped {slug(name, arg)}: no {tfds_name} in {data_dir}")
            return None
        args.append(f"--config.data.data_dir={data_dir}")
    if c["kind"] == "image_folder":
        args.append(f"--config.data.root={make_image_folder(out / '_image_folder')}")
    unit = math.lcm(*c["intervals"])  # half lands on a log, call and checkpoint step
    # A classifier's cosine schedule depends on num_steps: it cannot resume to more.
    half = c["num_steps"] // 2 // unit * unit if c["task"] == "gan" else 0
    needs = CLASSIFIERS.get((c["dataset"], c["channels"])) if c["family"] != "gan" else None
    if needs:  # scored at half and at the end by the classifier run in the same OUT;
        # the first 100 test images hold >= 2 of every class (the first 60 of
        # Fashion-MNIST do not, and a per-class distance needs 2)
        needs = slug(*needs)
        args += ["--config.eval.metrics=classifier_fd", "--config.eval.num_samples=40",
                 "--config.eval.num_real=100", f"--config.eval.every={half}",
                 f"--config.eval.classifier_workdir={out / needs}"]
    return dict(args=args, num_steps=c["num_steps"], half=half, needs=needs)


def plan(tree: Path, out: Path, data_dir: Path, only: str) -> dict:
    """{slug: variant} for the variants matching `only`, plus the classifiers they need."""
    configs = tree_info(tree, candidates(tree_info(tree)))["configs"]
    variants = {slug(*k.split(":")): variant(*k.split(":"), c, out, data_dir)
                for k, c in configs.items()}
    variants = {s: v for s, v in variants.items() if v is not None}
    chosen = {s for s in variants if re.search(only, s)}
    chosen |= {variants[s]["needs"] for s in chosen if variants[s]["needs"]}
    return {s: v for s, v in variants.items() if s in chosen}


def run(tree: Path, args: list[str], workdir: Path, log_dir: Path) -> dict:
    """Runs experiments.main in `tree` into `workdir`; its return code and wall time."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{workdir.name}.log"
    start = time.perf_counter()
    with log.open("w") as f:
        rc = subprocess.run([sys.executable, "-m", "experiments.main", *args,
                             f"--workdir={workdir}"], cwd=tree, env=ENV(tree),
                            stdout=f, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    status = "ok" if rc == 0 else f"FAILED (rc {rc}), log {log}:\n" + "".join(
        log.read_text().splitlines(keepends=True)[-15:])
    print(f"{workdir.name:64s} {seconds:7.1f} s  {status}", flush=True)
    return {"rc": rc, "seconds": round(seconds, 1)}


def in_waves(jobs: int, variants: dict, task) -> None:
    """task(slug, variant) for every variant, the classifiers first, `jobs` at a time."""
    needed = {v["needs"] for v in variants.values()}
    for wave in ([s for s in variants if s in needed], [s for s in variants if s not in needed]):
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(lambda s: task(s, variants[s]), wave))


def record(args) -> None:
    tree, out = args.tree.resolve(), args.out.resolve()
    variants = plan(tree, out, args.data_dir.resolve(), args.only)

    def task(name, v):
        shutil.rmtree(out / name, ignore_errors=True)
        v.update(run(tree, v["args"], out / name, out / "_logs"))
        if args.half and v["half"]:
            shutil.rmtree(out / f"{name}-half", ignore_errors=True)
            half_args = [*v["args"], f"--config.num_steps={v['half']}"]
            v["half_run"] = run(tree, half_args, out / f"{name}-half", out / "_logs")
        elif args.half:
            print(f"{name}-half: not run (a classifier, or no boundary below half the steps)")
    in_waves(args.jobs, variants, task)
    (out / "record.json").write_text(json.dumps({"tree": str(tree), "variants": variants},
                                                indent=2))
    failed = [s for s, v in variants.items() if v["rc"] or v.get("half_run", {}).get("rc")]
    print(f"{len(variants)} variants recorded in {out}; failed: {failed or 'none'}")


def first_difference(a, b, path: str = ""):
    """(path, a's value, b's value) where two JSON values first differ, or None. Exact:
    floats must be equal (NaN equals NaN), and of the same type."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return path + k, a.get(k, "<missing>"), b.get(k, "<missing>")
            if found := first_difference(a[k], b[k], f"{path}{k}."):
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next(filter(None, (first_difference(x, y, f"{path}{i}.")
                                  for i, (x, y) in enumerate(zip(a, b)))), None)
    nans = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return None if type(a) is type(b) and (a == b or nans) else (path.rstrip("."), a, b)


def without_ignored(value):
    if isinstance(value, dict):
        return {k: without_ignored(v) for k, v in value.items() if k not in IGNORED_EVAL_KEYS}
    return [without_ignored(v) for v in value] if isinstance(value, list) else value


def compare_metrics(a: Path, b: Path) -> tuple[int, str | None]:
    """Lines of a's metrics.jsonl, and where b's first differs (None: identical)."""
    read = lambda d: [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    lines_a, lines_b = read(a), read(b)
    for x, y in zip(lines_a, lines_b):
        if found := first_difference(x, y):
            return len(lines_a), f"step {x.get('step')}: {found[0]} {found[1]!r} != {found[2]!r}"
    if len(lines_a) != len(lines_b):
        return len(lines_a), f"{len(lines_a)} != {len(lines_b)} lines"
    return len(lines_a), None


def compare_pairs(pairs: list[tuple[str, Path, Path]]) -> bool:
    """Prints the table for (label, run a, run b) pairs; whether all are identical."""
    print(f"\n{'variant':64s} {'metrics identical':18s} {'eval identical':15s} first difference")
    all_same = True
    for label, a, b in pairs:
        if not ((a / "eval.json").is_file() and (b / "eval.json").is_file()):
            print(f"{label:64s} {'-':18s} {'-':15s} no finished run in {a} or {b}")
            all_same = False
            continue
        lines, metrics_diff = compare_metrics(a, b)
        found = first_difference(*(without_ignored(json.loads((d / "eval.json").read_text()))
                                   for d in (a, b)))
        eval_diff = found and f"eval.json {found[0]}: {found[1]!r} != {found[2]!r}"
        yes_no = lambda diff: "no" if diff else "yes"
        print(f"{label:64s} {f'{yes_no(metrics_diff)} ({lines} lines)':18s} "
              f"{yes_no(eval_diff):15s} {'; '.join(filter(None, (metrics_diff, eval_diff)))}")
        all_same &= not (metrics_diff or eval_diff)
    return all_same


def compare(args) -> None:
    runs = lambda d: {p.parent.name for p in d.glob("*/metrics.jsonl")
                      if re.search(args.only, p.parent.name)}
    in_a, in_b = runs(args.a), runs(args.b)
    for name in sorted(in_a ^ in_b):
        print(f"only in {args.a if name in in_a else args.b}: {name}")
    names = sorted(in_a & in_b)
    if not names:
        sys.exit(f"no run of {args.a} matching {args.only!r} is in {args.b} too.")
    sys.exit(0 if compare_pairs([(s, args.a / s, args.b / s) for s in names]) else 1)


def resume(args) -> None:
    tree, out, base = args.tree.resolve(), args.out.resolve(), getattr(args, "from").resolve()
    tree_info(tree)
    recorded = json.loads((base / "record.json").read_text())["variants"]
    variants = {s: v for s, v in recorded.items() if re.search(args.only, s)
                and v.get("half_run", {}).get("rc") == 0}

    def task(name, v):
        resumed = out / f"{name}-resumed"
        shutil.rmtree(resumed, ignore_errors=True)
        shutil.copytree(base / f"{name}-half", resumed)
        if run(tree, v["args"], resumed, out / "_logs")["rc"]:  # the recorded command
            (resumed / "eval.json").unlink(missing_ok=True)  # the half run's: not a result
    in_waves(args.jobs, variants, task)
    straight = (args.b or base).resolve()
    pairs = [(f"{s}-resumed", out / f"{s}-resumed", straight / s) for s in sorted(variants)]
    sys.exit(0 if compare_pairs(pairs) else 1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = p.add_subparsers(dest="mode", required=True)
    rec, cmp, res = (modes.add_parser(m) for m in ("record", "compare", "resume"))
    for m in (rec, cmp, res):
        m.add_argument("--only", default="", help="regex: the variants (slugs) to include.")
    for m in (rec, res):
        m.add_argument("--tree", type=Path, required=True, help="the jgan checkout to run.")
        m.add_argument("--out", type=Path, required=True, help="where the runs go.")
        m.add_argument("--jobs", type=int, default=1, help="runs at a time.")
    rec.add_argument("--data_dir", type=Path, default=REPO.parent / "shared/data/tfds")
    rec.add_argument("--half", action="store_true", help="also run to half the steps.")
    cmp.add_argument("--a", type=Path, required=True)
    cmp.add_argument("--b", type=Path, required=True)
    res.add_argument("--from", type=Path, required=True, help="a `record --half` OUT.")
    res.add_argument("--b", type=Path, default=None, help="straight runs (default: --from).")
    return p.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()
    {"record": record, "compare": compare, "resume": resume}[ARGS.mode](ARGS)
