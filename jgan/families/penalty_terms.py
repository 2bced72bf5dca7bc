"""The gradient penalties a family adds to its discriminator loss, in one place.

Every family (unconditional, conditional, ACGAN, InfoGAN) offers the same three
penalties on the discriminator's input gradients; this module adds the weighted terms
and their metrics so that no family repeats the bookkeeping.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

from jgan.objectives import penalties
from jgan.core.game import Metrics


@dataclasses.dataclass(frozen=True)
class PenaltySettings:
    """Weights of the discriminator's gradient penalties; all 0 disables them.

    Attributes:
      gradient_penalty_weight: lambda of WGAN-GP (10 in Gulrajani et al. 2017).
      gradient_penalty_one_sided: penalize only norms above the target.
      gradient_penalty_target: the target norm (1 for WGAN-GP).
      r1_gamma: gamma of R1 on real data (Mescheder et al. 2018); adds gamma / 2 * R1.
      r2_gamma: gamma of R2 on fakes; adds gamma / 2 * R2.
    """
    gradient_penalty_weight: float = 0.0
    gradient_penalty_one_sided: bool = False
    gradient_penalty_target: float = 1.0
    r1_gamma: float = 0.0
    r2_gamma: float = 0.0


def add_penalties(loss: jax.Array, metrics: Metrics, *, critic: Callable[[jax.Array], jax.Array],
                  real: jax.Array, fake: jax.Array, rng: jax.Array,
                  settings: PenaltySettings,
                  fake_critic: Callable[[jax.Array], jax.Array] | None = None
                  ) -> tuple[jax.Array, Metrics]:
    """`loss` plus the enabled penalties of `critic`, and their values in `metrics`.

    loss + lambda * GP(interpolates of real and fake) + gamma_1 / 2 * R1(real)
         + gamma_2 / 2 * R2(fake), with `jgan.objectives.penalties`' definitions.

    Args:
      loss: scalar discriminator loss.
      metrics: the loss's metrics; a copy with `gradient_penalty`, `r1_penalty`,
        `r2_penalty` for the enabled terms is returned.
      critic: `x [N, ...] -> [N]` scores, the discriminator with whatever it is
        conditioned on held fixed, not updating its mutable collections.
      real, fake: `[N, ...]` inputs of `critic`.
      rng: key of the interpolation weights.
      settings: the weights.
      fake_critic: the critic R2 differentiates at the fakes, when they are judged
        under another condition than the real data (a conditional game's fake labels);
        None: `critic`. The WGAN-GP interpolates are judged by `critic`.
    Returns:
      `(loss, metrics)`.
    """
    metrics = dict(metrics)
    s = settings
    if s.gradient_penalty_weight:
        gp = penalties.gradient_penalty(critic, real=real, fake=fake, rng=rng,
                                        target=s.gradient_penalty_target,
                                        one_sided=s.gradient_penalty_one_sided)
        loss += s.gradient_penalty_weight * gp
        metrics["gradient_penalty"] = gp
    if s.r1_gamma:
        r1 = penalties.r1_penalty(critic, real=real)
        loss += 0.5 * s.r1_gamma * r1
        metrics["r1_penalty"] = r1
    if s.r2_gamma:
        r2 = penalties.r2_penalty(fake_critic or critic, fake=fake)
        loss += 0.5 * s.r2_gamma * r2
        metrics["r2_penalty"] = r2
    return loss, metrics
