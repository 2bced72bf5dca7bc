"""Model families: each builds a `jgan.core.game.Game` from its losses and networks, and
registers itself (`jgan.families.registry`) with what a run needs of it: its config
keys and their checks, its networks and game, what its generator takes, and optionally
its own sample grids and evaluation. The GAN families (gan, conditional, acgan, infogan)
have two teams; the autoencoder and the VAE one; the adversarial autoencoder three
(reconstruction, discriminator, and the generator phase that borrows the encoder);
BiGAN / BigBiGAN two (the discriminator on pairs; the generator with the encoder); VAE-GAN
three (encoder, decoder, discriminator, each its own loss); pix2pix two (a PatchGAN
discriminator on pairs of domains; a U-Net generator from domain A to B); CycleGAN two
(two generators, A -> B and B -> A; two discriminators, with image pools in extras);
ADDA two stages (a source classifier, then a target encoder against a domain
discriminator, the source networks frozen); StarGAN two (one generator conditioned on
target attribute labels; a critic with a domain-classification head); ProGAN one stage
per resolution (its generator and discriminator growing 4x4 -> R, each new level faded
in); StyleGAN two (a style-based generator with a mapping network, per-layer modulation,
noise inputs and style mixing, its tracked average w in extras for truncation; ProGAN's
discriminator with R1).

Importing this package registers every family below; `jgan.families.evaluation` (the
metrics a family adds to a run's evaluation) is imported on its own.
"""
from jgan.families.acgan import acgan_game
from jgan.families.adversarial import (adversarial_game, discriminator_metrics, gan_game,
                                       sample_latent)
from jgan.families.conditional import conditional_game, sample_labels
from jgan.families.infogan import InfoGANCodes, QHead, infogan_game
from jgan.families.autoencoder import autoencoder_game
from jgan.families.vae import vae_game
from jgan.families.aae import aae_game
from jgan.families.bigan import bigan_game
from jgan.families.vaegan import vaegan_game
from jgan.families.pix2pix import pix2pix_game
from jgan.families.cyclegan import cyclegan_game
from jgan.families.adda import adapt_game, pretrain_game
from jgan.families.stargan import stargan_game
from jgan.families.progan import stage_game as progan_stage_game
from jgan.families.stylegan import stylegan_game
from jgan.families.penalty_terms import PenaltySettings, add_penalties
from jgan.families.registry import Family, family_names, get_family, register

__all__ = ["Family", "adapt_game", "pretrain_game", "InfoGANCodes", "PenaltySettings", "QHead", "aae_game", "acgan_game",
           "add_penalties", "bigan_game",
           "adversarial_game", "autoencoder_game", "conditional_game", "cyclegan_game", "discriminator_metrics", "family_names",
           "gan_game", "get_family", "infogan_game", "pix2pix_game", "progan_stage_game", "register", "sample_labels", "sample_latent", "stargan_game", "stylegan_game",
           "vae_game", "vaegan_game"]
