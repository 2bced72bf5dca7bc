"""A small CNN that classifies 28x28 digits or clothes; its features serve evaluation.

The classifier's predictions score conditional samples (class accuracy) and
unconditional ones (class histogram), and its penultimate features give a Frechet
distance that is cheap on CPU (see `jgan.eval.classifier`).
"""
from __future__ import annotations

import flax.linen as nn
import jax


class DigitClassifier(nn.Module):
    """conv(w)-pool-conv(2w)-pool-conv(4w)-pool-dense(features)-dense(num_classes).

    Each 3x3 'SAME' convolution is followed by batch norm when `batch_norm` (the
    statistics live in the `batch_stats` collection, mutable when `train`), ReLU and a
    2x2 max pool (28 -> 14 -> 7 -> 4), so that most of the work is done at low
    resolution (on 2 CPU cores a training step runs about 4x faster than with two
    convolutions at 28x28). Dropout (rate `dropout_rate`, needs the `dropout` rng when
    `train`) acts on the last pooled maps and on the ReLU of the features.

    Attributes:
      num_classes: K, the number of logits.
      width: w, channels of the first convolution.
      features: F, the size of the penultimate (feature) layer.
      dropout_rate: dropout probability during training.
      batch_norm: whether convolutions are followed by batch norm.
    """
    num_classes: int = 10
    width: int = 32
    features: int = 256
    dropout_rate: float = 0.25
    batch_norm: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> tuple[jax.Array, jax.Array]:
        """Images `(N, 28, 28, C)` in [-1, 1] -> `(logits (N, K), features (N, F))`.

        The features are the penultimate layer's pre-activations: `logits =
        Dense(dropout(relu(features)))`. Not its ReLU outputs, because units that are
        dead on every input would make the covariance of a Frechet distance singular
        (92 of 256 units in the trained MNIST classifier).
        """
        if x.ndim != 4:
            raise ValueError(f"DigitClassifier: images must be (N, H, W, C), got shape {x.shape}.")

        def conv_block(x, channels):
            x = nn.Conv(channels, (3, 3), padding="SAME", use_bias=not self.batch_norm)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            return nn.relu(x)

        for channels in (self.width, 2 * self.width, 4 * self.width):
            x = conv_block(x, channels)
            x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = x.reshape(x.shape[0], -1)
        features = nn.Dense(self.features)(x)
        h = nn.Dropout(self.dropout_rate, deterministic=not train)(nn.relu(features))
        logits = nn.Dense(self.num_classes)(h)
        return logits, features
