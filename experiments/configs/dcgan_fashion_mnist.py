"""DCGAN on Fashion-MNIST, with EMA generator weights. `:runlocal` for the small variant."""
from experiments.configs.images import image_config


def get_config(arg: str = ""):
    c = image_config(dataset="fashion_mnist", runlocal="runlocal" in arg)
    c.game.ema_decay = 0.999
    return c
