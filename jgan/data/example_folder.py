"""A folder of a few hundred pictures made offline from Fashion-MNIST, to stand in for
a user's own photos: the small-data configs' default, and what tests and figures use.

    python -m jgan.data.example_folder --out=workdirs/fashion500
    python -m jgan.data.example_folder --out=workdirs/fashion_test --split=test --num=10000

writes `num` PNGs `item_00000.png`, ... (RGB, `resolution` px, the 28 px items resized
by PIL's bicubic filter and replicated to three channels, as a colour photo folder
reads) of the examples a seeded permutation of the split picks first. The same
arguments give the same files, byte for byte: the permutation is
`np.random.default_rng(seed).permutation(len(split))`. A train folder and a test folder
never share an item, so the test folder is a held-out reference for FID
(`--config.eval.reference_root`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from jgan.data.images import DataError, tfds_source

DATASET = "fashion_mnist"
MANIFEST = "example_folder.json"


def example_indices(size: int, num: int, seed: int) -> np.ndarray:
    """The split's record indices of the folder's items, `[num]` int64, in file order."""
    if not 1 <= num <= size:
        raise DataError(f"--num={num}: the split has {size} examples; ask for 1 to {size}.")
    return np.random.default_rng(seed).permutation(size)[:num]


def to_picture(image: np.ndarray, resolution: int) -> Image.Image:
    """A `[28, 28, 1]` uint8 item as an RGB PIL image of `resolution` px (bicubic)."""
    pil = Image.fromarray(np.asarray(image)[..., 0], mode="L")
    if resolution != pil.width:
        pil = pil.resize((resolution, resolution), Image.BICUBIC)
    return pil.convert("RGB")


def write_example_folder(out: str | Path, *, num: int = 500, resolution: int = 64,
                         split: str = "train", seed: int = 0,
                         data_dir: str | None = None) -> Path:
    """Writes the folder (see the module docstring) and its manifest; returns its path.

    Raises:
      DataError: `out` holds files already (names it), or `num` exceeds the split.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} is not empty; write the example folder to a new folder.")
    source = tfds_source(DATASET, split=split, data_dir=data_dir)
    indices = example_indices(len(source), num, seed)
    out.mkdir(parents=True, exist_ok=True)
    for position, index in enumerate(indices):
        to_picture(source[int(index)]["image"], resolution).save(
            out / f"item_{position:05d}.png", optimize=False)
    (out / MANIFEST).write_text(json.dumps(
        {"dataset": DATASET, "split": split, "num": num, "resolution": resolution,
         "seed": seed, "indices": [int(i) for i in indices]}, indent=1))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="a new (or empty) folder")
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--split", default="train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_dir", default=None,
                        help="TFDS data_dir holding fashion_mnist (default: $TFDS_DATA_DIR)")
    a = parser.parse_args(argv)
    path = write_example_folder(a.out, num=a.num, resolution=a.resolution, split=a.split,
                                seed=a.seed, data_dir=a.data_dir)
    print(f"Wrote {a.num} pictures of {a.resolution} px to {path}")


if __name__ == "__main__":
    main()
