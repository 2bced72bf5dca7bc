"""Model families: each builds a `jgan.game.Game` from its losses and networks."""
from jgan.families.adversarial import adversarial_game, discriminator_metrics, sample_latent

__all__ = ["adversarial_game", "discriminator_metrics", "sample_latent"]
