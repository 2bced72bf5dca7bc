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
import numpy as np
from jax.experimental import checkify

from jgan.objectives import losses

_HALF_LOG_2PI = 0.5 * float(np.log(2.0 * np.pi))


def _is_concrete(x) -> bool:
    """Whether `x`'s values can be read on the host now (not traced, all shards here)."""
    return (not isinstance(x, jax.core.Tracer)
            and getattr(x, "is_fully_addressable", True))


def _check_labels_in_range(labels: jax.Array, num_classes: int, *, argument: str) -> jax.Array:
    """`[...]` bool, whether each label lies in [0, num_classes).

    Concrete labels out of range raise a ValueError naming the first bad value. Traced
    labels (under `jax.jit`) have no values yet: a `checkify.debug_check` reports them
    when the caller is wrapped in `checkify.checkify`, and is a no-op otherwise
    (`checkify.check` would instead refuse to be staged by a plain `jax.jit`).
    """
    in_range = (labels >= 0) & (labels < num_classes)
    if _is_concrete(labels):
        bad = np.asarray(labels)[~np.asarray(in_range)]
        if bad.size:
            raise ValueError(f"{argument}: label {bad.flat[0]} is outside [0, {num_classes}) "
                             f"({num_classes} classes in the logits' last axis).")
    else:
        checkify.debug_check(jnp.all(in_range),
                             f"{argument}: labels must lie in [0, {num_classes}); got min "
                             "{} and max {}.", jnp.min(labels), jnp.max(labels))
    return in_range


def _cross_entropy(logits, labels, *, logits_name: str, labels_name: str) -> jax.Array:
    """`class_cross_entropy` with the caller's argument names in its errors."""
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError(f"{logits_name} must be [..., K] logits with K >= 1 classes; got "
                         f"shape {logits.shape}.")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"{labels_name} must be integer classes of shape {logits_name}.shape[:-1] = "
            f"{logits.shape[:-1]}; got {labels_name} {labels.shape} and {logits_name} "
            f"{logits.shape} (for one-hot labels pass their argmax).")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"{labels_name} must be integer classes; got dtype {labels.dtype}.")
    if labels.size == 0:
        raise ValueError(f"{labels_name} has no labels to average over; got shape "
                         f"{labels.shape}.")
    num_classes = logits.shape[-1]
    in_range = _check_labels_in_range(labels, num_classes, argument=labels_name)
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    # Clipped so the gather is defined; the out-of-range positions become NaN below
    # (a negative index would otherwise wrap around to a real class).
    index = jnp.clip(labels, 0, num_classes - 1).astype(jnp.int32)[..., None]
    nll = -jnp.take_along_axis(log_p, index, axis=-1)[..., 0]
    return jnp.mean(jnp.where(in_range, nll, jnp.nan))


def class_cross_entropy(*, class_logits: jax.Array, labels: jax.Array) -> jax.Array:
    """-E[log softmax(class_logits)[y]]: the negative of one L_C term.

    CE = -(1/N) sum_p log softmax(class_logits[p])[labels[p]], over the N positions p of
    `labels`' shape: one per example for `[B, K]` logits, one per example and patch for
    a patch classifier's `[B, H, W, K]`.

    Out-of-range labels: concrete ones (outside `jax.jit`) raise a ValueError naming
    the value. Under `jax.jit` the values are unknown when the function is traced, so
    the loss is NaN instead (the trainer stops on a non-finite loss); wrap the jitted
    function in `jax.experimental.checkify.checkify` to get an error naming the range
    (`checkify.debug_check`, a no-op without checkify).

    Args:
      class_logits: `[..., K]` unnormalized class scores.
      labels: `[...]` (`class_logits.shape[:-1]`) int classes in [0, K); one-hot or soft
        labels are not accepted.
    Returns:
      Scalar loss, the mean over all positions.
    Raises:
      ValueError: labels of another shape or not integers, empty labels or logits
        without classes, concrete labels outside [0, K).
    """
    return _cross_entropy(class_logits, labels, logits_name="class_logits",
                          labels_name="labels")


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
      real_logits, fake_logits: `[B]` source logits on real data and on G(z, y_fake)
        (any shape `jgan.objectives.losses` accepts).
      real_class_logits, fake_class_logits: `[B, K]` class logits on the same (or
        `[..., K]`, see `class_cross_entropy`).
      real_labels, fake_labels: `[B]` (`[...]`) ints in [0, K), the data's labels and those
        G was asked for.
      loss_type: one of `jgan.objectives.losses.LOSS_TYPES`.
      class_weight: w, the weight of L_C.
      fake_class_loss: whether D's class loss includes the fakes.
    Returns:
      Scalar loss.
    Raises:
      ValueError: as `losses.discriminator_loss` and `class_cross_entropy`, naming the
        argument.
    """
    source = losses.discriminator_loss(real_logits=real_logits, fake_logits=fake_logits,
                                       loss_type=loss_type)
    classes = _cross_entropy(real_class_logits, real_labels, logits_name="real_class_logits",
                             labels_name="real_labels")
    if fake_class_loss:
        classes += _cross_entropy(fake_class_logits, fake_labels,
                                  logits_name="fake_class_logits", labels_name="fake_labels")
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
    Raises:
      ValueError: as `losses.generator_loss` and `class_cross_entropy`, naming the
        argument.
    """
    return (losses.generator_loss(fake_logits=fake_logits, loss_type=loss_type)
            + class_weight * _cross_entropy(fake_class_logits, fake_labels,
                                            logits_name="fake_class_logits",
                                            labels_name="fake_labels"))


def gaussian_code_nll(*, mean: jax.Array, codes: jax.Array,
                      log_std: jax.Array | None = None) -> jax.Array:
    """-E[log N(c; mean, std^2)], summed over the k codes: Q's factored Gaussian.

    sum_j [(c_j - mu_j)^2 / (2 sigma_j^2) + log sigma_j + log(2 pi) / 2], sigma = 1 when
    `log_std` is None (InfoGAN's fixed-variance choice).

    Args:
      mean: `[B, k]` Q's means.
      codes: `[B, k]` the continuous codes G was given (one code: `[B, 1]`, not `[B]`,
        which would read as one example with B codes).
      log_std: `[B, k]` Q's log standard deviations, or None.
    Returns:
      Scalar loss, the mean over examples of the sum over codes.
    Raises:
      ValueError: codes without a code axis, or `mean` / `log_std` of another shape
        (they would broadcast into a wrong sum).
    """
    mean, codes = jnp.asarray(mean, jnp.float32), jnp.asarray(codes, jnp.float32)
    if codes.ndim < 2:
        raise ValueError(f"codes must be [B, k], a column per code; got shape {codes.shape} "
                         "(one code per example: codes[:, None]).")
    if mean.shape != codes.shape:
        raise ValueError(f"mean must have the shape of codes; got mean {mean.shape} and codes "
                         f"{codes.shape}.")
    if log_std is None:
        log_std = jnp.zeros_like(mean)
    elif jnp.shape(log_std) != codes.shape:
        raise ValueError(f"log_std must have the shape of codes; got log_std "
                         f"{jnp.shape(log_std)} and codes {codes.shape}.")
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
      Scalar loss: the sum over code groups of each group's mean over examples (TF-GAN's
      `mutual_information_penalty` averages over groups instead; docs/conventions.md).
    Raises:
      ValueError: `categorical_codes` not `[B, n]` with a column per logits array, a
        group's logits and codes of mismatched shapes or out-of-range concrete codes
        (see `class_cross_entropy`), or continuous codes without Q's means (or means
        without codes).
    """
    categorical_codes = jnp.asarray(categorical_codes)
    if categorical_codes.ndim != 2 or categorical_codes.shape[1] != len(categorical_logits):
        raise ValueError(
            f"categorical_codes must be [B, n], a column per categorical_logits array "
            f"(n = {len(categorical_logits)}); got shape {categorical_codes.shape}.")
    has_codes = continuous_codes is not None and jnp.shape(continuous_codes)[-1]
    has_mean = continuous_mean is not None and jnp.shape(continuous_mean)[-1]
    if bool(has_codes) != bool(has_mean):
        raise ValueError(
            "continuous_codes and continuous_mean come together; got continuous_codes "
            f"{None if continuous_codes is None else jnp.shape(continuous_codes)} and "
            f"continuous_mean {None if continuous_mean is None else jnp.shape(continuous_mean)}.")
    loss = jnp.zeros((), jnp.float32)
    for i, logits in enumerate(categorical_logits):
        loss += _cross_entropy(logits, categorical_codes[:, i],
                               logits_name=f"categorical_logits[{i}]",
                               labels_name=f"categorical_codes[:, {i}]")
    if has_codes:
        loss += continuous_weight * gaussian_code_nll(mean=continuous_mean, codes=continuous_codes,
                                                      log_std=continuous_log_std)
    return loss
