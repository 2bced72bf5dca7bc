"""A training loop of your own over jgan's pieces: a GAN on the 8-Gaussian ring.

jgan's trainer (`python -m experiments.main`) is one way to train; this script is the
other. It builds the game by hand instead of with `jgan.adversarial_game`, to show what
a family fills in, and runs it in a plain Python loop:

* a `Game` of two `Team`s, "discriminator" (updated first) and "generator", with MLPs
  from `jgan.models`, optax optimizers and EMA weights on the generator's team;
* loss functions written here, from `jgan.objectives.losses` (non-saturating game) and
  `jgan.objectives.penalties` (R1 on real data);
* the trainer's data-parallel layout: `jgan.sharding.data_mesh()` and `place_on_mesh`
  (state replicated, batch split over the devices), the jitted `jgan.make_step` called
  inside `jax.set_mesh(mesh)` and wrapped in `chex.assert_max_traces(n=1)`, which raises
  if the loop ever traces the step a second time;
* samples of the EMA generator, `game.apply(state, "generator", z, use_ema=True)`,
  scored by `jgan.eval.mode_statistics` (PacGAN's protocol: modes covered of 8, share
  of samples within 3 standard deviations of a mode).

Run it after `pip install -e .` (no download; 3,000 steps cover all 8 modes in about
half a minute on a 2-core CPU):

    python examples/own_loop.py --num_steps=3000
    # the same over 8 host devices, as on an 8-accelerator machine:
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/own_loop.py
"""
from __future__ import annotations

import argparse
import json
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jgan
import jgan.eval  # `import jgan` does not import the evaluation suite.
from jgan.core.game import Game, Team
from jgan.data import ring
from jgan.models import MLPDiscriminator, MLPGenerator
from jgan.objectives import losses, penalties
from jgan.sharding import data_mesh, place_on_mesh

LATENT_DIM = 2
LOSS_TYPE = "non_saturating"


def build_game(*, hidden=(128, 128, 128), optimizer=None, r1_gamma=0.1,
               ema_decay=0.99) -> Game:
    """The GAN as a `Game`: what `jgan.adversarial_game` would build, written out.

    `optimizer` (both teams; None: Adam 1e-3) may be any optax transformation;
    `ema_decay=None` keeps no EMA weights (sampling then uses the live generator).
    """

    def latents(rng, num):
        return jax.random.normal(rng, (num, LATENT_DIM), jnp.float32)

    def discriminator_loss(nets, batch, rng):
        real = batch["x"]
        # Only D's parameters are differentiated in D's update, so the fakes need no
        # stop_gradient. `nets` shards the latents over the mesh like the real batch.
        fake = nets("generator", latents(rng, real.shape[0]))
        real_logits, fake_logits = nets("discriminator", real), nets("discriminator", fake)
        adversarial = losses.discriminator_loss(real_logits=real_logits,
                                                fake_logits=fake_logits, loss_type=LOSS_TYPE)
        # R1 (Mescheder et al. 2018) keeps D's gradient on the data small; the penalty
        # returns E||grad D||^2 and the convention is to add gamma / 2 times it.
        # update_collections=False: the penalty's extra pass must not advance D's
        # mutable state (spectral norm's power iteration, were it on).
        r1 = penalties.r1_penalty(
            lambda x: nets("discriminator", x, update_collections=False), real=real)
        # A loss's metrics are reported under their own names (not prefixed).
        return adversarial + r1_gamma / 2 * r1, {"d_adversarial": adversarial, "r1": r1}

    def generator_loss(nets, batch, rng):
        fake = nets("generator", latents(rng, batch["x"].shape[0]))
        fake_logits = nets("discriminator", fake)
        return losses.generator_loss(fake_logits=fake_logits, loss_type=LOSS_TYPE), {}

    # Adam with b1 = 0.5 as in DCGAN, at the mixture configs' 1e-3 (held constant here:
    # a few thousand steps cover the ring).
    optimizer = optax.adam(1e-3, b1=0.5) if optimizer is None else optimizer
    return Game(
        teams={
            "discriminator": Team(networks={"discriminator": MLPDiscriminator(hidden)},
                                  loss=discriminator_loss, optimizer=optimizer,
                                  metrics_prefix="d"),
            # The EMA averages out G's oscillation around the modes (seeds 0-2, 3,000
            # steps: 79-92 % of samples high quality, 6-62 % without it). ema_warmup:
            # it starts as a short average instead of holding the initial weights.
            "generator": Team(networks={"generator": MLPGenerator(hidden)},
                              loss=generator_loss, optimizer=optimizer,
                              ema_decay=ema_decay, ema_warmup=ema_decay is not None,
                              metrics_prefix="g"),
        },
        # Shapes only: each network is initialized on one example.
        example_inputs=lambda batch: {"discriminator": (batch["x"][:1],),
                                      "generator": (jnp.zeros((1, LATENT_DIM)),)})


def make_train_step(game: Game):
    """The jitted step. `chex.assert_max_traces` wraps the plain step (not the jitted
    one) and raises if it is ever traced again: from an input of another shape, dtype
    or structure, or from a second `jax.jit` of a step made at the same place."""
    return jax.jit(chex.assert_max_traces(jgan.make_step(game, update_rule="alternating"), n=1))


def train(num_steps: int = 3000, seed: int = 0, batch_size: int = 256, *,
          log_every: int = 500, num_eval_samples: int = 2500, **game_kwargs) -> dict:
    """Trains the ring GAN for `num_steps` and returns the final figures.

    Returns:
      dict: `d_loss`, `g_loss`, `r1` (last step), `modes` (of 8), `high_quality`,
      `mode_counts`, `seconds`, `num_devices`, `batch_shard_shapes` (the shapes of the
      last placed batch's pieces, one per device), `history` (logged metrics).

    chex counts the step's traces per place of definition, not per `jax.jit` object:
    a second `train` from the same caller (a loop over seeds) raises unless
    `chex.clear_trace_counter()` runs in between.
    """
    mixture = ring()
    game = build_game(**game_kwargs)
    init_key, data_key, eval_key = jax.random.split(jax.random.key(seed), 3)
    # Step i's real batch is a pure function of (key, i), drawn by one jitted call to
    # keep the loop's per-step Python overhead small.
    draw = jax.jit(lambda i: {"x": mixture.sample(jax.random.fold_in(data_key, i), batch_size)})
    # Jitted, init takes one compilation instead of hundreds of small eager ops.
    state = jax.jit(game.init)(init_key, draw(0))

    mesh = data_mesh()  # all devices, one "data" axis
    step = make_train_step(game)

    history, start = [], time.time()
    with jax.set_mesh(mesh):  # the latents a loss draws are split like the batch
        for i in range(num_steps):
            batch = draw(i)
            # The state is replicated once (later calls find it in place); each new
            # batch is split over the devices.
            state, batch = place_on_mesh(mesh, state, batch)
            state, metrics = step(state, batch)
            # Wait for the step before queueing the next: with many steps queued, XLA's
            # CPU backend can deadlock in the collectives of several host devices (jax
            # 0.10: 1,000 queued steps on 8 host devices abort after 40 s).
            jax.block_until_ready(metrics)
            if (i + 1) % log_every == 0 or i + 1 == num_steps:
                logged = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if not all(np.isfinite(v) for v in logged.values()):
                    raise FloatingPointError(f"step {i + 1}: non-finite metrics {logged}")
                history.append({"step": i + 1, **logged})
                print(f"step {i + 1:5d}  d_loss {logged['d_loss']:.4f}  "
                      f"g_loss {logged['g_loss']:.4f}  r1 {logged['r1']:.4f}", flush=True)
    seconds = time.time() - start

    # Sample the EMA generator (inference mode; the state does not change).
    z = jax.random.normal(eval_key, (num_eval_samples, LATENT_DIM))
    samples = game.apply(state, "generator", z, use_ema=True)
    stats = jgan.eval.mode_statistics(np.asarray(samples), mixture.means, mixture.std)
    return {
        **{k: history[-1][k] for k in ("d_loss", "g_loss", "r1")},
        "modes": stats["modes"],
        "high_quality": stats["high_quality"],
        "mode_counts": stats["mode_counts"],
        "seconds": seconds,
        "num_devices": mesh.size,
        "batch_shard_shapes": [s.data.shape for s in batch["x"].addressable_shards],
        "history": history,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=256,
                        help="a multiple of the number of devices")
    args = parser.parse_args(argv)
    results = train(args.num_steps, args.seed, args.batch_size)
    print(json.dumps({k: v for k, v in results.items()
                      if k not in ("history", "batch_shard_shapes")}))
    return results


if __name__ == "__main__":
    main()
