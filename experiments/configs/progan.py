"""Progressive growing of GANs (Karras et al. 2018; `jgan.families.progan`).

    --config=experiments/configs/progan.py                 Fashion-MNIST at 32 px (4 stages:
                                                           4, 8, 16, 32 px), offline
    --config=experiments/configs/progan.py:fashion_mnist64 Fashion-MNIST resized to 64 px
                                                           (5 stages)
    --config=experiments/configs/progan.py:folder          your photos at 128 px RGB
                                                           (--config.data.root=DIR; any
                                                           sizes, resized and centre-cropped)
    append ,runlocal for the small variant that tests run (8 px, 2 stages of 4 steps)

The paper's recipe at CPU-sized widths: WGAN-GP (10) with drift 0.001, Adam 1e-3
(b1 0, b2 0.99), fresh moments each stage, the new level faded in over the first half
of its stage, G's EMA 0.999, minibatch standard deviation (groups of 4). The paper
shows 600k images per fade and 600k stable at each resolution and widths up to 512
(`progan.channel_base = 8192`, `max_channels = 512`, `latent_dim = 512`).
"""
from experiments.configs.base import base_config

TASKS = ("fashion_mnist", "fashion_mnist64", "folder")


def get_config(arg: str = "fashion_mnist"):
    parts = [p for p in arg.split(",") if p]
    runlocal = "runlocal" in parts
    parts = [p for p in parts if p != "runlocal"]
    task = parts[0] if parts else "fashion_mnist"
    if len(parts) > 1 or task not in TASKS:
        raise ValueError(f"progan.py takes '[{'|'.join(TASKS)}][,runlocal]', got {arg!r}.")
    c = base_config("progan")
    c.game.loss_type = "wasserstein"
    c.game.ema_decay = 0.999
    for o in c.optimizer.values():
        o.learning_rate, o.b1, o.b2 = 1e-3, 0.0, 0.99
    if task == "folder":
        c.data.kind, c.data.name = "image_folder", "image_folder"
        c.data.resolution, c.data.channels = 128, 3
        c.progan.channel_base, c.progan.max_channels = 4096, 256
    else:
        c.data.name = "fashion_mnist"
        c.data.resolution = 64 if task == "fashion_mnist64" else 32
        c.data.resize = "bicubic" if task == "fashion_mnist64" else "pad"
    c.batch_size = 32
    c.log_every = 100
    c.sample_every = 1_000
    c.checkpoint_every = 1_000
    c.num_sample_images = 36
    if runlocal:
        c.data.resolution, c.data.resize = 8, "bicubic"
        c.progan.stage_steps = 4
        c.progan.latent_dim = 8
        c.progan.channel_base, c.progan.max_channels = 16, 8
        c.batch_size = 8
        c.log_every = c.sample_every = c.checkpoint_every = 2
        c.num_sample_images = 4
    c.num_steps = (c.data.resolution.bit_length() - 2) * c.progan.stage_steps
    return c
