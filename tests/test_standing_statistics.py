"""Tests for jgan.standing_statistics: the EMA generator's recomputed batch-norm averages.

Checked against numpy (a one-layer generator's per-batch means and variances, averaged
over batches, for two momenta) and against a property of any depth: with one batch,
inference mode on that batch reproduces training mode exactly.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgan.families import adversarial_game, infogan_game
from jgan.families.infogan import InfoGANCodes
from jgan.families.sampling import GeneratorInputs
from jgan.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator
from jgan.standing_statistics import standing_statistics


class DenseBatchNorm(nn.Module):
    """z -> BatchNorm(z W + b): the smallest generator with batch statistics."""
    momentum: float = 0.9

    @nn.compact
    def __call__(self, z, *, train: bool = False):
        h = nn.Dense(3, name="dense")(z)
        return nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                            name="bn")(h)


def _game(generator, discriminator, latent_dim=4):
    return adversarial_game(generator=generator, discriminator=discriminator,
                            latent_dim=latent_dim, loss_type="non_saturating",
                            generator_optimizer=optax.adam(1e-3),
                            discriminator_optimizer=optax.adam(1e-3), ema_decay=0.9)


def _with_distinct_ema(state, scale=1.7):
    # EMA weights unlike the live ones, so using the wrong set shows.
    return state.replace(ema={"generator": jax.tree.map(lambda p: scale * p + 0.3,
                                                     state.ema["generator"])})


@pytest.mark.parametrize("momentum", [0.9, 0.5])
@pytest.mark.parametrize("use_ema", [True, False])
def test_equals_numpy_average_of_batch_moments(momentum, use_ema):
    game = _game(DenseBatchNorm(momentum=momentum), MLPDiscriminator(hidden=(4,)))
    sampler = GeneratorInputs(family="gan", latent_dim=4)
    state = _with_distinct_ema(game.init(jax.random.PRNGKey(0), {"image": jnp.zeros((2, 3))}))
    rng, k, b = jax.random.PRNGKey(7), 5, 16
    out = jax.jit(lambda s: standing_statistics(game, s, sampler, rng, num_batches=k,
                                                batch_size=b, use_ema=use_ema))(state)
    params = (state.ema["generator"] if use_ema else state.teams["generator"].params)["generator"]["dense"]
    w, bias = np.asarray(params["kernel"], np.float64), np.asarray(params["bias"], np.float64)
    hs = [np.asarray(sampler.random(jax.random.fold_in(rng, i), b)["z"], np.float64) @ w + bias
          for i in range(k)]
    stats = out.teams["generator"].collections["generator"]["batch_stats"]["bn"]
    np.testing.assert_allclose(stats["mean"], np.mean([h.mean(0) for h in hs], 0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats["var"], np.mean([h.var(0) for h in hs], 0),
                               rtol=1e-4, atol=1e-5)
    # Nothing else moves.
    for before, after in ((state.teams["generator"].params, out.teams["generator"].params),
                          (state.ema["generator"], out.ema["generator"]),
                          (state.teams["discriminator"], out.teams["discriminator"])):
        jax.tree.map(np.testing.assert_array_equal, before, after)


def test_one_batch_makes_inference_equal_training_mode_through_every_layer():
    # Every layer's statistics then are those of that very batch, so a DCGAN generator in
    # inference mode on it reproduces its training-mode output (a depth-3 check).
    game = _game(DCGANGenerator(width=4), DCGANDiscriminator(width=4), latent_dim=6)
    sampler = GeneratorInputs(family="gan", latent_dim=6)
    state = _with_distinct_ema(game.init(jax.random.PRNGKey(1),
                                         {"image": jnp.zeros((2, 28, 28, 1))}), scale=1.2)
    rng, b = jax.random.PRNGKey(3), 12
    z = sampler.random(jax.random.fold_in(rng, 0), b)

    @jax.jit
    def outputs(state):
        standing = standing_statistics(game, state, sampler, rng, num_batches=1, batch_size=b)
        train = sampler.generate(game.bind(state, train=True, rng=rng, use_ema=True), z)
        infer = sampler.generate(game.bind(standing, train=False, rng=rng, use_ema=True), z)
        live = sampler.generate(game.bind(state, train=False, rng=rng, use_ema=True), z)
        return train, infer, live
    train, infer, live = outputs(state)
    np.testing.assert_allclose(infer, train, atol=2e-5)
    assert np.abs(np.asarray(live) - np.asarray(train)).max() > 1e-2


def test_infogan_inputs_and_a_generator_without_batch_norm():
    codes = InfoGANCodes(noise_dim=5)
    game = infogan_game(generator=DCGANGenerator(width=4), discriminator=DCGANDiscriminator(width=4),
                        codes=codes, generator_optimizer=optax.adam(1e-3),
                        discriminator_optimizer=optax.adam(1e-3), ema_decay=0.9,
                        q_batch_norm=True)
    sampler = GeneratorInputs(family="infogan", latent_dim=5, codes=codes)
    state = game.init(jax.random.PRNGKey(0), {"image": jnp.zeros((2, 28, 28, 1))})
    out = standing_statistics(game, state, sampler, jax.random.PRNGKey(1), num_batches=2,
                              batch_size=4)
    g_stats = out.teams["generator"].collections["generator"]["batch_stats"]
    assert float(jnp.abs(g_stats["project_bn"]["mean"]).max()) > 0
    # Q's head (on the generator team here) keeps its own averages.
    jax.tree.map(np.testing.assert_array_equal, state.teams["generator"].collections["q_head"],
                 out.teams["generator"].collections["q_head"])
    plain = _game(nn.Dense(3), MLPDiscriminator(hidden=(4,)))
    s = plain.init(jax.random.PRNGKey(0), {"image": jnp.zeros((2, 3))})
    assert standing_statistics(plain, s, GeneratorInputs(family="gan", latent_dim=4),
                               jax.random.PRNGKey(1), num_batches=1, batch_size=4) is s
    with pytest.raises(ValueError, match="num_batches"):
        standing_statistics(game, state, sampler, jax.random.PRNGKey(1), num_batches=0,
                            batch_size=4)
