"""FID, KID and precision/recall between two real image sets, with their protocol.

The reference figures of the evaluation suite: how far apart two splits of one dataset
are (MNIST train vs test: near the floor a perfect generator would reach with this many
samples) and two different datasets (MNIST test vs Fashion-MNIST test). The second set
goes through exactly the path generated samples take (floats in [-1, 1], quantized to
uint8, resized, Inception pool3), and the first is the cached reference.

  python benchmarks/fid_between_datasets.py --data_dir=../shared/data/tfds \
      --inception_weights=../shared/data/fid/inception_v3_fid_pool3_pytorchfid_names.npz

`--fashion_data_dir` points at a TFDS dir with a genuine Fashion-MNIST when the main
one's copy is not (see the closing note of the evaluation issue).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from jgan.eval import suite


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data_dir", required=True)
    p.add_argument("--fashion_data_dir", default=None)
    p.add_argument("--inception_weights", default=None)
    p.add_argument("--num", type=int, default=10_000, help="images on each side")
    p.add_argument("--resize_method", default="pil_bicubic")
    p.add_argument("--batch_size", type=int, default=50)
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    return p.parse_args(argv)


def as_samples(settings: suite.EvalSettings, num: int, batch_size: int):
    """A real split as the float batches a generator would give."""
    images = suite.real_images(settings, num)
    for i in range(0, num, batch_size):
        yield images[i:i + batch_size].astype(np.float32) / 127.5 - 1.0


def main(args):
    reference = suite.EvalSettings(
        metrics=("fid", "kid", "pr"), dataset="mnist", split="test", resolution=28,
        channels=1, data_dir=args.data_dir, num_samples=args.num, num_real=args.num,
        resize_method=args.resize_method, inception_weights=args.inception_weights,
        batch_size=args.batch_size)
    evaluator = suite.Evaluator(reference)
    pairs = {
        "mnist_train_vs_mnist_test": reference.__class__(
            **{**reference.__dict__, "split": f"train[:{args.num}]"}),
        "fashion_mnist_test_vs_mnist_test": reference.__class__(
            **{**reference.__dict__, "dataset": "fashion_mnist",
               "data_dir": args.fashion_data_dir or args.data_dir}),
    }
    results = {}
    for name, other in pairs.items():
        t = time.time()
        r = evaluator.evaluate(as_samples(other, args.num, args.batch_size))
        results[name] = {"samples": f"{other.dataset}/{other.split}", **r}
        print(f"{name}: FID {r['fid']['value']:.3f}  KID {r['kid']['mean']:.5f} "
              f"+- {r['kid']['std']:.5f}  precision {r['pr']['precision']:.3f} "
              f"recall {r['pr']['recall']:.3f}  ({time.time() - t:.0f} s)", flush=True)
    print(json.dumps({k: v["fid"]["protocol"] for k, v in results.items()}, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main(parse_args())
