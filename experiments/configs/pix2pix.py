"""pix2pix (Isola et al. 2017; `jgan.families.pix2pix`): paired image-to-image translation.

    --config=experiments/configs/pix2pix.py                    edges -> Fashion-MNIST items
                                                               (32 px, derived offline)
    --config=experiments/configs/pix2pix.py:folder_pairs       your A|B side-by-side files
                                                               (256 px RGB; --config.data.root=DIR,
                                                               with train/ and val/ or test/)
    --config=experiments/configs/pix2pix.py:edges2fashion,l1   the same U-Net trained with L1
                                                               only (the paper's ablation)
    append ,runlocal for the small variant that tests run

edges2fashion: Fashion-MNIST's items (zero-padded to 32 px) from their Sobel edge maps
(`jgan.data.derived_domains.EdgeMaps`); the U-Net halves 5 times (32 px to 1 px, as the
paper's 8 halvings of 256 px), the PatchGAN has one stride-2 layer (16 x 16 patches, half
the image as the paper's 70 px patches are about a quarter of 256 px). Batch norm with
the batch's statistics, dropout 0.5 at training and test time, lambda = 100, Adam 2e-4,
b1 0.5, batch 64. folder_pairs is the paper's setting: 256 px, 8 halvings, 70 x 70
patches, batch 1 (the paper's facades and maps), where batch norm is instance norm.
"""
from experiments.configs.base import base_config

TASKS = ("edges2fashion", "folder_pairs")
OPTIONS = ("l1", "runlocal")


def get_config(arg: str = "edges2fashion"):
    parts = [p for p in arg.split(",") if p]
    task = parts[0] if parts and parts[0] in TASKS else "edges2fashion"
    options = set(parts) - {task}
    if options - set(OPTIONS):
        raise ValueError(f"pix2pix.py takes '[{'|'.join(TASKS)}][,{'][,'.join(OPTIONS)}]', "
                         f"got {arg!r}.")
    c = base_config("pix2pix")
    c.data.kind = "translation"
    c.data.name = task
    c.eval.reference_split = "test"
    c.game.loss_type = "non_saturating"
    if task == "edges2fashion":
        c.data.resolution, c.data.channels, c.data.resize = 32, 1, "pad"
        c.pix2pix.generator_depth = 5
        c.pix2pix.discriminator_layers = 1
        c.batch_size = 64
        c.num_steps = 5_000
    else:
        c.data.resolution, c.data.channels = 256, 3
        c.eval.reference_split = "val"
        c.batch_size = 1
        c.num_steps = 200_000   # the paper: 200 epochs of the 400 facades, about 80k steps
    c.log_every = 100
    c.sample_every = 1_000
    c.checkpoint_every = 1_000
    c.num_sample_images = 16
    if "l1" in options:
        c.pix2pix.gan_weight = 0.0
    if "runlocal" in options:
        c.pix2pix.generator_width = c.pix2pix.discriminator_width = 8
        c.pix2pix.eval_examples = 16
        c.pix2pix.eval_batch_size = 8
        c.batch_size = 8 if task == "edges2fashion" else 2
        c.num_steps = 4
        c.log_every = c.sample_every = c.checkpoint_every = 2
        c.num_sample_images = 4
    return c
