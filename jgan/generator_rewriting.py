"""Rewriting one layer of a trained generator (Bau et al. 2020, "Rewriting a Deep
Generative Model"): copy, paste and context, the linear version.

A layer of the generator is a linear associative memory from keys k (a convolution's
input patch at a pixel, or a 1x1 layer's input feature vector) to values v = W k (its
output there, minus the bias). The edit:

  * statistics: C = E[k k^T] over the layer's keys on `num_stat_samples` generated
    samples (`key_covariance`, streaming with `jgan.rank_one_edit.accumulate_keys`);
  * copy: the layer's values in a box of one sample (`Box`, image pixels mapped to the
    layer's resolution: `layer_box`);
  * paste: the keys in a box of another sample, to map to the copied values (resized
    to the paste box at the layer's resolution);
  * context: boxes of other samples whose mean key gives the one direction
    d = C^{-1} mean(k_context) the weights may change along (the reference's
    `key_method="mean"`, davidbau/rewriting), Lambda fitted to the pasted keys and
    values by least squares: W1 = W0 + strength Lambda d^T
    (`jgan.rank_one_edit.rank_one_update(directions="mean", direction_keys=...)`).

Samples are those of `python -m jgan.sample --workdir=RUN --seed=SEED --num=NUM`:
sample i is the grid's cell i (row-major). Every weight set the generator keeps (the raw
params and their EMA) is edited with its own statistics, keys and values.

The layers that can be rewritten, and how their keys and values are read, are
`jgan.generator_layers`'s.

Layers are named by their path in the generator network's params, e.g.
`network/blocks_2/conv0` (ProGAN: level 2's first conv, after the upsampling), with or
without the network's name in front (`generator/network/blocks_2/conv0`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jgan.checkpoints import RunCheckpoints
from jgan.errors import UsageError
from jgan.runs import load_run
from jgan.train import writers
from jgan.train.builders import build_generator_inputs, build_sampling_state
from jgan.generator_layers import (Layer, capture, find_layer, key_covariance_of,
                                   keys_and_values, layer_params, survey_layers)
from jgan.rank_one_edit import kernel_to_matrix, matrix_to_kernel, rank_one_update


# Boxes ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Box:
    """Rows y0:y1 and columns x0:x1 (ends exclusive) of sample `sample`, in pixels."""
    sample: int
    y0: int
    x0: int
    y1: int
    x1: int

    def __str__(self) -> str:
        return f"{self.sample}:{self.y0},{self.x0},{self.y1},{self.x1}"


_BOX = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$")


def parse_box(text: str, flag: str, *, num_samples: int, image_size: int) -> Box:
    """`SAMPLE:y0,x0,y1,x1` -> `Box`, checked against the samples and the image size.

    Raises:
      UsageError: malformed, an empty box, outside the image, or a sample index out of
        range (names `--flag` and the value).
    """
    match = _BOX.match(text or "")
    if not match:
        raise UsageError(f"--{flag}={text}: expected SAMPLE:y0,x0,y1,x1 (pixels, ends "
                         "exclusive), e.g. 3:8,8,16,16.")
    box = Box(*(int(g) for g in match.groups()))
    if not 0 <= box.sample < num_samples:
        raise UsageError(f"--{flag}={text}: sample {box.sample} is not in [0, {num_samples}) "
                         "(--num_samples).")
    if not (0 <= box.y0 < box.y1 <= image_size and 0 <= box.x0 < box.x1 <= image_size):
        raise UsageError(f"--{flag}={text}: the box must satisfy 0 <= y0 < y1 <= "
                         f"{image_size} and 0 <= x0 < x1 <= {image_size} (the samples are "
                         f"{image_size} x {image_size} px).")
    return box


def parse_boxes(text: str, flag: str, **kwargs) -> list[Box]:
    """`S1:box;S2:box;...` -> `[Box]` (`parse_box`); at least one."""
    parts = [p for p in (text or "").split(";") if p.strip()]
    if not parts:
        raise UsageError(f"--{flag}: give at least one SAMPLE:y0,x0,y1,x1.")
    return [parse_box(p, flag, **kwargs) for p in parts]


def layer_box(box: Box, image_size: int, layer_size: int) -> tuple[int, int, int, int]:
    """The box at the layer's resolution: `(y0, x0, y1, x1)` covering every layer pixel
    the image box overlaps (at least one)."""
    s = layer_size / image_size
    y0, x0 = math.floor(box.y0 * s), math.floor(box.x0 * s)
    y1, x1 = max(math.ceil(box.y1 * s), y0 + 1), max(math.ceil(box.x1 * s), x0 + 1)
    return y0, x0, min(y1, layer_size), min(x1, layer_size)


@dataclasses.dataclass(frozen=True)
class EditRequest:
    """What to copy, where to paste it, the context, and how strongly."""
    copy: Box
    paste: Box
    context: tuple[Box, ...]
    strength: float = 1.0
    ridge: float = 1e-4


def edit_targets(keys: jax.Array, values: jax.Array, request: EditRequest,
                 image_size: int):
    """`(K* [M, Din], V* [M, Dout], K_context [Mc, Din])` from the samples' keys
    `[N, H, W, Din]` and values `[N, H, W, Dout]`: the paste box's keys, the copy box's
    values resized to the paste box, and the context boxes' keys."""
    size = keys.shape[1]

    def crop(a, box):
        y0, x0, y1, x1 = layer_box(box, image_size, size)
        return a[box.sample, y0:y1, x0:x1]

    pasted_keys = crop(keys, request.paste)
    copied = crop(values, request.copy)
    if copied.shape[:2] != pasted_keys.shape[:2]:
        copied = jax.image.resize(copied, pasted_keys.shape[:2] + copied.shape[2:], "linear")
    context = jnp.concatenate([crop(keys, b).reshape(-1, keys.shape[-1])
                               for b in request.context])
    return (pasted_keys.reshape(-1, keys.shape[-1]), copied.reshape(-1, values.shape[-1]),
            context)


# The edit -------------------------------------------------------------------------------

def rewrite_kernel(kernel: jax.Array, layer: Layer, covariance: jax.Array, keys: jax.Array,
                   values: jax.Array, context: jax.Array, *, strength: float,
                   ridge: float = 1e-4):
    """`(new kernel, EditDiagnostics)`: W1 = W0 + strength Lambda d^T on the effective
    weight W0 = `kernel_to_matrix(kernel * scale)` `[Dout, Din]`, d = C^{-1} mean(context)
    `[Din]`, written back as kernel + dW / scale (so strength 0 returns `kernel` exactly).
    keys `[M, Din]`, values `[M, Dout]`, context `[Mc, Din]`."""
    w0 = kernel_to_matrix(kernel * layer.scale)
    w1, diagnostics = rank_one_update(w0, covariance, keys, values, strength=strength,
                                      directions="mean", ridge=ridge, direction_keys=context)
    delta = matrix_to_kernel(w1 - w0, kernel.shape) / layer.scale
    return kernel + delta.astype(kernel.dtype), diagnostics


def _replace_in(tree: dict, path: Sequence[str], value) -> dict:
    if not path:
        return value
    return {**tree, path[0]: _replace_in(tree[path[0]], path[1:], value)}


def sample_inputs(sampler, *, num: int, seed: int) -> dict:
    """The inputs of `jgan.sample --seed=SEED --num=NUM`'s grid (sample i = cell i)."""
    return sampler.requested(jax.random.PRNGKey(seed), num)[0]


def weight_sets(game, state, network: str) -> list[bool]:
    """`use_ema` of every weight set the state keeps for `network`: [True, False] with
    EMA, else [False]."""
    team = game.team_of(network)
    return [True, False] if state.ema.get(team) else [False]


def rewrite_state(game, state, sampler, layer: Layer, request: EditRequest, *,
                  num_samples: int, seed: int, num_stat_samples: int, stat_batch: int,
                  sampling_state=None):
    """`(edited state, {"ema"|"raw": diagnostics dict})`: the layer of every weight set
    (`weight_sets`) rewritten with its own statistics, keys and values.

    `sampling_state`: the state to draw samples from (`build_sampling_state`'s, e.g.
    with standing batch-norm statistics); None: `state`. The edit goes into `state`.
    """
    network, team = sampler.network, game.team_of(sampler.network)
    drawing = state if sampling_state is None else sampling_state
    inputs = sample_inputs(sampler, num=num_samples, seed=seed)
    capture_jit = jax.jit(lambda s, i, e: capture(game, s, sampler, layer, i, use_ema=e),
                          static_argnums=2)
    new, report = state, {}
    for use_ema in weight_sets(game, state, network):
        params = state.params(use_ema=use_ema)[network]
        found = layer_params(params, layer)
        images, x, y = capture_jit(drawing, inputs, use_ema)
        keys, values = keys_and_values(layer, x, y, found.get("bias"))
        targets = edit_targets(keys, values, request, images.shape[1])
        covariance = key_covariance_of(game, drawing, sampler, layer,
                                       num_samples=num_stat_samples, batch_size=stat_batch,
                                       seed=seed, use_ema=use_ema)
        kernel, diagnostics = jax.jit(
            lambda k, c, ks, vs, cx: rewrite_kernel(k, layer, c, ks, vs, cx,
                                                    strength=request.strength,
                                                    ridge=request.ridge))(
            found["kernel"], covariance, *targets)
        edited = _replace_in(params, layer.path, {**found, "kernel": kernel})
        if use_ema:
            new = new.replace(ema={**new.ema, team: {**new.ema[team], network: edited}})
        else:
            new = game.with_updated(new, team, {network: edited})
        report["ema" if use_ema else "raw"] = {
            **{k: float(v) for k, v in diagnostics._asdict().items()},
            "pasted_keys": int(targets[0].shape[0]), "context_keys": int(targets[2].shape[0])}
    return new, report


# The edited workdir ---------------------------------------------------------------------

def check_out_dir(out: str | Path) -> Path:
    """`out` as a Path, refused when it exists and is not empty.

    Raises:
      UsageError: `out` holds something (names it).
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out={out}: exists and is not empty; name a new directory "
                         "(rewriting never overwrites a workdir).")
    return out


def write_workdir(source: str | Path, out: str | Path, state) -> Path:
    """A workdir `out` that `jgan.sample` and `jgan.evaluate` read as `source`: its
    config.json, and a checkpoint at `state`'s step holding `state` and the source
    checkpoint's input position (so training could resume from it)."""
    source, out = Path(source), check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / "config.json", out / "config.json")
    step = int(state.step)
    src = RunCheckpoints(source / "checkpoints")
    _, input_state = src.restore(step, state)
    src.close()
    dst = RunCheckpoints(out / "checkpoints")
    dst.save(step, state, input_state)
    dst.close()
    return out


def outline(images: np.ndarray, boxes: Sequence[tuple[int, Box]],
            colours: Sequence[Sequence[float]]) -> np.ndarray:
    """RGB copies of images `[N, R, R, C]` in [-1, 1] with the boxes' outlines drawn:
    `boxes` is `[(image index, Box)]`, `colours` one RGB in [-1, 1] per box."""
    images = np.asarray(images, np.float32)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    images = images.copy()
    for (i, b), colour in zip(boxes, colours):
        c = np.asarray(colour, np.float32)
        images[i, b.y0, b.x0:b.x1] = images[i, b.y1 - 1, b.x0:b.x1] = c
        images[i, b.y0:b.y1, b.x0] = images[i, b.y0:b.y1, b.x1 - 1] = c
    return images


def shown_samples(request: EditRequest, num_samples: int, *, extra: int = 4) -> list[int]:
    """The samples of the before/after grid: copy, paste, context, then `extra` others."""
    order = [request.copy.sample, request.paste.sample, *(b.sample for b in request.context)]
    shown = list(dict.fromkeys(order))
    others = [i for i in range(num_samples) if i not in shown][:extra]
    return shown + others


def generate(game, state, sampler, inputs: dict, *, use_ema: bool) -> np.ndarray:
    """The samples `[N, R, R, C]` in [-1, 1] of `inputs` (as `jgan.sample` draws them)."""
    return np.asarray(sampler.jitted_generate(game, use_ema=use_ema)(
        state, inputs, jax.random.PRNGKey(0)))


# The command ----------------------------------------------------------------------------

def rewrite_run(workdir: str | Path, out: str | Path, *, layer: str, copy: str, paste: str,
                context: str, strength: float = 1.0, num_samples: int = 16, seed: int = 0,
                num_stat_samples: int = 1000, stat_batch: int = 100,
                ridge: float = 1e-4) -> dict:
    """Edits `workdir`'s generator and writes it as the workdir `out` with rewrite.json
    and rewrite.png; returns rewrite.json's contents.

    Raises:
      UsageError: `out` is not empty, a flag's value cannot work (names the flag).
    """
    out = check_out_dir(out)
    if not 0.0 <= strength <= 1.0:
        raise UsageError(f"--strength={strength}: must lie in [0, 1].")
    if num_samples < 1 or num_stat_samples < 1 or stat_batch < 1:
        raise UsageError("--num_samples, --num_stat_samples and --stat_batch must be >= 1.")
    config, game, state = load_run(workdir)
    sampler = build_generator_inputs(config, required=True)
    use_ema = bool(weight_sets(game, state, sampler.network)[0])
    drawing = build_sampling_state(config, game, sampler, use_ema=use_ema)(state)
    found = find_layer(survey_layers(game, drawing, sampler, use_ema=use_ema), layer,
                       sampler.network)
    inputs = sample_inputs(sampler, num=num_samples, seed=seed)
    before = generate(game, drawing, sampler, inputs, use_ema=use_ema)
    boxes = dict(num_samples=num_samples, image_size=before.shape[1])
    request = EditRequest(copy=parse_box(copy, "copy", **boxes),
                          paste=parse_box(paste, "paste", **boxes),
                          context=tuple(parse_boxes(context, "context", **boxes)),
                          strength=float(strength), ridge=float(ridge))
    edited, diagnostics = rewrite_state(
        game, state, sampler, found, request, num_samples=num_samples, seed=seed,
        num_stat_samples=num_stat_samples, stat_batch=stat_batch, sampling_state=drawing)
    write_workdir(workdir, out, edited)
    redrawing = build_sampling_state(config, game, sampler, use_ema=use_ema)(edited)
    after = generate(game, redrawing, sampler, inputs, use_ema=use_ema)
    write_grid(out / "rewrite.png", before, after, request, found,
               title=f"{Path(workdir).name} -> {out.name}, step {int(state.step)}")
    result = {"workdir": str(workdir), "step": int(state.step), "layer": found.name,
              "layer_kind": found.kind, "copy": str(request.copy),
              "paste": str(request.paste), "context": [str(b) for b in request.context],
              "strength": request.strength, "ridge": request.ridge,
              "num_samples": num_samples, "seed": seed,
              "num_stat_samples": num_stat_samples, "diagnostics": diagnostics}
    (out / "rewrite.json").write_text(json.dumps(result, indent=2))
    return result


def write_grid(path: Path, before: np.ndarray, after: np.ndarray, request: EditRequest,
               layer: Layer, *, title: str) -> None:
    """The before/after PNG: the `shown_samples` of `before` `[N, R, R, C]` (copy box
    red, paste green, context blue) above the same samples of `after`."""
    shown = shown_samples(request, len(before))
    index = {s: i for i, s in enumerate(shown)}
    boxes = [(index[request.copy.sample], request.copy),
             (index[request.paste.sample], request.paste),
             *((index[b.sample], b) for b in request.context)]
    colours = [(1, -1, -1), (-1, 1, -1)] + [(-1, -1, 1)] * len(request.context)
    top = outline(before[shown], boxes, colours)
    bottom = outline(after[shown], [], [])
    grid = writers.image_grid(np.concatenate([top, bottom]), columns=len(shown))
    writers.save_png(writers.titled(grid, [title, f"{layer.name}, strength "
                                           f"{request.strength:g}", "before / after"]), path)
