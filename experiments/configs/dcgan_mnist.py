"""DCGAN (Radford et al. 2016) on MNIST: non-saturating loss, batch norm, Adam(2e-4, 0.5).

`:runlocal` gives the small variant that tests run.
"""
from experiments.configs.images import image_config


def get_config(arg: str = ""):
    return image_config(dataset="mnist", runlocal="runlocal" in arg)
