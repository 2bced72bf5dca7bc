"""WGAN-GP (Gulrajani et al. 2017) on MNIST.

Wasserstein loss, gradient penalty lambda = 10, 5 critic steps per generator step,
Adam(1e-4, 0.5, 0.9) as in the paper, and no batch norm in the critic (layer norm, as
the paper advises: the penalty is per example). `:runlocal` for the small variant.
"""
from experiments.configs.images import apply_runlocal, image_config


def get_config(arg: str = ""):
    c = image_config(dataset="mnist")
    c.game.loss_type = "wasserstein"
    c.game.gradient_penalty_weight = 10.0
    c.game.d_steps = 5
    c.model.normalization = "layer"
    for team in ("generator", "discriminator"):
        c.optimizer[team].learning_rate = 1e-4
        c.optimizer[team].b1 = 0.5
        c.optimizer[team].b2 = 0.9
    if "runlocal" in arg:
        apply_runlocal(c)
        c.game.d_steps = 2
    return c
