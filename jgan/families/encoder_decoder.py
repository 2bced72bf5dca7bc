"""What the autoencoder and VAE families share: their encoder and decoder, built from the
family's config section; the held-out examples they show and evaluate; the layout of a
reconstructions grid; batched evaluation over a split.

Networks (`jgan.models.autoencoder`), from `config.<family>.*`:

* `network="conv"`: `ConvEncoder` / `ConvDecoder` (images, resolution divisible by 4),
  `width` and `dense_hidden` set both.
* `network="mlp"`: `MLPEncoder` / `MLPDecoder` with hidden widths `hidden` (any data;
  the decoder's flat output is reshaped to the data's shape); `hidden=()` makes both
  linear (the linear-Gaussian VAE).
* `network="resnet"` or `"revnet"`: BigBiGAN's encoder, `jgan.models.residual_encoder.
  ResidualEncoder` with stages of widths `(width, 2 width, 4 width)`, `residual_blocks`
  blocks each and a head of `dense_hidden` units (0: none), before the `ConvDecoder` of
  "conv": the same encoder architecture as the bigan family's, so that their linear
  probes compare encoders trained by different objectives.

An encoder's `features` are what `jgan.families.representation` probes: the code (the
posterior mean of a VAE) for conv and mlp, the average-pooled trunk for resnet and
revnet (BigBiGAN's readout).

The families read these keys, not `config.model.*` (the GAN networks' section).

Held-out examples: for image data the first N of the split `eval.reference_split` (the
test split by default), as the training pipeline preprocesses them (float32 in
[-1, 1]); for 2-D mixtures N points drawn from the mixture with the fixed key
`PRNGKey(HELD_OUT_SEED)`, the same for every run.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan.core.game import Networks
from jgan.errors import require
from jgan.models.autoencoder import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from jgan.models.residual_encoder import ResidualEncoder
from jgan.sharding import to_host

ENCODER, DECODER = "encoder", "decoder"
RESIDUAL = ("resnet", "revnet")
NETWORKS = ("conv", "mlp") + RESIDUAL
HELD_OUT_SEED = 0
MIXTURE_HELD_OUT = 10_000  # mixture points evaluated when `eval_examples` is 0


def add_network_keys(section: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Adds the network keys (module docstring) to a family section, at their defaults."""
    section.network = "conv"         # conv (images) | mlp (any data)
    section.latent_dim = 32          # size of the code / of z
    section.width = 32               # conv: channels of the first convolution
    section.dense_hidden = 256       # conv: dense layer after / before the convolutions
    section.hidden = (128, 128, 128)  # mlp: hidden widths of encoder and decoder (): linear
    section.residual_blocks = 2      # resnet / revnet: blocks per stage of the encoder
    section.eval_examples = 0        # held-out examples evaluated (0: the whole split)
    section.eval_batch_size = 500    # examples per evaluation call
    return section


def data_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """The shape of one example: `(2,)` for mixtures, `(R, R, C)` for images."""
    d = config.data
    return (2,) if d.kind == "mixture" else (d.resolution, d.resolution, d.channels)


def validate_networks(config: ml_collections.ConfigDict, family: str,
                      data_kinds: tuple[str, ...], teams: tuple[str, ...] | None = None) -> None:
    """Checks the section's network keys, the data kind and the optimizer sections: one
    per team, `optimizer.<team>` (`teams`; None: the one team named after the family).

    Raises:
      ConfigError: names the key at fault.
    """
    s = config[family]
    require(config.data.kind in data_kinds, "data.kind",
            f"the {family} family takes {data_kinds}, got {config.data.kind!r}.")
    require(s.network in NETWORKS, f"{family}.network", f"{s.network!r} is not one of {NETWORKS}.")
    require(s.latent_dim >= 1, f"{family}.latent_dim", "must be >= 1.")
    require(s.width >= 1, f"{family}.width", "must be >= 1.")
    require(s.dense_hidden >= 0, f"{family}.dense_hidden", "must be >= 0.")
    require(all(w >= 1 for w in s.hidden), f"{family}.hidden",
            f"needs widths >= 1 (none: linear maps), got {tuple(s.hidden)}.")
    require(s.eval_examples >= 0, f"{family}.eval_examples", "must be >= 0 (0: all).")
    require(s.eval_batch_size >= 1, f"{family}.eval_batch_size", "must be >= 1.")
    require(s.residual_blocks >= 1, f"{family}.residual_blocks", "must be >= 1.")
    if s.network == "revnet":
        require(s.width % 2 == 0, f"{family}.width",
                f"reversible blocks split channels in halves: needs an even width, got {s.width}.")
    if s.network != "mlp":
        require(config.data.kind != "mixture", f"{family}.network",
                f"{s.network} takes images; 2-D mixture data needs network='mlp'.")
        require(config.data.resolution % 4 == 0, "data.resolution",
                f"the conv encoder halves it twice: needs a multiple of 4, got "
                f"{config.data.resolution}.")
    teams = (family,) if teams is None else tuple(teams)
    wrong = sorted(set(config.optimizer) ^ set(teams))
    has = (f"has one team, {teams[0]!r}, updated by optimizer.{teams[0]}" if len(teams) == 1
           else f"has teams {list(teams)}, each updated by optimizer.<team>")
    require(not wrong, f"optimizer.{wrong[0] if wrong else family}",
            f"the {family} family {has}; the config's optimizer sections are "
            f"{sorted(config.optimizer)}.")
    g = config.game
    require(g.d_steps == 1 and g.gradient_penalty_weight == 0 and g.r1_gamma == 0, "game",
            f"d_steps, gradient_penalty_weight and r1_gamma are GAN keys the {family} family "
            "would ignore; leave them at 1, 0 and 0.")


def build_networks(config: ml_collections.ConfigDict, family: str, *, variational: bool,
                   code_dim: int | None = None):
    """`(encoder, decoder)` modules from `config.<family>` (module docstring); the
    encoder's output has `code_dim` units (None: `latent_dim`)."""
    s = config[family]
    code_dim = s.latent_dim if code_dim is None else code_dim
    if s.network != "mlp":
        d = config.data
        decoder = ConvDecoder(resolution=d.resolution, channels=d.channels, width=s.width,
                              dense_hidden=s.dense_hidden)
        if s.network in RESIDUAL:
            return (ResidualEncoder(latent_dim=code_dim, widths=(s.width, 2 * s.width, 4 * s.width),
                                    blocks_per_stage=s.residual_blocks, block=s.network,
                                    stochastic=variational,
                                    head_hidden=(s.dense_hidden,) if s.dense_hidden else ()),
                    decoder)
        return (ConvEncoder(latent_dim=code_dim, resolution=d.resolution, width=s.width,
                            dense_hidden=s.dense_hidden, variational=variational), decoder)
    return (MLPEncoder(latent_dim=code_dim, hidden=tuple(s.hidden), variational=variational),
            MLPDecoder(hidden=tuple(s.hidden), output_dim=int(np.prod(data_shape(config)))))


def encoder_features(nets: Networks, x: jax.Array) -> jax.Array:
    """The encoder's linear-probe features `[B, D]` of x (module docstring)."""
    return nets(ENCODER, x, method="features")


def decode(nets: Networks, z: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """The decoder's output for z `[B, L]`, shaped `[B, *shape]` like the data."""
    out = nets(DECODER, z)
    return out.reshape((z.shape[0],) + tuple(shape))


class FirstExamples:
    """The first `n` records of a random-access source."""

    def __init__(self, source, n: int):
        self.source, self.n = source, min(n, len(source)) if n else len(source)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return self.source[index]


def held_out_examples(config: ml_collections.ConfigDict, num: int) -> np.ndarray:
    """`[N, *data_shape]` float32 held-out examples (module docstring); `num` = 0: the
    whole split (for mixtures, `MIXTURE_HELD_OUT` points)."""
    d = config.data
    if d.kind == "mixture":
        from jgan.data.mixtures import mixture_of
        points = mixture_of(config).sample(jax.random.PRNGKey(HELD_OUT_SEED),
                                           num or MIXTURE_HELD_OUT)
        return np.asarray(points, np.float32)
    return labelled_examples(config, num, split=config.eval.reference_split)[0]


def labelled_examples(config: ml_collections.ConfigDict, num: int, *,
                      split: str) -> tuple[np.ndarray, np.ndarray]:
    """`(images [N, R, R, C] float32 in [-1, 1], labels [N] int32)`: the first `num`
    examples (0: all) of the image dataset's `split`, as the training pipeline reads
    them."""
    from jgan.data.images import tfds_source
    from jgan.data.in_memory import load_examples
    d = config.data
    source = tfds_source(d.name, split=split, data_dir=d.data_dir or None)
    examples = load_examples(FirstExamples(source, num), resolution=d.resolution,
                             channels=d.channels, resize=d.resize)
    images = examples["image"]
    if images.dtype == np.uint8:  # as the pipeline: x / 127.5 - 1
        images = images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return np.clip(images, -1.0, 1.0), examples["label"]


def batched(fn, x: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """`fn(i, x[i*b:(i+1)*b]) -> {name: [b, ...]}` over all of x, concatenated.

    The last batch is padded to `batch_size` with copies of its first example (one
    compilation) and the padding dropped from the results.
    """
    out: dict[str, list] = {}
    for i, start in enumerate(range(0, len(x), batch_size)):
        chunk = x[start:start + batch_size]
        n = len(chunk)
        if n < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], batch_size - n, axis=0)])
        for name, value in to_host(fn(i, jnp.asarray(chunk))).items():
            out.setdefault(name, []).append(np.asarray(value)[:n])
    return {name: np.concatenate(values) for name, values in out.items()}


def reconstruction_grid(originals: np.ndarray, reconstructions: np.ndarray,
                        columns: int) -> tuple[np.ndarray, int]:
    """Originals and their reconstructions `[N, H, W, C]` as one grid: blocks of a row of
    `columns` originals above the row of their reconstructions.

    Returns:
      `(images [2 * M, H, W, C], columns)`, M = N rounded down to a multiple of
      `columns` (at least one row).
    """
    columns = max(1, min(columns, len(originals)))
    m = max(columns, len(originals) // columns * columns)
    rows = []
    for start in range(0, m, columns):
        rows += [originals[start:start + columns], reconstructions[start:start + columns]]
    return np.concatenate(rows), columns


def grid_sizes(num_sample_images: int) -> tuple[int, int]:
    """`(examples, columns)` of a reconstructions grid of about `num_sample_images` cells."""
    columns = max(1, int(np.ceil(np.sqrt(num_sample_images))))
    return max(columns, num_sample_images // 2), columns
