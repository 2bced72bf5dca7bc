"""DCGAN on Stacked MNIST (three MNIST digits in RGB, 1,000 modes; Lin et al. 2018, PacGAN).

The core DCGAN of `dcgan_mnist.py` (non-saturating loss, batch norm, Adam(2e-4, 0.5),
EMA generator weights) with 3 output channels. `data.num_examples` stacked examples
are drawn from MNIST train with seed `data.stack_seed` (the dataset, fixed across
training seeds); see `jgan.data.stacked_mnist`. Evaluate mode coverage with
`jgan.eval.stacked_mnist.stacked_mnist_modes` on 26,000 samples.

`:runlocal` gives the small variant that tests run.
"""
from experiments.configs.images import image_config


def get_config(arg: str = ""):
    c = image_config(dataset="mnist", runlocal="runlocal" in arg)
    c.data.kind = "stacked_mnist"
    c.data.name = "stacked_mnist"
    c.data.channels = 3
    c.data.num_examples = 128_000  # jgan.data.stacked_mnist.DEFAULT_NUM_EXAMPLES
    c.data.stack_seed = 0
    c.game.ema_decay = 0.999
    return c
