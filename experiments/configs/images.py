"""Shared settings of the image experiments (DCGAN-family networks)."""
from experiments.configs.base import base_config


def image_config(*, dataset: str = "mnist", runlocal: bool = False):
    c = base_config()
    c.data.kind = "tfds"
    c.data.name = dataset
    c.data.resolution = 28
    c.data.channels = 1
    c.model.kind = "dcgan"
    c.model.width = 64
    c.batch_size = 64
    c.num_steps = 5000
    c.log_every = 100
    c.sample_every = 500
    c.checkpoint_every = 1000
    if runlocal:
        apply_runlocal(c)
    return c


def apply_runlocal(c):
    """The small variant tests run end to end: a tiny network, a few steps."""
    c.model.width = 8
    c.batch_size = 8
    c.num_steps = 4
    c.log_every = 2
    c.sample_every = 2
    c.checkpoint_every = 2
    c.num_sample_images = 4
    return c
