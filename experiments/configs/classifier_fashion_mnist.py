"""The Fashion-MNIST classifier that scores samples of Fashion-MNIST GANs (target: >= 92%
test accuracy). Clothes, unlike digits, may be mirrored left-right for augmentation.

`:runlocal` gives the small variant that tests run.
"""
from experiments.configs.classifier_base import classifier_config


def get_config(arg: str = ""):
    c = classifier_config(dataset="fashion_mnist", num_steps=3000, runlocal="runlocal" in arg)
    c.augment.horizontal_flip = True
    return c
