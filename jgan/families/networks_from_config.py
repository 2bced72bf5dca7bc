"""The unconditional generator and discriminator of `config.model`, which every GAN
family builds on (wrapping them with labels, heads or packs)."""
from __future__ import annotations

import ml_collections

from jgan.models import resnet
from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jgan.models.mlp import MLPDiscriminator, MLPGenerator


def unconditional_networks(config: ml_collections.ConfigDict):
    """`(generator, discriminator)` for `model.kind` ("mlp", "resnet" or "dcgan").

    ResNet widths: D `model.width`, G twice that (SNGAN's 128 / 256).
    `model.discriminator_width` (when > 0) sets the DCGAN discriminator's width instead
    of `model.width`.
    """
    m = config.model
    if m.kind == "mlp":
        d_hidden = tuple(m.discriminator_hidden) or tuple(m.hidden)
        return (MLPGenerator(hidden=tuple(m.hidden), output_dim=2),
                MLPDiscriminator(hidden=d_hidden, spectral_norm=m.spectral_norm))
    res = config.data.resolution
    if m.kind == "resnet":
        return (resnet.ResNetGenerator(width=2 * m.width, latent_dim=m.latent_dim,
                                       resolution=res, channels=config.data.channels),
                resnet.ResNetDiscriminator(width=m.width, spectral_norm=m.spectral_norm))
    d_width = m.discriminator_width or m.width
    return (DCGANGenerator(resolution=res, channels=config.data.channels, width=m.width,
                           dense_hidden=m.dense_hidden),
            DCGANDiscriminator(resolution=res, width=d_width, normalization=m.normalization,
                               spectral_norm=m.spectral_norm, dense_hidden=m.dense_hidden,
                               leaky_slope=m.leaky_slope))
