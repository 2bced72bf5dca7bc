"""Evaluates a run's latest checkpoint (or `--step`'s) and writes the results as JSON.

    python -m jgan.evaluate --workdir=DIR --metrics=fid,kid,pr
    python -m jgan.evaluate --workdir=DIR --metrics=fid --step=2000   # a kept checkpoint
    python -m jgan.evaluate --workdir=DIR --config=experiments/configs/dcgan_mnist.py

A 2-D mixture run is scored as its eval.json was: modes and high-quality share by the
PacGAN protocol (no `--metrics`). Otherwise the metrics and their settings come from the run's own config (`eval` section), from
`--config` (a config file whose `eval` section replaces the run's), and then from the
flags, in that order. Samples come from the EMA generator when the run keeps one
(`--no_ema` for the raw weights), with standing batch-norm statistics when the run's
`eval.standing_stats` or `--standing_stats` asks for them. Conditional and InfoGAN runs
scored by a classifier (`--classifier_workdir`) also get their family's metrics. Over
several processes (`--coordinator_address`, `--num_processes`, `--process_id`; see
`jgan.distributed`) every process computes and process 0 writes. The
output (default `DIR/eval_step_STEP.json`) holds each metric's numbers and protocol.
See `jgan.eval.suite` for the metric names.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
from absl import flags, logging
from ml_collections import config_flags

from jgan import cli, distributed
from jgan.errors import UsageError
from jgan.eval import suite
from jgan.runs import evaluate_run
from jgan.families import evaluation as family_eval

_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's workdir.")
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Optional config file whose `eval` section replaces the run's.")
_METRICS = flags.DEFINE_string("metrics", None, f"Comma-separated, of {', '.join(suite.METRICS)}.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", None, "Generated images.")
_NUM_REAL = flags.DEFINE_integer("num_real", None, "Real images of the reference split.")
_SPLIT = flags.DEFINE_string("split", None, "Reference split (e.g. test, train).")
_RESIZE = flags.DEFINE_enum("resize_method", None, ["pil_bicubic", "tf_bilinear"],
                            "Inception resize.")
_WEIGHTS = flags.DEFINE_string("inception_weights", None, "Inception weights file.")
_CLASSIFIER = flags.DEFINE_string("classifier_workdir", None, "A trained classifier run.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir of the reference data.")
_REFERENCE_ROOT = flags.DEFINE_string(
    "reference_root", None, "Image-folder runs: the folder of real images (default: the "
    "run's eval.reference_root; '' = its training folder data.root).")
_OUT = flags.DEFINE_string("out", None, "Output JSON (default WORKDIR/eval_step_STEP.json).")
_NO_EMA = flags.DEFINE_bool("no_ema", False, "Use the raw generator even if EMA weights exist.")
_SEED = flags.DEFINE_integer("seed", None, "Seed of the latents (default: the run's seed, "
                              "which reproduces the numbers logged in training).")
_BATCH = flags.DEFINE_integer("batch_size", None, "Images per generator / feature call.")
_STEP = flags.DEFINE_integer("step", None, "The checkpoint's step (default: the latest; "
                             "earlier ones are kept with the run's checkpoints_kept).")
_STANDING = flags.DEFINE_integer(
    "standing_stats", None, "Batches of standing batch-norm statistics for the generator "
    "(0 = its running averages; default: the run's eval.standing_stats).")


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    if not _WORKDIR.value:
        raise UsageError("--workdir is required.")
    distributed.initialize_from_flags()  # every process computes; process 0 writes
    overrides = {name: flag.value for name, flag in (
        ("metrics", _METRICS), ("num_samples", _NUM_SAMPLES), ("num_real", _NUM_REAL),
        ("split", _SPLIT), ("resize_method", _RESIZE), ("inception_weights", _WEIGHTS),
        ("classifier_workdir", _CLASSIFIER), ("data_dir", _DATA_DIR), ("batch_size", _BATCH),
        ("reference_root", _REFERENCE_ROOT))
        if flag.value is not None}
    eval_config = _CONFIG.value.eval if _CONFIG.value is not None else None
    result = evaluate_run(_WORKDIR.value, eval_config=eval_config, overrides=overrides,
                          seed=_SEED.value, use_ema=not _NO_EMA.value,
                          standing_stats=_STANDING.value, step=_STEP.value)
    if jax.process_index() != 0:
        return
    out = Path(_OUT.value or Path(_WORKDIR.value) / f"eval_step_{result['step']}.json")
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({**{k: result[k] for k in ("modes", "high_quality") if k in result},
                      **suite.scalar_summary(result.get("metrics", {})),
                      **family_eval.summary(result.get("family_metrics"))}, indent=2))
    print(f"Wrote {out}")


if __name__ == "__main__":
    cli.run(main)
