"""Model families: each builds a `jgan.core.game.Game` from its losses and networks."""
from jgan.families.acgan import acgan_game
from jgan.families.adversarial import adversarial_game, discriminator_metrics, gan_game, sample_latent
from jgan.families.conditional import conditional_game, sample_labels
from jgan.families.infogan import InfoGANCodes, QHead, infogan_game
from jgan.families.penalty_terms import PenaltySettings, add_penalties

__all__ = ["InfoGANCodes", "PenaltySettings", "QHead", "acgan_game", "add_penalties",
           "adversarial_game", "conditional_game", "discriminator_metrics", "gan_game", "infogan_game",
           "sample_labels", "sample_latent"]
