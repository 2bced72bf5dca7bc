"""jgan: adversarial generative models in JAX.

Re-exported here: the objectives (`jgan.losses`, `jgan.penalties`, ...), `Game`, `Team`,
`GameState`, `TeamState`, `Networks`, the step functions and the GAN families. The
subpackages below are imported on their own (`import jgan.eval`, `from jgan.data import
...`), so that `import jgan` stays light:
  core         the game and its update rules:
    game         Game (static) and GameState / TeamState (pytrees)
    steps        make_step; alternating, simultaneous, extragradient, optimistic steps
  objectives   what the teams minimize:
    losses       minimax / non-saturating / Wasserstein / hinge / least-squares losses
    penalties    WGAN-GP gradient penalty, R1, R2
    auxiliary_losses  ACGAN's class loss, InfoGAN's information loss
    constraints  weight clipping (optax)
  sharding     shard_examples, on_mesh: self-drawn examples split over the mesh's batch axis
               data_mesh, place_on_mesh: the trainer's mesh and layout for your own loop
  families     adversarial_game (unconditional), conditional_game (cGAN, projection),
               acgan_game, infogan_game
  augmentations  random, differentiable style transformations (InfoGAN's augmented term)
  models       MLP, DCGAN and SNGAN ResNet networks, label conditioning
  data         2-D mixtures, TFDS and image-folder pipelines
  eval         FID, KID, IS, precision/recall, classifier metrics, Stacked MNIST, probes
  dynamics     the training-dynamics lab (docs/dynamics.md)
"""
from jgan import augmentations, sharding
from jgan.objectives import auxiliary_losses, constraints, losses, penalties
from jgan.families import acgan_game, adversarial_game, conditional_game, infogan_game
from jgan.core.game import Game, GameState, Networks, Team, TeamState
from jgan.core.steps import (
    alternating_step,
    extragradient_step,
    make_step,
    optimistic_step,
    simultaneous_step,
)

__all__ = [
    "Game", "GameState", "Networks", "Team", "TeamState",
    "acgan_game", "adversarial_game", "alternating_step", "augmentations", "auxiliary_losses",
    "conditional_game",
    "constraints", "extragradient_step", "infogan_game", "losses",
    "make_step", "optimistic_step", "penalties", "sharding", "simultaneous_step",
]
__version__ = "0.1.0"
