"""What the translation families (pix2pix, CycleGAN, ...) share: held-out examples of
both domains, and grids of images side by side."""
from __future__ import annotations

import ml_collections
import numpy as np

from jgan.core.game import Team
from jgan.data.domain_pairs import domain_pair
from jgan.data.in_memory import load_examples
from jgan.errors import require
from jgan.families.encoder_decoder import FirstExamples as First
from jgan.families.encoder_decoder import batched as batched_over
from jgan.optimizers import build_optimizer

__all__ = ["First", "as_model_range", "batched", "check_teams", "held_out_domains",
           "side_by_side_grid", "team"]


def batched(fn, x: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """`fn(x[i*b:(i+1)*b]) -> {name: [b, ...]}` over all of x, concatenated (one
    compilation: the last batch is padded; `encoder_decoder.batched`)."""
    return batched_over(lambda i, chunk: fn(chunk), x, batch_size)


def as_model_range(images: np.ndarray) -> np.ndarray:
    if images.dtype == np.uint8:  # as the pipeline: x / 127.5 - 1
        return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return images.astype(np.float32)


def held_out_domains(config: ml_collections.ConfigDict, num: int, *,
                     split: str | None = None) -> dict[str, np.ndarray]:
    """The first `num` records (0: all) of each domain of the run's task in `split`
    (None: `config.eval.reference_split`), as the training pipeline reads them.

    Returns:
      `{"image_a", "image_b": [N, R, R, C] float32 in [-1, 1], "label_a", "label_b":
      [N] int32}`; for a paired task row i of A and of B are a pair.
    """
    d = config.data
    pair = domain_pair(d.name, split=split or config.eval.reference_split,
                       data_dir=d.data_dir or None, root=d.root, resolution=d.resolution,
                       channels=d.channels, seed=config.seed)
    out = {}
    for key, source in (("a", pair.a), ("b", pair.b)):
        examples = load_examples(First(source, num), resolution=d.resolution,
                                 channels=d.channels, resize=d.resize)
        out[f"image_{key}"] = as_model_range(examples["image"])
        out[f"label_{key}"] = examples["label"]
    return out


def side_by_side_grid(rows: list[np.ndarray], columns: int) -> tuple[np.ndarray, int]:
    """Image rows `[N, H, W, C]` each (input, output, target, ...) as one grid: blocks of
    `columns` examples, one row of each kind per block.

    Returns:
      `(images [len(rows) * M, H, W, C], columns)`, M = N rounded down to a multiple of
      `columns` (at least one row).
    """
    n = min(len(r) for r in rows)
    columns = max(1, min(columns, n))
    m = max(columns, n // columns * columns)
    blocks = []
    for start in range(0, m, columns):
        blocks += [r[start:start + columns] for r in rows]
    return np.concatenate(blocks), columns


def team(config: ml_collections.ConfigDict, name: str, networks: dict, loss, prefix: str) -> Team:
    """Team `name` of a two-team translation game: `optimizer.<name>` over the run's
    steps, EMA weights (`game.ema_decay`) for the generator team only."""
    return Team(networks=networks, loss=loss, metrics_prefix=prefix,
                optimizer=build_optimizer(config.optimizer[name], config.num_steps),
                ema_decay=config.game.ema_decay if name == "generator" else None)


def check_teams(config: ml_collections.ConfigDict, family: str, teams: tuple[str, ...]) -> None:
    """One `optimizer.<team>` section per team, and the GAN-only `game` keys at their
    neutral values (a translation family would ignore them). Raises ConfigError."""
    require(sorted(config.optimizer) == sorted(teams), "optimizer",
            f"{family} has teams {teams}; the config's optimizer sections are "
            f"{sorted(config.optimizer)}.")
    g = config.game
    require(g.d_steps == 1 and g.gradient_penalty_weight == 0 and g.r1_gamma == 0, "game",
            f"d_steps, gradient_penalty_weight and r1_gamma are GAN keys {family} would "
            "ignore; leave them at 1, 0 and 0.")
