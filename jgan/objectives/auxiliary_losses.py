"""Losses of the auxiliary tasks some GANs add to the game: ACGAN's class loss and
InfoGAN's mutual-information bound.

Each is one side's quantity to *minimize*, a scalar mean over the batch.

ACGAN (Odena, Olah and Shlens 2017, "Conditional image synthesis with auxiliary
classifier GANs", eqs. 2-3), with S the source (real/fake) and C the class:
  L_S = E[log P(S = real | X_real)] + E[log P(S = fake | X_fake)]
  L_C = E[log P(C = c | X_real)] + E[log P(C = c | X_fake)]
  D maximizes L_S + L_C; G maximizes L_C - L_S.

InfoGAN (Chen et al. 2016, "InfoGAN: interpretable representation learning by
information maximizing generative adversarial nets", eq. 4): the variational lower
bound L_I(G, Q) = E_{c ~ P(c), x ~ G(z, c)}[log Q(c | x)] + H(c) <= I(c; G(z, c)); H(c)
is fixed, so maximizing L_I minimizes the negative log-likelihood of the codes under Q.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jgan.objectives import losses

_HALF_LOG_2PI = 0.5 * float(jnp.log(2.0 * jnp.pi))


def class_cross_entropy(*, class_logits: jax.Array, labels: jax.Array) -> jax.Array:
    """-E[log softmax(class_logits)[y]]: the negative of one L_C term.

    Args:
      class_logits: `[B, K]` unnormalized class scores.
      labels: `[B]` int classes in [0, K).
    Returns:
      Scalar loss.
    """
    log_p = jax.nn.log_softmax(class_logits.astype(jnp.float32), axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None].astype(jnp.int32), axis=-1))


def acgan_discriminator_loss(*, real_logits: jax.Array, fake_logits: jax.Array,
                             real_class_logits: jax.Array, fake_class_logits: jax.Array,
                             real_labels: jax.Array, fake_labels: jax.Array,
                             loss_type: str = "minimax", class_weight: float = 1.0,
                             fake_class_loss: bool = True) -> jax.Array:
    """-(L_S + w L_C): ACGAN's discriminator loss.

    With `loss_type="minimax"` the source part is -L_S, the binary cross-entropy of real
    against fake, exactly as the paper; other loss types swap in their discriminator
    loss (`jgan.objectives.losses.discriminator_loss`). The class part is
    CE(real_class_logits, y_real) + CE(fake_class_logits, y_fake), the second term
    dropped when `fake_class_loss=False` (a common variant that keeps D's classifier
    from learning the generator's mistakes).

    Args:
      real_logits, fake_logits: `[B]` source logits on real data and on G(z, y_fake).
      real_class_logits, fake_class_logits: `[B, K]` class logits on the same.
      real_labels, fake_labels: `[B]` ints, the data's labels and those G was asked for.
      loss_type: one of `jgan.objectives.losses.LOSS_TYPES`.
      class_weight: w, the weight of L_C.
      fake_class_loss: whether D's class loss includes the fakes.
    Returns:
      Scalar loss.
    """
    source = losses.discriminator_loss(real_logits=real_logits, fake_logits=fake_logits,
                                       loss_type=loss_type)
    classes = class_cross_entropy(class_logits=real_class_logits, labels=real_labels)
    if fake_class_loss:
        classes += class_cross_entropy(class_logits=fake_class_logits, labels=fake_labels)
    return source + class_weight * classes


def acgan_generator_loss(*, fake_logits: jax.Array, fake_class_logits: jax.Array,
                         fake_labels: jax.Array, loss_type: str = "minimax",
                         class_weight: float = 1.0) -> jax.Array:
    """-(w L_C - L_S) in G's terms: ACGAN's generator loss.

    L_S's real term and L_C's real term do not depend on G, so G minimizes
    E[log(1 - D(G(z, c)))] + w CE(fake_class_logits, c) with `loss_type="minimax"`
    (the paper), or `jgan.objectives.losses.generator_loss(loss_type)` in place of the first term
    (non-saturating: -E[log D(G(z, c))]).

    Args:
      fake_logits: `[B]` source logits on G(z, c).
      fake_class_logits: `[B, K]` class logits on G(z, c).
      fake_labels: `[B]` the classes c G was asked for.
      loss_type: one of `jgan.objectives.losses.LOSS_TYPES`.
      class_weight: w.
    Returns:
      Scalar loss.
    """
    return (losses.generator_loss(fake_logits=fake_logits, loss_type=loss_type)
            + class_weight * class_cross_entropy(class_logits=fake_class_logits,
                                                 labels=fake_labels))


def gaussian_code_nll(*, mean: jax.Array, codes: jax.Array,
                      log_std: jax.Array | None = None) -> jax.Array:
    """-E[log N(c; mean, std^2)], summed over the k codes: Q's factored Gaussian.

    sum_j [(c_j - mu_j)^2 / (2 sigma_j^2) + log sigma_j + log(2 pi) / 2], sigma = 1 when
    `log_std` is None (InfoGAN's fixed-variance choice).

    Args:
      mean: `[B, k]` Q's means.
      codes: `[B, k]` the continuous codes G was given.
      log_std: `[B, k]` Q's log standard deviations, or None.
    Returns:
      Scalar loss.
    """
    mean, codes = mean.astype(jnp.float32), codes.astype(jnp.float32)
    if log_std is None:
        log_std = jnp.zeros_like(mean)
    z = (codes - mean) * jnp.exp(-log_std)
    return jnp.mean(jnp.sum(0.5 * z ** 2 + log_std + _HALF_LOG_2PI, axis=-1))


def infogan_information_loss(*, categorical_logits: Sequence[jax.Array],
                             categorical_codes: jax.Array,
                             continuous_mean: jax.Array | None = None,
                             continuous_codes: jax.Array | None = None,
                             continuous_log_std: jax.Array | None = None,
                             continuous_weight: float = 1.0) -> jax.Array:
    """-(L_I(G, Q) - H(c)): the negative log-likelihood of the codes under Q.

    sum_i CE(categorical_logits[i], c_i) + w * gaussian_code_nll(continuous), the codes
    being independent under Q (a factored posterior, as in InfoGAN).

    Args:
      categorical_logits: one `[B, K_i]` logits array per categorical code.
      categorical_codes: `[B, n]` int codes, column i for code i.
      continuous_mean, continuous_codes, continuous_log_std: see `gaussian_code_nll`;
        None when there are no continuous codes.
      continuous_weight: w (InfoGAN weighs continuous codes separately, often < 1).
    Returns:
      Scalar loss.
    """
    loss = jnp.zeros((), jnp.float32)
    for i, logits in enumerate(categorical_logits):
        loss += class_cross_entropy(class_logits=logits, labels=categorical_codes[:, i])
    if continuous_codes is not None and continuous_codes.shape[-1]:
        loss += continuous_weight * gaussian_code_nll(mean=continuous_mean, codes=continuous_codes,
                                                      log_std=continuous_log_std)
    return loss
