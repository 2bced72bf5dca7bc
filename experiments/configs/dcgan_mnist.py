"""DCGAN (Radford et al. 2016) on MNIST: non-saturating loss, batch norm, Adam(2e-4, 0.5).

Keeps EMA generator weights (decay 0.999); samples and `jgan.sample` use them.

`:runlocal` gives the small variant that tests run.
"""
from experiments.configs.images import image_config


def get_config(arg: str = ""):
    c = image_config(dataset="mnist", runlocal="runlocal" in arg)
    c.game.ema_decay = 0.999
    return c
