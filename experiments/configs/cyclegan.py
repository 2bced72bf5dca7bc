"""CycleGAN (Zhu et al. 2017; `jgan.families.cyclegan`): unpaired translation.

    --config=experiments/configs/cyclegan.py                   MNIST <-> textured MNIST
                                                               (28 px RGB, derived offline)
    --config=experiments/configs/cyclegan.py:mnist2digits8     MNIST <-> scikit-learn's
                                                               8x8 digits (a second writer
                                                               population)
    --config=experiments/configs/cyclegan.py:folder_domains    your trainA/ trainB/ testA/
                                                               testB/ (256 px RGB;
                                                               --config.data.root=DIR)
    --config=experiments/configs/cyclegan.py:tfds:cycle_gan/horse2zebra
                                                               TFDS (prepared under data_dir)
    append ,runlocal for the small variant that tests run

At 28 px the generators have width 32 and 6 residual blocks and the PatchGANs two
stride-2 layers (34 px patches); at 256 px the paper's: width 64, 9 blocks, 70 px
patches, batch 1. Least-squares losses, lambda = 10, identity 0.5 lambda, pools of 50,
Adam 2e-4 (b1 0.5), constant for the first half of the steps and then decayed linearly
to zero.
"""
from experiments.configs.base import base_config

SMALL_TASKS = ("mnist2textured", "mnist2digits8")


def get_config(arg: str = "mnist2textured"):
    parts = [p for p in arg.split(",") if p]
    runlocal = "runlocal" in parts
    parts = [p for p in parts if p != "runlocal"]
    task = parts[0] if parts else "mnist2textured"
    if len(parts) > 1 or not (task in SMALL_TASKS or task == "folder_domains"
                              or task.startswith("tfds:")):
        raise ValueError(f"cyclegan.py takes '[{'|'.join(SMALL_TASKS)}|folder_domains|"
                         f"tfds:NAME][,runlocal]', got {arg!r}.")
    c = base_config("cyclegan")
    c.data.kind = "translation"
    c.data.name = task
    c.game.loss_type = "least_squares"
    c.eval.reference_split = "test"
    for o in c.optimizer.values():
        o.learning_rate, o.b1, o.schedule = 2e-4, 0.5, "linear_decay"
    if task in SMALL_TASKS:
        c.data.resolution, c.data.channels = 28, 3 if task == "mnist2textured" else 1
        c.cyclegan.generator_width = 32
        c.cyclegan.generator_blocks = 6
        c.cyclegan.discriminator_layers = 2
        c.batch_size = 16
        c.num_steps = 10_000
    else:
        c.data.resolution, c.data.channels = 256, 3
        c.batch_size = 1
        c.num_steps = 200_000   # the paper: 200 epochs of about 1,000 images
    c.log_every = 100
    c.sample_every = 1_000
    c.checkpoint_every = 1_000
    c.num_sample_images = 16
    if runlocal:
        c.cyclegan.generator_width = c.cyclegan.discriminator_width = 4
        c.cyclegan.generator_blocks = 1
        c.cyclegan.pool_size = 12   # full after the second step: the swaps run too
        c.cyclegan.eval_examples = 8
        c.cyclegan.eval_batch_size = 8
        c.batch_size = 8
        c.num_steps = 4
        c.log_every = c.sample_every = c.checkpoint_every = 2
        c.num_sample_images = 4
    return c
