"""Style-based generator, StyleGAN2's by default (`jgan.families.stylegan`).

    --config=experiments/configs/stylegan.py          Fashion-MNIST zero-padded to 32 px,
                                                      offline (--config.data.data_dir=DIR)
    --config=experiments/configs/stylegan.py:folder   your photos at 128 px RGB
                                                      (--config.data.root=DIR; any sizes,
                                                      resized and centre-cropped)
    append ,runlocal for the small variant that tests run (8 px, 4 steps, batch 8)

    --config.stylegan.modulation=adain                StyleGAN's AdaIN instead of
                                                      StyleGAN2's weight demodulation

The recipe of stylegan2-ada-pytorch's small-image configs at CPU-sized widths: the
non-saturating logistic loss, R1 on reals with gamma 0.01 (its 32-px `cifar` config;
StyleGAN2 uses 10 at 1024 px), style mixing with probability 0.9, Adam 0.0025 (b1 0,
b2 0.99; StyleGAN2's 1024-px config-f uses 0.002), the mapping network at 0.01 of it,
G's EMA 0.998 (a half-life of 10k images at batch 32: the reference's ema_kimg = 10,
0.5 ** (32 / 10000)), w_avg tracked with decay 0.995. Every step regularizes (no lazy
R1 every 16 minibatches, no path length regularization). The papers' widths: latent
and w 512, `stylegan.channel_base = 32768`, `channel_max = 512` (and D's
`d_channel_base = 16384`, `d_channel_max = 512`).
"""
from experiments.configs.base import base_config

TASKS = ("fashion_mnist", "folder")


def get_config(arg: str = "fashion_mnist"):
    parts = [p for p in arg.split(",") if p]
    runlocal = "runlocal" in parts
    parts = [p for p in parts if p != "runlocal"]
    task = parts[0] if parts else "fashion_mnist"
    if len(parts) > 1 or task not in TASKS:
        raise ValueError(f"stylegan.py takes '[{'|'.join(TASKS)}][,runlocal]', got {arg!r}.")
    c = base_config("stylegan")
    c.game.loss_type = "non_saturating"
    c.game.ema_decay = 0.998
    for o in c.optimizer.values():
        o.learning_rate, o.b1, o.b2 = 2.5e-3, 0.0, 0.99
    if task == "folder":
        c.data.kind, c.data.name = "image_folder", "image_folder"
        c.data.resolution, c.data.channels = 128, 3
        c.stylegan.channel_base, c.stylegan.channel_max = 8192, 256
        c.stylegan.d_channel_base, c.stylegan.d_channel_max = 4096, 256
        c.stylegan.r1_gamma = 0.2   # the reference's heuristic 0.0002 * 128^2 / 16 ~ 0.2
        c.batch_size = 16
    else:
        c.data.name = "fashion_mnist"
        c.data.resolution, c.data.resize = 32, "pad"
        c.batch_size = 32
    c.num_steps = 20_000
    c.log_every = 100
    c.sample_every = 1_000
    c.checkpoint_every = 1_000
    c.num_sample_images = 36
    if runlocal:
        c.data.resolution, c.data.resize = 8, "bicubic"
        s = c.stylegan
        s.latent_dim = s.w_dim = 8
        s.mapping_layers = 2
        s.channel_base, s.channel_max = 64, 8      # 8 channels at 4 and 8 px
        s.d_channel_base, s.d_channel_max = 32, 8
        c.num_steps = 4
        c.batch_size = 8
        c.log_every = c.sample_every = c.checkpoint_every = 2
        c.num_sample_images = 4
    return c
