"""BigBiGAN (Donahue & Simonyan 2019; `jgan.families.bigan` with both unary terms) at
small scale.

    --config=experiments/configs/bigbigan.py:mnist           32 px (zero-padded), 1 channel
    --config=experiments/configs/bigbigan.py:fashion_mnist   32 px (zero-padded), 1 channel
    --config=experiments/configs/bigbigan.py:cifar10         32 px RGB, through TFDS (needs
                                                             a network to download it)
    --config=experiments/configs/bigbigan.py:mnist,large_batch   global batch 2,048,
                                                             data-parallel over the mesh
    --config=experiments/configs/bigbigan.py:mnist,small         CPU-sized, for the figures
                                                             of docs/encoders.md
    --config=experiments/configs/bigbigan.py:mnist,res128        at 128 px (`res64`: 64 px),
                                                             with any of the above

`res64` / `res128` take BigGAN's 64 / 128 px generator and discriminator
(`jgan.models.resnet`: one more up / down block per doubling, BigGAN's channel
multipliers of ch = width / 4, so the widths below are the 32 px ones) and bicubic
resizing of the data; the encoder is the same RevNet, its stages at 2x or 4x the
resolution. They also set `model.kind = "resnet"` (which networks the family builds
does not depend on it; `builders.validate` checks the resolution against the ResNet's
instead of the DCGAN's). Use the option rather than `--config.data.resolution`.

A BigGAN-style ResNet generator (batch norm, spectral norm, width 128), a stochastic
RevNet encoder (3 stages of 2 reversible blocks, widths 32-64-128, an MLP head of 256),
the pair discriminator (SNGAN ResNet trunk of width 64 for x, MLPs of 256 for z and for
the joint score), z ~ N(0, I) of 64 dimensions, the hinge losses of BigBiGAN; Adam(2e-4,
b1=0, b2=0.999) for both teams as BigGAN, batch 128, EMA of G and E (0.999).
Under large_batch the batch is split over every device of the mesh and batch norm's
statistics span the global batch (cross-replica), as jit over a sharded batch gives.
`,small` narrows every network (generator width 16; encoder widths 16-32-64 of one
block each; discriminator width 16, MLPs of 128), takes BigGAN's two time-scale rates
(discriminator 4e-4, encoder and generator 1e-4) and trains 2,000 steps at batch 64:
about 3 steps/s on one core of a 2-core CPU, the scale of the probe and ablation tables
in docs/encoders.md. Append `,runlocal` for the small variant that tests run.
"""
from experiments.configs.base import base_config

DATASETS = {"mnist": 1, "fashion_mnist": 1, "cifar10": 3}
OPTIONS = ("large_batch", "small", "runlocal", "res64", "res128")
RESOLUTIONS = {"res64": 64, "res128": 128}


def parse(arg: str, name: str) -> tuple[str, set]:
    """`(dataset, options)` of a `DATASET[,large_batch|small][,res64|res128][,runlocal]`
    argument."""
    parts = [p for p in arg.split(",") if p]
    if not parts or parts[0] not in DATASETS or set(parts[1:]) - set(OPTIONS):
        raise ValueError(f"{name} takes '{'|'.join(DATASETS)}[,{'][,'.join(OPTIONS)}]', "
                         f"got {arg!r}.")
    if {"large_batch", "small"} <= set(parts):
        raise ValueError(f"{name}: large_batch and small do not go together, got {arg!r}.")
    if set(RESOLUTIONS) <= set(parts):
        raise ValueError(f"{name}: res64 and res128 do not go together, got {arg!r}.")
    return parts[0], set(parts[1:])


def get_config(arg: str = "mnist"):
    dataset, options = parse(arg, "bigbigan.py")
    c = base_config("bigan")
    c.data.kind = "tfds"
    c.data.name = dataset
    c.data.channels = DATASETS[dataset]
    c.data.resolution = 32
    c.data.resize = "pad" if c.data.channels == 1 else "bicubic"
    for option, resolution in RESOLUTIONS.items():
        if option in options:
            c.data.resolution = resolution
            c.data.resize = "bicubic"
            c.model.kind = "resnet"
    c.data.on_device = dataset != "cifar10"
    c.game.loss_type = "hinge"
    c.game.ema_decay = 0.999
    for o in c.optimizer.values():
        o.learning_rate = 2e-4
        o.b1 = 0.0
    c.batch_size = 128
    c.num_steps = 20_000
    c.log_every = 200
    c.sample_every = 2_000
    c.checkpoint_every = 5_000
    if "large_batch" in options:
        c.batch_size = 2048
        c.num_steps = 5_000
        c.log_every = 50
        c.sample_every = 500
        c.checkpoint_every = 500
    if "small" in options:
        apply_small(c)
    if "runlocal" in options:
        apply_runlocal(c, large_batch="large_batch" in options)
    return c


def apply_small(c):
    """CPU-sized networks and run (the docs/encoders.md tables): the encoder is the one of
    the other families' `,revnet,small` (`encoder_decoder.use_residual_encoder`)."""
    b = c.bigan
    b.generator_width = 16
    b.encoder_widths = (16, 32, 64)
    b.encoder_blocks = 1
    b.discriminator_width = 16
    b.latent_hidden = (128, 128)
    b.joint_hidden = (128, 128)
    # BigGAN's two time-scale rates: at equal rates the small discriminator sits at chance
    # (loss 5.8 of 6) although alone it learns; docs/encoders.md has the screen.
    c.optimizer.discriminator.learning_rate = 4e-4
    c.optimizer.generator.learning_rate = 1e-4
    c.batch_size = 64
    c.num_steps = 2_000
    c.log_every = 100
    c.sample_every = 1_000
    c.checkpoint_every = 500
    return c


def apply_runlocal(c, *, large_batch: bool = False):
    """Tiny networks, a few steps (a batch of 16 under large_batch, 2 per fake device)."""
    b = c.bigan
    b.latent_dim = 8
    b.generator_width = 8
    b.encoder_widths = (4, 8)
    b.encoder_blocks = 1
    b.encoder_head_hidden = (16,)
    b.discriminator_width = 8
    b.latent_hidden = (16,)
    b.joint_hidden = (16,)
    b.eval_examples = 32
    b.eval_batch_size = 16
    c.eval.probe_train = 64
    c.data.on_device = False
    c.batch_size = 16 if large_batch else 8
    c.num_steps = 4
    c.log_every = c.sample_every = c.checkpoint_every = 2
    c.num_sample_images = 4
    return c
