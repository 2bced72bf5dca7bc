"""Stacked MNIST protocol on real data: the ceiling a generator is measured against.

26,000 real Stacked MNIST images (three MNIST test digits per image), each channel
classified by a trained jgan MNIST classifier, should cover all 1,000 modes with a KL
to uniform near the finite-sample floor (about 999 / (2 * 26,000) = 0.019 nats); the
same images scored with their true labels show how much of the rest is classifier error.

  python benchmarks/stacked_mnist_real.py --data_dir=../shared/data/tfds \
      --classifier_workdir=workdirs/classifier_mnist

A GAN's numbers come from `python -m jgan.evaluate --workdir=RUN --metrics=stacked_mnist
--num_samples=26000 --classifier_workdir=...`.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from jgan.data.stacked_mnist import stacked_mnist_source
from jgan.eval.classifier import load_classifier
from jgan.eval.stacked_mnist import PROTOCOL_NUM_SAMPLES, stacked_mnist_modes


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data_dir", required=True)
    p.add_argument("--classifier_workdir", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)

    source = stacked_mnist_source(args.split, args.data_dir, num_examples=PROTOCOL_NUM_SAMPLES,
                                  seed=args.seed)
    examples = [source[i] for i in range(len(source))]
    images = np.stack([e["image"] for e in examples])
    labels = np.array([e["label"] for e in examples])
    classifier = load_classifier(args.classifier_workdir)
    predicted = stacked_mnist_modes(images, lambda x: classifier.logits_and_features(x)[0])
    # The true digits, channel by channel, as an oracle classifier.
    truth = iter(np.stack([labels // 100, labels // 10 % 10, labels % 10], 1).T.reshape(-1))
    oracle = stacked_mnist_modes(images, lambda x: np.array([next(truth) for _ in x]),
                                 batch_size=len(images))
    out = {"classifier": {k: predicted[k] for k in ("modes", "kl", "num_samples")},
           "true_labels": {k: oracle[k] for k in ("modes", "kl", "num_samples")},
           "split": args.split, "classifier_workdir": args.classifier_workdir,
           "classifier_step": classifier.step}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
