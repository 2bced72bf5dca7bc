"""DCGAN on a folder of the user's own pictures (any sizes, e.g. 100x100 car photos).

Images are resized so the shorter side is `data.resolution` and center-cropped;
set `--config.data.root=/path/to/photos`. `--config.data.skip_corrupt=True` skips and
counts unreadable files instead of stopping. `:runlocal` for the small variant.
"""
from experiments.configs.images import image_config


def get_config(arg: str = ""):
    c = image_config(runlocal="runlocal" in arg)
    c.data.kind = "image_folder"
    c.data.name = "image_folder"
    c.data.resolution = 64
    c.data.channels = 3
    c.game.ema_decay = 0.999
    if "runlocal" in arg:
        c.data.resolution = 32
    return c
