"""Standing statistics: batch-norm statistics recomputed for the generator that samples.

A generator with batch norm samples in inference mode, normalizing each layer with its
running averages of batch means and variances. Those averages were accumulated by the
*live* generator during training; the EMA generator (Yazici et al. 2019) has other
weights, so its activations have other statistics, and the live averages only
approximate them. BigGAN (Brock et al. 2019, appendix C.1) replaces them by "standing
statistics": the generator to sample from is run in training mode over K batches of
its own inputs, and each layer's mean and variance are averaged over the batches:

    mu_l = (1/K) sum_k mean_b(h_l[k, b]),   sigma^2_l = (1/K) sum_k var_b(h_l[k, b]).

Only the `batch_stats` collection of the named network changes; parameters, other
collections (spectral-norm vectors) and the discriminator are untouched.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jgan.families.adversarial import GENERATOR
from jgan.core.game import Game, GameState

__all__ = ["standing_statistics"]

BATCH_STATS = "batch_stats"


def _batch_statistics(game: Game, state: GameState, sampler, rng: jax.Array, *,
                      batch_size: int, use_ema: bool, network: str):
    """Each batch-norm layer's batch mean and variance over one batch of G's inputs.

    Flax's (and every framework's) running average is r' = m r + (1 - m) b for the
    batch statistic b and a momentum m that the module keeps to itself. Running the
    network from r = 0 and from r = 1 gives (1 - m) b and m + (1 - m) b, so
    b = r'_0 / (1 - (r'_1 - r'_0)) whatever m is.
    """
    collections = state.teams[game.team_of(network)].collections[network]
    outputs = []
    for start in (0.0, 1.0):
        stats = jax.tree.map(lambda v: jnp.full_like(v, start), collections[BATCH_STATS])
        probe = _with_batch_stats(game, state, network, stats)
        nets = game.bind(probe, train=True, rng=rng, use_ema=use_ema)
        sampler.generate(nets, sampler.random(rng, batch_size))
        outputs.append(nets.updated_collections([network])[network][BATCH_STATS])
    return jax.tree.map(lambda r0, r1: r0 / (1.0 - (r1 - r0)), *outputs)


def standing_statistics(game: Game, state: GameState, sampler, rng: jax.Array, *,
                        num_batches: int, batch_size: int, use_ema: bool = True,
                        network: str = GENERATOR) -> GameState:
    """`state` with the generator's batch-norm averages replaced by standing statistics.

    Args:
      game: the run's game.
      state: its state.
      sampler: the run's `jgan.families.sampling.GeneratorInputs`, which draws the
        generator's inputs (z, labels, codes) from their training distribution.
      rng: key of the inputs; batch k uses `fold_in(rng, k)`.
      num_batches: K >= 1.
      batch_size: inputs per batch (statistics are per batch, as in training: use the
        training batch size).
      use_ema: compute them for the EMA weights (as sampling uses them) rather than the
        live ones.
      network: the network to recompute (in whichever team updates it).
    Returns:
      The state, with the network's `collections[network]["batch_stats"]` replaced; the
      state itself if the network keeps no batch statistics.
    """
    if num_batches < 1 or batch_size < 2:
        raise ValueError(f"standing statistics need num_batches >= 1 and batch_size >= 2, got "
                         f"{num_batches} and {batch_size}.")
    collections = state.teams[game.team_of(network)].collections.get(network, {})
    if BATCH_STATS not in collections:
        return state

    def accumulate(total, k):
        stats = _batch_statistics(game, state, sampler, jax.random.fold_in(rng, k),
                                  batch_size=batch_size, use_ema=use_ema, network=network)
        return jax.tree.map(jnp.add, total, stats), None

    zeros = jax.tree.map(jnp.zeros_like, collections[BATCH_STATS])
    total, _ = jax.lax.scan(accumulate, zeros, jnp.arange(num_batches))
    standing = jax.tree.map(lambda t: t / num_batches, total)
    return _with_batch_stats(game, state, network, standing)


def _with_batch_stats(game: Game, state: GameState, network: str, stats) -> GameState:
    team = game.team_of(network)
    collections = state.teams[team].collections
    return state.replace_team(team, state.teams[team].replace(collections={
        **collections, network: {**collections[network], BATCH_STATS: stats}}))
