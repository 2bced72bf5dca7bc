"""The MNIST classifier that scores samples of MNIST GANs (target: >= 99.3% test accuracy).

`:runlocal` gives the small variant that tests run.
"""
from experiments.configs.classifier_base import classifier_config


def get_config(arg: str = ""):
    return classifier_config(dataset="mnist", num_steps=2000, runlocal="runlocal" in arg)
