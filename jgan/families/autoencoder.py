"""The autoencoder family: one team, "autoencoder", of two networks, an encoder
E: x -> code `[B, latent_dim]` and a decoder D: code -> x, trained to reconstruct.

Reconstruction loss (`config.autoencoder.loss`), x the batch's images in [-1, 1]:

  mse        mean over the batch and every pixel of (D(E(x)) - x)^2: the decoder
             outputs images in [-1, 1] units directly (no output activation).
  bernoulli  mean over the batch of the per-image binary cross-entropy in nats,
             -sum_d [t_d log sigmoid(l_d) + (1 - t_d) log(1 - sigmoid(l_d))] with
             t = (x + 1) / 2 in [0, 1] and l = D(E(x)) the decoder's logits
             (`jgan.objectives.variational.bernoulli_log_likelihood`, negated).

Its reconstructions as images in [-1, 1] are D(E(x)) clipped (mse) or
sigmoid(l) * 2 - 1 (bernoulli). An autoencoder has no prior to sample from: runs draw
grids of test images above their reconstructions, `jgan.sample` refuses its runs, and
eval.json's "family_metrics" hold the test reconstruction error
(`evaluate_reconstructions`). Its encoder is a feature extractor for
`python -m jgan.probe --network=encoder`.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan.core.game import Game, Networks, Team
from jgan.errors import require
from jgan.families import encoder_decoder as ed
from jgan.families import representation
from jgan.families.registry import Family, register
from jgan.objectives.variational import bernoulli_log_likelihood
from jgan.optimizers import build_optimizer

TEAM = "autoencoder"
LOSSES = ("mse", "bernoulli")


def config_section() -> ml_collections.ConfigDict:
    """The family's section `config.autoencoder`, at its defaults."""
    c = ml_collections.ConfigDict()
    c.loss = "mse"   # mse | bernoulli (module docstring)
    return ed.add_network_keys(c)


def _validate(config: ml_collections.ConfigDict) -> None:
    ed.validate_networks(config, TEAM, ("tfds",))
    require(config.autoencoder.loss in LOSSES, "autoencoder.loss",
            f"{config.autoencoder.loss!r} is not one of {LOSSES}.")


def reconstruction_loss(x: jax.Array, output: jax.Array, loss: str) -> jax.Array:
    """Per-example reconstruction loss `[B]` of images x `[B, ...]` in [-1, 1] from the
    decoder's output `[B, ...]` (module docstring): the mean squared error per pixel
    ("mse") or the binary cross-entropy in nats per image ("bernoulli")."""
    if x.shape != output.shape:
        raise ValueError(f"Images {x.shape} and the decoder's output {output.shape} differ.")
    if loss == "mse":
        return jnp.mean(jnp.square(output - x).reshape(x.shape[0], -1), axis=-1)
    return -bernoulli_log_likelihood((x + 1.0) / 2.0, logits=output)


def to_images(output: jax.Array, loss: str) -> jax.Array:
    """The decoder's output as images in [-1, 1] (module docstring)."""
    if loss == "mse":
        return jnp.clip(output, -1.0, 1.0)
    return jax.nn.sigmoid(output) * 2.0 - 1.0


def autoencoder_game(config: ml_collections.ConfigDict) -> Game:
    """The one-team game: the mean of `reconstruction_loss` over the batch, minimized by
    the encoder and decoder with `optimizer.autoencoder`; metric `autoencoder_loss`."""
    encoder, decoder = ed.build_networks(config, TEAM, variational=False)
    loss_type, shape = config.autoencoder.loss, ed.data_shape(config)

    def loss(nets: Networks, batch, rng):
        del rng
        x = batch["image"]
        output = ed.decode(nets, nets(ed.ENCODER, x), shape)
        return jnp.mean(reconstruction_loss(x, output, loss_type)), {}

    def example_inputs(batch):
        return {ed.ENCODER: (batch["image"][:1],),
                ed.DECODER: (jnp.zeros((1, config.autoencoder.latent_dim), jnp.float32),)}

    team = Team(networks={ed.ENCODER: encoder, ed.DECODER: decoder}, loss=loss,
                optimizer=build_optimizer(config.optimizer[TEAM], config.num_steps),
                ema_decay=config.game.ema_decay, metrics_prefix=TEAM)
    return Game(teams={TEAM: team}, example_inputs=example_inputs)


def _reconstruct_fn(config, game: Game):
    """Jitted `(state, x) -> {"images", "loss"}`: reconstructions in [-1, 1] and the
    per-example loss, with the sampling weights (EMA where kept)."""
    loss_type, shape = config.autoencoder.loss, ed.data_shape(config)
    use_ema = config.game.ema_decay is not None

    @jax.jit
    def reconstruct(state, x):
        nets = game.bind(state, train=False, rng=jax.random.key(0), use_ema=use_ema)
        output = ed.decode(nets, nets(ed.ENCODER, x), shape)
        return {"images": to_images(output, loss_type),
                "loss": reconstruction_loss(x, output, loss_type)}
    return reconstruct


def sample_grids(config: ml_collections.ConfigDict, game: Game):
    """`state -> {"reconstructions": (images, columns)}`: the first held-out images above
    their reconstructions (`encoder_decoder.reconstruction_grid`)."""
    num, columns = ed.grid_sizes(config.num_sample_images)
    originals = ed.held_out_examples(config, num)
    reconstruct = _reconstruct_fn(config, game)

    def grids(state):  # in evaluation-sized batches: the evaluation's compiled function
        images = ed.batched(lambda i, chunk: reconstruct(state, chunk), originals,
                            config.autoencoder.eval_batch_size)["images"]
        return {"reconstructions": ed.reconstruction_grid(originals, images, columns)}
    return grids


def evaluate_reconstructions(config: ml_collections.ConfigDict, game: Game):
    """`state -> dict`: over the held-out examples (`autoencoder.eval_examples`, 0: the
    whole split), `test_mse` (per pixel, of the reconstructions in [-1, 1]) and
    `test_loss` (the training loss, `autoencoder.loss`), with how they were measured;
    and the encoder's probe and the reconstructions' scores
    (`jgan.families.representation`)."""
    reconstruct = _reconstruct_fn(config, game)
    s = config.autoencoder
    represent = representation.for_game(config, game, batch_size=s.eval_batch_size)

    def evaluate(state):
        x, labels = ed.labelled_examples(config, s.eval_examples,
                                         split=config.eval.reference_split)
        out = ed.batched(lambda i, chunk: reconstruct(state, chunk), x,
                         min(s.eval_batch_size, len(x)))
        mse = np.mean(np.square(out["images"].astype(np.float64) - x).reshape(len(x), -1), 1)
        return {"test_mse": float(np.mean(mse)), "test_loss": float(np.mean(out["loss"])),
                "loss": s.loss, "num_examples": int(len(x)),
                "split": config.eval.reference_split,
                "protocol": ("reconstructions D(E(x)) of the first num_examples images of "
                             "the split (as the training pipeline reads them, in [-1, 1]); "
                             "test_mse: squared error per pixel of the reconstruction "
                             "images in [-1, 1]; test_loss: the training loss "
                             f"({s.loss}) per example."),
                **represent(state, x, labels, out["images"])}
    return evaluate


FAMILY = register(Family(
    name="autoencoder", build_game=autoencoder_game, generator_inputs=None,
    section=config_section, validate=_validate, sample_grids=sample_grids,
    evaluation=evaluate_reconstructions))
