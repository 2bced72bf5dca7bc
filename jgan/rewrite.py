"""Rewrites one layer of a trained generator (Bau et al. 2020): copy, paste, context.

    python -m jgan.rewrite --workdir=RUN --out=NEW --layer=network/blocks_2/conv0 \\
        --copy=3:4,4,12,12 --paste=5:16,16,24,24 --context="7:16,16,24,24;9:12,14,20,22"

Samples are `python -m jgan.sample --workdir=RUN --seed=SEED --num=NUM_SAMPLES`'s
(sample i is its grid's cell i, row-major); boxes are `SAMPLE:y0,x0,y1,x1` in that
image's pixels (ends exclusive), mapped to the layer's resolution. The layer's output
values in the `--copy` box become the goal of the keys (its inputs) in the `--paste`
box (resized to it); the weights change along the one direction
d = C^{-1} mean(keys in the `--context` boxes), C the layer's key statistics over
`--num_stat_samples` generated samples, by the least-squares Lambda of
W1 = W0 + strength Lambda d^T (`jgan.generator_rewriting`, `jgan.rank_one_edit`).
`--strength=0` leaves the weights exactly as they were. The raw and the EMA weights are
each edited with their own statistics.

`--layer` is the layer's path in the generator's params (with or without the network's
name, `generator/`); a wrong one is named with the list of the layers that can be
rewritten (ProGAN's convolutions and toRGB layers; not transposed, upsampling-fused or
modulated convolutions). `--out` must be new or empty; it gets the run's config.json
and a checkpoint at the run's step with the edited weights, which `jgan.sample` and
`jgan.evaluate` read as any run, `rewrite.json` (the request and the edit's
diagnostics per weight set) and `rewrite.png` (top row: the samples before, with the
copy box in red, the paste box in green and the context in blue; bottom row: after).
"""
from __future__ import annotations

import json

from absl import flags, logging

from jgan import cli
from jgan.errors import UsageError
from jgan.generator_rewriting import rewrite_run

_WORKDIR = flags.DEFINE_string("workdir", None, "The trained run's workdir.")
_OUT = flags.DEFINE_string("out", None, "The new workdir of the edited generator.")
_LAYER = flags.DEFINE_string("layer", None, "The layer's params path, e.g. "
                             "network/blocks_2/conv0.")
_COPY = flags.DEFINE_string("copy", None, "SAMPLE:y0,x0,y1,x1 whose values are copied.")
_PASTE = flags.DEFINE_string("paste", None, "SAMPLE:y0,x0,y1,x1 whose keys get them.")
_CONTEXT = flags.DEFINE_string("context", None, "S1:y0,x0,y1,x1;S2:...: the regions whose "
                               "mean key is the edit's direction.")
_STRENGTH = flags.DEFINE_float("strength", 1.0, "In [0, 1]: 0 leaves the weights unchanged.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 16, "Samples the indices refer to.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the samples (as jgan.sample's).")
_NUM_STAT = flags.DEFINE_integer("num_stat_samples", 1000,
                                 "Generated samples of the key statistics C.")
_STAT_BATCH = flags.DEFINE_integer("stat_batch", 100, "Samples per batch of the statistics.")
_RIDGE = flags.DEFINE_float("ridge", 1e-4, "Relative ridge added to C before solving.")


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    missing = [f"--{f.name}" for f in (_WORKDIR, _OUT, _LAYER, _COPY, _PASTE, _CONTEXT)
               if not f.value]
    if missing:
        raise UsageError(f"{', '.join(missing)}: required (python -m jgan.rewrite --help).")
    result = rewrite_run(_WORKDIR.value, _OUT.value, layer=_LAYER.value, copy=_COPY.value,
                         paste=_PASTE.value, context=_CONTEXT.value, strength=_STRENGTH.value,
                         num_samples=_NUM_SAMPLES.value, seed=_SEED.value,
                         num_stat_samples=_NUM_STAT.value, stat_batch=_STAT_BATCH.value,
                         ridge=_RIDGE.value)
    print(json.dumps(result["diagnostics"], indent=2))
    print(f"Wrote {_OUT.value} (rewrite.json, rewrite.png, checkpoints/)")


if __name__ == "__main__":
    cli.run(main)
