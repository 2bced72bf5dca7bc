"""StarGAN (Choi et al. 2018; `jgan.families.stargan`): one generator for many domains.

    --config=experiments/configs/stargan.py               MNIST with three attributes
                                                          (colour, background, stroke),
                                                          derived offline
    --config=experiments/configs/stargan.py:mask          the same, as two datasets that
                                                          each know one group of labels
                                                          (colour; background and stroke):
                                                          the mask vector
    append ,runlocal for the small variant that tests run

Data: `jgan.data.derived_domains.AttributeDigits` at 32 px RGB (zero-padded), labels
[red, green, blue, textured, thick]. G: the ResNet translator (width 32, 6 blocks) on the
image and the replicated labels; D: 4 stride-2 layers (2 x 2 left) with the source and
attribute heads. WGAN-GP (10), lambda_cls 1, lambda_rec 10, 5 critic updates per G
update, Adam 1e-4 (b1 0.5, b2 0.999), batch 16.
"""
from experiments.configs.base import base_config

OPTIONS = ("mask", "runlocal")


def get_config(arg: str = ""):
    options = {p for p in arg.split(",") if p}
    if options - set(OPTIONS):
        raise ValueError(f"stargan.py takes '[mask][,runlocal]', got {arg!r}.")
    c = base_config("stargan")
    c.data.kind = "attribute_digits"
    c.data.name = "mnist"
    c.data.resolution, c.data.channels, c.data.resize = 32, 3, "pad"
    c.eval.reference_split = "test"
    c.game.d_steps = 5
    for o in c.optimizer.values():
        o.learning_rate, o.b1, o.b2 = 1e-4, 0.5, 0.999
    c.stargan.generator_width = 32
    c.stargan.discriminator_layers = 4
    c.batch_size = 16
    c.num_steps = 10_000
    c.log_every = 100
    c.sample_every = 1_000
    c.checkpoint_every = 1_000
    c.num_sample_images = 8
    if "mask" in options:
        c.stargan.label_groups = "0,1,2;3,4"
    if "runlocal" in options:
        c.stargan.generator_width = c.stargan.discriminator_width = 4
        c.stargan.generator_blocks = 1
        c.stargan.eval_examples = 16
        c.stargan.eval_batch_size = 8
        c.game.d_steps = 2
        c.batch_size = 8
        c.num_steps = 4
        c.log_every = c.sample_every = c.checkpoint_every = 2
        c.num_sample_images = 4
    return c
