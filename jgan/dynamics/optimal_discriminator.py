"""The optimal discriminator of a fixed generator, and the value of the game there.

For a fixed generator with density p_g, the discriminator maximizing
V(D, G) = E_{x~p_data}[log D(x)] + E_{x~p_g}[log(1 - D(x))] is (Goodfellow et al.
2014, Proposition 1)

  D*(x) = p_data(x) / (p_data(x) + p_g(x)) = sigmoid(log p_data(x) - log p_g(x)),

and the value there is (their Theorem 1) V(D*, G) = 2 JSD(p_data || p_g) - log 4.

Here the generator is a `MixtureGenerator`: a Gaussian mixture written as a map of
noise, so its density is known, whose parameters a zero optimizer
(`optax.set_to_zero()`) keeps fixed. The discriminator is an MLP trained by
`jgan.core.steps.make_step` on the game of `jgan.families.adversarial.adversarial_game`, and
its learned D is compared on a quadrature grid with the closed form.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import logsumexp
from jax.scipy.stats import norm
from scipy.spatial.distance import jensenshannon

from jgan.data.mixtures import Mixture
from jgan.families.adversarial import DISCRIMINATOR, adversarial_game
from jgan.core.game import Game, GameState
from jgan.models.mlp import MLPDiscriminator
from jgan.core.steps import make_step

DATA_KEY = "x"


def mixture_log_density(mixture: Mixture, x) -> jax.Array:
    """log p(x) of an equal-weight isotropic Gaussian mixture.

    log p(x) = logsumexp_k [ -log K + sum_d log N(x_d; mu_kd, std^2) ].

    Args:
      mixture: K components in D dimensions (`mixture.means` is `[K, D]`).
      x: `[N, D]` points.
    Returns:
      `[N]` float32 log-densities.
    """
    x = jnp.asarray(x, jnp.float32)
    means = jnp.asarray(mixture.means, jnp.float32)
    if x.ndim != 2 or x.shape[1] != means.shape[1]:
        raise ValueError(f"x must be [N, {means.shape[1]}] for a {means.shape[1]}-D mixture, "
                         f"got shape {x.shape}.")
    per_component = norm.logpdf(x[:, None, :], means[None], mixture.std).sum(-1)
    return logsumexp(per_component, axis=1) - jnp.log(mixture.num_modes)


class MixtureGenerator(nn.Module):
    """A generator with a known density: z `[B, D + 1]` -> x `[B, D]` ~ the mixture.

    z_0 picks the component, k = floor(K Phi(z_0)) (uniform over the K components since
    Phi(z_0) ~ U(0, 1)), and x = mu_k + std z_{1:D+1}. The means are the module's
    parameters ("means", `[K, D]`), so the shared step machinery treats it as any
    generator; train it with `optax.set_to_zero()` to keep its density fixed.

    Attributes:
      means: the K component means, each a tuple of D floats.
      std: the components' common standard deviation.
    """
    means: tuple[tuple[float, ...], ...]
    std: float

    @classmethod
    def of(cls, mixture: Mixture) -> MixtureGenerator:
        """The generator whose samples follow `mixture`."""
        return cls(means=tuple(tuple(float(v) for v in mu) for mu in np.asarray(mixture.means)),
                   std=float(mixture.std))

    @property
    def latent_dim(self) -> int:
        """Size of z: one coordinate picks the component, D give the offset."""
        return len(self.means[0]) + 1

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be [B, {self.latent_dim}], got shape {z.shape}.")
        means = self.param("means", lambda _: jnp.asarray(self.means, jnp.float32))
        num_modes = means.shape[0]
        k = jnp.clip(jnp.floor(num_modes * norm.cdf(z[:, 0])).astype(jnp.int32), 0,
                     num_modes - 1)
        return means[k] + self.std * z[:, 1:]


@dataclasses.dataclass(frozen=True)
class QuadratureGrid:
    """The midpoints of a regular grid of cells over the cube [low, high]^dim.

    Attributes:
      low, high: the cube's bounds on every axis.
      num_per_axis: cells per axis.
      dim: 1 or 2 (any D works; the cost is num_per_axis^D).
    """
    low: float
    high: float
    num_per_axis: int
    dim: int

    def __post_init__(self):
        if not self.high > self.low:
            raise ValueError(f"QuadratureGrid needs high > low, got [{self.low}, {self.high}].")
        if self.num_per_axis < 2 or self.dim < 1:
            raise ValueError(f"QuadratureGrid needs num_per_axis >= 2 and dim >= 1, got "
                             f"{self.num_per_axis} and {self.dim}.")

    @property
    def axis(self) -> np.ndarray:
        """`[num_per_axis]` cell midpoints along one axis."""
        width = (self.high - self.low) / self.num_per_axis
        return self.low + width * (np.arange(self.num_per_axis) + 0.5)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.num_per_axis,) * self.dim

    @property
    def points(self) -> np.ndarray:
        """`[num_per_axis^dim, dim]` float32 midpoints, in row-major order of `shape`."""
        mesh = np.meshgrid(*([self.axis] * self.dim), indexing="ij")
        return np.stack([m.reshape(-1) for m in mesh], axis=1).astype(np.float32)

    @property
    def cell_volume(self) -> float:
        return ((self.high - self.low) / self.num_per_axis) ** self.dim


def optimal_discriminator_logit(log_p_data, log_p_g) -> np.ndarray:
    """The logit of D*: log p_data(x) - log p_g(x) (Goodfellow et al. 2014, Prop. 1).

    Args:
      log_p_data, log_p_g: `[N]` log-densities at the same points (-inf allowed).
    Returns:
      `[N]` float64; +-inf where one density vanishes, 0 where both do (D* is arbitrary
      there, and 1/2 keeps it finite).
    """
    log_p_data, log_p_g = _as_log_densities(log_p_data, log_p_g)
    both_zero = np.isneginf(log_p_data) & np.isneginf(log_p_g)
    with np.errstate(invalid="ignore"):
        return np.where(both_zero, 0.0, log_p_data - log_p_g)


def optimal_discriminator(log_p_data, log_p_g) -> np.ndarray:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Goodfellow et al. 2014, Prop. 1).

    Args:
      log_p_data, log_p_g: `[N]` log-densities at the same points.
    Returns:
      `[N]` float64 in [0, 1]; 1/2 where both densities vanish.
    """
    return 0.5 * (1.0 + np.tanh(0.5 * optimal_discriminator_logit(log_p_data, log_p_g)))


def game_value(d_logits, log_p_data, log_p_g, cell_volume: float) -> float:
    """V(D, G) = int p_data log D + p_g log(1 - D) dx by the midpoint rule.

    (Goodfellow et al. 2014, Eq. 1), with D = sigmoid(d_logits), log D = -softplus(-l)
    and log(1 - D) = -softplus(l); a density that vanishes contributes 0 whatever D is.

    Args:
      d_logits: `[N]` discriminator logits at the grid's midpoints (+-inf allowed).
      log_p_data, log_p_g: `[N]` log-densities there.
      cell_volume: volume of one grid cell.
    Returns:
      The value, <= 0; -log 4 for D = 1/2, and at most 2 JSD - log 4 (at D*).
    """
    log_p_data, log_p_g = _as_log_densities(log_p_data, log_p_g)
    d_logits = np.asarray(d_logits, np.float64)
    if d_logits.shape != log_p_data.shape:
        raise ValueError(f"d_logits has shape {d_logits.shape}, the log-densities "
                         f"{log_p_data.shape}.")
    with np.errstate(invalid="ignore", over="ignore"):
        real = np.where(np.isneginf(log_p_data), 0.0,
                        np.exp(log_p_data) * np.logaddexp(0.0, -d_logits))
        fake = np.where(np.isneginf(log_p_g), 0.0, np.exp(log_p_g) * np.logaddexp(0.0, d_logits))
    return float(-(real.sum() + fake.sum()) * cell_volume)


def jensen_shannon_divergence(log_p, log_q) -> float:
    """JSD(p || q) = KL(p || m) / 2 + KL(q || m) / 2, m = (p + q) / 2, in nats.

    (Lin 1991.) The densities on a regular grid are treated as the discrete
    distributions of the cells (`scipy.spatial.distance.jensenshannon`, which
    renormalizes each to mass 1), which converges to the continuous JSD as the grid
    refines and covers both densities.

    Args:
      log_p, log_q: `[N]` log-densities at the midpoints of a regular grid.
    Returns:
      JSD in [0, log 2].
    """
    log_p, log_q = _as_log_densities(log_p, log_q)
    return float(jensenshannon(np.exp(log_p), np.exp(log_q)) ** 2)


def grid_mass(log_p, cell_volume: float) -> float:
    """int p dx over the grid by the midpoint rule: how much of the density it covers."""
    return float(np.exp(np.asarray(log_p, np.float64)).sum() * cell_volume)


class DiscriminatorError(NamedTuple):
    """|D - D*| over the region where (p_data + p_g) / 2 >= threshold * its maximum."""
    max: float
    mean: float
    region_fraction: float   # share of the grid's cells in the region


def discriminator_error(d, d_star, log_p_data, log_p_g, *,
                        relative_threshold: float = 0.01) -> DiscriminatorError:
    """Max and mean of |D - D*| where the data D is trained on has non-negligible density.

    Args:
      d, d_star: `[N]` learned and optimal D on the grid.
      log_p_data, log_p_g: `[N]` log-densities there.
      relative_threshold: the region is m(x) >= relative_threshold * max m, with
        m = (p_data + p_g) / 2 the density of D's training inputs.
    Returns:
      `DiscriminatorError`.
    """
    log_p_data, log_p_g = _as_log_densities(log_p_data, log_p_g)
    d, d_star = np.asarray(d, np.float64), np.asarray(d_star, np.float64)
    if d.shape != d_star.shape or d.shape != log_p_data.shape:
        raise ValueError(f"d {d.shape}, d_star {d_star.shape} and the log-densities "
                         f"{log_p_data.shape} must have one shape.")
    log_m = np.logaddexp(log_p_data, log_p_g)
    region = log_m >= np.log(relative_threshold) + log_m.max()
    error = np.abs(d - d_star)[region]
    return DiscriminatorError(max=float(error.max()), mean=float(error.mean()),
                              region_fraction=float(region.mean()))


def frozen_generator_game(generator: Mixture, *, discriminator: nn.Module,
                          learning_rate: optax.ScalarOrSchedule) -> Game:
    """The adversarial game of a fixed `MixtureGenerator` against `discriminator`.

    `adversarial_game` with loss_type "minimax" (D minimizes the cross-entropy
    -V(D, G)), Adam for the discriminator team and `optax.set_to_zero()` for the
    generator team, whose density therefore stays `generator`'s. Batches are
    `{"x": [B, D]}` samples of p_data.
    """
    module = MixtureGenerator.of(generator)
    return adversarial_game(generator=module, discriminator=discriminator,
                            latent_dim=module.latent_dim, loss_type="minimax",
                            generator_optimizer=optax.set_to_zero(),
                            discriminator_optimizer=optax.adam(learning_rate),
                            data_key=DATA_KEY)


class DiscriminatorFit(NamedTuple):
    """A discriminator trained against a fixed generator, next to the closed form.

    Attributes:
      points: `[N, D]` grid midpoints.
      d, d_star: `[N]` learned D = sigmoid(logits) and D* there.
      log_p_data, log_p_g: `[N]` log-densities there.
      value: V(D_learned, G) by quadrature.
      optimal_value: V(D*, G) by quadrature.
      jsd: JSD(p_data || p_g) (`jensen_shannon_divergence`).
      d_loss: `[num_steps]` the discriminator's batch loss, an estimate of -V(D, G).
      state: the final `GameState`.
    """
    points: np.ndarray
    d: np.ndarray
    d_star: np.ndarray
    log_p_data: np.ndarray
    log_p_g: np.ndarray
    value: float
    optimal_value: float
    jsd: float
    d_loss: np.ndarray
    state: GameState


def train_discriminator_for_fixed_generator(
        data: Mixture, generator: Mixture, *, grid: QuadratureGrid, num_steps: int,
        batch_size: int = 256, learning_rate: float = 3e-3,
        hidden: Sequence[int] = (64, 64), seed: int = 0) -> DiscriminatorFit:
    """Trains an MLP discriminator alone against a fixed generator; compares with D*.

    Every step of `make_step(frozen_generator_game(...))` ("alternating", one D update)
    sees `batch_size` fresh samples of p_data and of p_g; all steps run in one jitted
    `lax.scan`.

    Args:
      data: p_data.
      generator: p_g, the fixed generator's distribution (same dimension).
      grid: where D and D* are compared and the integrals taken; must cover both.
      num_steps: discriminator updates.
      batch_size: real (and fake) samples per update.
      learning_rate: the discriminator's initial Adam step, cosine-decayed to 0.
      hidden: widths of the `MLPDiscriminator` hidden layers.
      seed: seeds init, data and noise.
    Returns:
      `DiscriminatorFit`.
    Raises:
      ValueError: dimensions disagree, or the grid misses more than 0.1 % of a density.
    """
    dim = data.means.shape[1]
    if generator.means.shape[1] != dim or grid.dim != dim:
        raise ValueError(f"data ({dim}-D), generator ({generator.means.shape[1]}-D) and "
                         f"grid ({grid.dim}-D) must have one dimension.")
    if num_steps < 1 or batch_size < 1:
        raise ValueError(f"num_steps and batch_size must be >= 1, got {num_steps}, "
                         f"{batch_size}.")
    points = grid.points
    log_p_data = np.asarray(mixture_log_density(data, points), np.float64)
    log_p_g = np.asarray(mixture_log_density(generator, points), np.float64)
    for name, log_p in (("data", log_p_data), ("generator", log_p_g)):
        mass = grid_mass(log_p, grid.cell_volume)
        if abs(mass - 1.0) > 1e-3:
            raise ValueError(f"The grid [{grid.low}, {grid.high}]^{dim} holds {mass:.4f} of "
                             f"the {name} density's mass; widen it or refine it.")

    # Cosine decay to 0 averages away the last steps' minibatch noise in D.
    game = frozen_generator_game(generator, discriminator=MLPDiscriminator(hidden=tuple(hidden)),
                                 learning_rate=optax.cosine_decay_schedule(learning_rate,
                                                                           num_steps))
    step = make_step(game, update_rule="alternating")
    init_key, data_key = jax.random.split(jax.random.key(seed))

    @jax.jit
    def train(state: GameState):
        def body(s, t):
            s, metrics = step(s, {DATA_KEY: data.sample(jax.random.fold_in(data_key, t),
                                                        batch_size)})
            return s, metrics["d_loss"]
        return jax.lax.scan(body, state, jnp.arange(num_steps))

    state, d_loss = train(game.init(init_key, {DATA_KEY: jnp.zeros((1, dim), jnp.float32)}))
    nets = game.bind(state, train=False, rng=jax.random.key(0))
    logits = np.asarray(nets(DISCRIMINATOR, jnp.asarray(points)), np.float64)
    return DiscriminatorFit(
        points=points, d=0.5 * (1.0 + np.tanh(0.5 * logits)),
        d_star=optimal_discriminator(log_p_data, log_p_g),
        log_p_data=log_p_data, log_p_g=log_p_g,
        value=game_value(logits, log_p_data, log_p_g, grid.cell_volume),
        optimal_value=game_value(optimal_discriminator_logit(log_p_data, log_p_g),
                                 log_p_data, log_p_g, grid.cell_volume),
        jsd=jensen_shannon_divergence(log_p_data, log_p_g),
        d_loss=np.asarray(d_loss), state=state)


def _as_log_densities(log_p, log_q) -> tuple[np.ndarray, np.ndarray]:
    log_p, log_q = np.asarray(log_p, np.float64), np.asarray(log_q, np.float64)
    if log_p.shape != log_q.shape or log_p.ndim != 1:
        raise ValueError(f"The two log-densities must be [N] at the same points, got "
                         f"shapes {log_p.shape} and {log_q.shape}.")
    if np.isnan(log_p).any() or np.isnan(log_q).any() or (log_p == np.inf).any() \
            or (log_q == np.inf).any():
        raise ValueError("The log-densities must be finite or -inf (a vanishing density).")
    return log_p, log_q
