"""jgan: adversarial generative models in JAX.

The public pieces, re-exported here:
  losses       minimax / non-saturating / Wasserstein / hinge / least-squares losses
  penalties    WGAN-GP gradient penalty, R1, R2
  constraints  weight clipping (optax)
  game         Game (static) and GameState / TeamState (pytrees)
  steps        make_step; alternating, simultaneous, extragradient, optimistic steps
  families     adversarial_game (unconditional GANs)
  models       MLP and DCGAN networks
  data         2-D mixtures, TFDS and image-folder pipelines
  eval         FID, KID, IS, precision/recall, classifier metrics, Stacked MNIST, probes
  dynamics     the training-dynamics lab (docs/dynamics.md)
"""
from jgan import constraints, losses, penalties
from jgan.families import adversarial_game
from jgan.game import Game, GameState, Networks, TeamState
from jgan.steps import (
    alternating_step,
    extragradient_step,
    make_step,
    optimistic_step,
    simultaneous_step,
)

__all__ = [
    "Game", "GameState", "Networks", "TeamState",
    "adversarial_game", "alternating_step", "constraints", "extragradient_step", "losses",
    "make_step", "optimistic_step", "penalties", "simultaneous_step",
]
__version__ = "0.1.0"
