"""Settings the autoencoder and VAE configs share: one optimizer section named after the
family's one team, image data, and the small variant (`,runlocal`) the tests run.

These families read their networks from their own section (`config.<family>.network`,
`latent_dim`, `width`, `dense_hidden`, `hidden`), not from `config.model.*`.
"""
from typing import NamedTuple

import ml_collections

from experiments.configs.base import base_config

DATASETS = ("mnist", "fashion_mnist")
RESIDUAL_ENCODERS = ("resnet", "revnet")
SMALL = "small"   # bigbigan.py's `,small` encoder size (CPU-sized figures)


def adam(learning_rate: float, b1: float = 0.9) -> ml_collections.ConfigDict:
    """An optimizer section: Adam(learning_rate, b1, b2=0.999), constant rate."""
    o = ml_collections.ConfigDict()
    o.name = "adam"
    o.learning_rate = learning_rate
    o.schedule = "constant"  # constant | linear_decay (to 0 over the last half)
    o.b1 = b1
    o.b2 = 0.999
    o.clip_weights = 0.0
    return o


def one_team_config(family: str, *, learning_rate: float = 1e-3):
    """`base_config(family)` whose optimizer section is the team's: `optimizer.<family>`,
    Adam(learning_rate, b1=0.9, b2=0.999)."""
    return teams_config(family, {family: adam(learning_rate)})


def teams_config(family: str, optimizers: dict):
    """`base_config(family)` with the optimizer sections `{team: section}`."""
    c = base_config(family)
    c.optimizer = ml_collections.ConfigDict(optimizers)
    return c


def image_data(c, dataset: str):
    """28-px grayscale TFDS images held in device memory."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}.")
    c.data.kind = "tfds"
    c.data.name = dataset
    c.data.resolution = 28
    c.data.channels = 1
    c.data.on_device = True
    return c


class EncoderChoice(NamedTuple):
    """A config argument's residual encoder: `block` ("resnet" | "revnet") at bigbigan.py's
    size, or at its `,small` size when `small`."""
    block: str
    small: bool = False


def take_encoder_option(parts: list[str]) -> tuple[list[str], EncoderChoice | None]:
    """`(parts without them, EncoderChoice | None)`: the `,revnet` / `,resnet` option of a
    config argument, and `,small` beside it."""
    chosen = [p for p in parts if p in RESIDUAL_ENCODERS]
    if len(chosen) > 1:
        raise ValueError(f"at most one of {RESIDUAL_ENCODERS}, got {chosen}.")
    small = SMALL in parts
    if small and not chosen:
        raise ValueError(f"'{SMALL}' sizes the residual encoder: it goes with one of "
                         f"{RESIDUAL_ENCODERS}, got {parts}.")
    rest = [p for p in parts if p not in RESIDUAL_ENCODERS and p != SMALL]
    return rest, (EncoderChoice(chosen[0], small) if chosen else None)


def use_residual_encoder(c, family: str, encoder: EncoderChoice):
    """BigBiGAN's encoder (bigbigan.py's: 3 stages of 2 blocks, widths 32-64-128, a head of
    256, a 64-dimensional code; under `encoder.small` bigbigan.py's `,small` one: 1 block
    per stage, widths 16-32-64) on bigbigan.py's inputs (32 px, zero-padded), before the
    `ConvDecoder` of the same width: the encoder architecture and inputs of the BigBiGAN
    and BiGAN configs, for linear probes that compare the objectives alone."""
    s = c[family]
    s.network = encoder.block
    s.width = 16 if encoder.small else 32
    s.dense_hidden = 256
    s.residual_blocks = 1 if encoder.small else 2
    s.latent_dim = 64
    c.data.resolution = 32
    c.data.resize = "pad"
    return c


def apply_runlocal(c, family: str):
    """The small variant tests run end to end: tiny networks, a few steps, a small
    held-out set."""
    s = c[family]
    s.latent_dim = 4
    s.width = 4
    s.dense_hidden = 16
    s.hidden = (16, 16)
    s.residual_blocks = 1
    s.eval_examples = 32
    s.eval_batch_size = 16
    c.eval.probe_train = 64
    c.data.on_device = False
    c.batch_size = 8
    c.num_steps = 4
    c.log_every = 2
    c.sample_every = 2
    c.checkpoint_every = 2
    c.num_sample_images = 4
    return c
