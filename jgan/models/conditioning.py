"""Label conditioning for any generator and discriminator, and ACGAN's two-headed D.

cGAN (Mirza & Osindero 2014) feeds the label y to both players as extra input: G sees
[z, onehot(y)] and D sees x with onehot(y) appended (as constant feature maps for
images). These wrappers add that to an unconditional network, so the DCGAN and MLP
networks serve the conditional family unchanged. The projection discriminator and
conditional batch norm live in `jgan.models.resnet` / `jgan.models.conditional_layers`.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.models.calling import feature_kwargs, train_kwargs
from jgan.models.layers import dense_or_conv_sn


def one_hot_planes(labels: jax.Array, num_classes: int, like: jax.Array) -> jax.Array:
    """onehot(y) broadcast over `like`'s spatial axes: `[B, ..., num_classes]`."""
    code = jax.nn.one_hot(labels, num_classes, dtype=like.dtype)
    shape = like.shape[:-1] + (num_classes,)
    return jnp.broadcast_to(code.reshape((like.shape[0],) + (1,) * (like.ndim - 2)
                                         + (num_classes,)), shape)


class LabelConditionedGenerator(nn.Module):
    """`(z [B, latent], y [B]) -> generator([z, onehot(y)])`.

    Attributes:
      generator: an unconditional generator; its input grows by `num_classes`.
      num_classes: K, labels in [0, K).
    """
    generator: nn.Module
    num_classes: int

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array, *, train: bool = False) -> jax.Array:
        code = jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)
        return self.generator(jnp.concatenate([z, code], axis=-1),
                              **train_kwargs(self.generator, train))


class LabelConditionedDiscriminator(nn.Module):
    """`(x [B, ..., C], y [B]) -> discriminator([x, onehot(y) planes])`: the label as
    K extra input channels (features for vectors), constant over space.

    Attributes:
      discriminator: an unconditional discriminator; its input grows by `num_classes`
        channels.
      num_classes: K.
    """
    discriminator: nn.Module
    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array, *, train: bool = False,
                 features: bool = False, with_features: bool = False):
        x = jnp.concatenate([x, one_hot_planes(labels, self.num_classes, x)], axis=-1)
        kwargs = {**train_kwargs(self.discriminator, train),
                  **feature_kwargs(self.discriminator, features=features,
                                   with_features=with_features)}
        return self.discriminator(x, **kwargs)


class AuxiliaryClassifierDiscriminator(nn.Module):
    """ACGAN's discriminator (Odena et al. 2017): one trunk, two heads.

    `x [B, ...] -> (source_logit [B], class_logits [B, K])`, the trunk called with
    `features=True` (`DCGANDiscriminator`, `MLPDiscriminator`, `ResNetDiscriminator`).

    Attributes:
      trunk: a discriminator whose `features=True` output `[B, F]` both heads read.
      num_classes: K.
      spectral_norm: spectral norm on both heads (as on the trunk's layers).
    """
    trunk: nn.Module
    num_classes: int
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        h = self.trunk(x, features=True, **train_kwargs(self.trunk, train))
        source = dense_or_conv_sn(nn.Dense(1, name="source"), self.spectral_norm)(h, train)
        classes = dense_or_conv_sn(nn.Dense(self.num_classes, name="classes"),
                                   self.spectral_norm)(h, train)
        return source[:, 0], classes
