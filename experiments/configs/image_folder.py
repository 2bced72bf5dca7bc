"""A GAN on a folder of your own pictures (any sizes, e.g. a few hundred car photos).

    --config=experiments/configs/image_folder.py            DCGAN at 64 px
    --config=experiments/configs/image_folder.py:progan     progressive growing at 128 px
    --config=experiments/configs/image_folder.py:stylegan   StyleGAN2 at 128 px
    --config=experiments/configs/image_folder.py:stylegan,small      the small-data
        config: 64 px, DiffAugment (colour, translation, cutout) on every image D sees,
        FID at the end; its folder defaults to `workdirs/fashion500`, 500 Fashion-MNIST
        pictures that `python -m jgan.data.example_folder --out=workdirs/fashion500`
        writes offline (also with progan)
    append ,ada for ADA's tuned probability instead of DiffAugment's p = 1 (with
    stylegan,small; ProGAN's WGAN critic has no logit sign for ADA's heuristic),
    and ,runlocal for the small variant that tests run

Set `--config.data.root=/path/to/photos`: images are resized so the shorter side is
`data.resolution` and centre-cropped; `--config.data.skip_corrupt=True` skips and
counts unreadable files instead of stopping. FID compares with the training folder
itself (the few-shot protocol of DiffAugment and ADA), or with
`--config.eval.reference_root=DIR`. Augmentation is off without `small`: a large folder
does not need it.
"""
from experiments.configs import progan, stylegan
from experiments.configs.images import image_config

MODELS = ("dcgan", "progan", "stylegan")
OPTIONS = ("small", "ada", "runlocal")
EXAMPLE_FOLDER = "workdirs/fashion500"
POLICY = "color,translation,cutout"   # DiffAugment's for small sets


def get_config(arg: str = ""):
    parts = [p for p in arg.split(",") if p]
    models = [p for p in parts if p in MODELS]
    unknown = [p for p in parts if p not in MODELS + OPTIONS]
    if unknown or len(models) > 1:
        raise ValueError(f"image_folder.py takes '[{'|'.join(MODELS)}][,small][,ada]"
                         f"[,runlocal]', got {arg!r}.")
    model, options = (models or ["dcgan"])[0], set(parts) - set(MODELS)
    if options & {"small", "ada"} and model == "dcgan":
        raise ValueError("image_folder.py: 'small' and 'ada' augment D's inputs in the "
                         "progan and stylegan families; add one of them.")
    if "ada" in options and model == "progan":
        raise ValueError("image_folder.py: 'ada' needs a logistic discriminator (stylegan); "
                         "ProGAN's WGAN critic gives its heuristic no zero to read.")
    if "ada" in options and "small" not in options:
        raise ValueError("image_folder.py: 'ada' tunes the small-data config's "
                         "augmentation; write 'small,ada'.")
    runlocal = "runlocal" in options
    c = _base(model, runlocal)
    if "small" in options:
        _small_data(c, model, ada="ada" in options, runlocal=runlocal)
    return c


def _base(model: str, runlocal: bool):
    if model != "dcgan":
        module = progan if model == "progan" else stylegan
        return module.get_config("folder,runlocal" if runlocal else "folder")
    c = image_config(runlocal=runlocal)
    c.data.kind = "image_folder"
    c.data.name = "image_folder"
    c.data.resolution = 32 if runlocal else 64
    c.data.channels = 3
    c.game.ema_decay = 0.999
    return c


def _small_data(c, model: str, *, ada: bool, runlocal: bool):
    """A few hundred images at 64 px: augmented D inputs, FID against the folder."""
    c.data.root = EXAMPLE_FOLDER
    augment = c[model].augment
    augment.policy = POLICY
    if ada:
        # ADA starts at p = 0; 500k images to cross [0, 1] suits long GPU runs, a CPU run
        # of ~10k steps at batch 16 needs p to move ten times faster.
        augment.ada, augment.probability, augment.ada_speed_images = True, 0.0, 50_000
    c.eval.metrics = "fid"
    c.eval.num_samples = 5_000
    if runlocal:
        c.eval.metrics = ""
        return
    c.data.resolution = 64
    c.batch_size = 16
    if model == "progan":
        c.progan.stage_steps = 2_000
        c.num_steps = 5 * c.progan.stage_steps   # 4, 8, 16, 32, 64 px
    else:
        s = c.stylegan
        s.channel_base, s.channel_max = 4096, 256
        s.d_channel_base, s.d_channel_max = 2048, 256
        s.r1_gamma = 0.05   # the reference's heuristic 0.0002 * 64^2 / 16
        c.num_steps = 10_000
