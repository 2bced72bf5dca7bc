"""SNGAN (Miyato et al. 2018) on MNIST: hinge loss, spectral norm in every D layer.

No batch norm in the discriminator; Adam(2e-4, 0.5, 0.999). `:runlocal` for the small
variant.
"""
from experiments.configs.images import image_config


def get_config(arg: str = ""):
    c = image_config(dataset="mnist", runlocal="runlocal" in arg)
    c.game.loss_type = "hinge"
    c.model.spectral_norm = True
    c.model.normalization = "none"
    return c
