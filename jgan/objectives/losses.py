"""Adversarial losses, computed from discriminator logits.

Every loss takes the raw discriminator output ("logits") and returns a scalar mean over
the batch. Logits are `[B]` or `[B, 1]` (one per example) or `[B, ...]` (a patch
discriminator's grid: the mean runs over every example and position). Real and fake
logits are averaged each on its own, never against each other, so `[B, 1]` real with
`[B']` fake is the mean of each side; their per-example shapes (size-1 axes aside) must
agree. A scalar, an empty batch or per-example shapes that disagree raise a ValueError
naming the argument and the shapes. Probability-based games (minimax,
non-saturating) use D(x) = sigmoid(logit) and are written with `softplus` so they stay
finite and exact for logits of any magnitude (log sigmoid(l) = -softplus(-l),
log(1 - sigmoid(l)) = -softplus(l)).

Each loss is one side's quantity to *minimize*. `discriminator_loss` and
`generator_loss` dispatch on `loss_type`, the name a config uses:

| loss_type          | discriminator minimizes                   | generator minimizes   |
|--------------------|-------------------------------------------|-----------------------|
| `minimax`          | -log D(x) - log(1 - D(G(z)))              | log(1 - D(G(z)))      |
| `non_saturating`   | -log D(x) - log(1 - D(G(z)))              | -log D(G(z))          |
| `wasserstein`      | f(G(z)) - f(x)                            | -f(G(z))              |
| `hinge`            | max(0, 1 - f(x)) + max(0, 1 + f(G(z)))    | -f(G(z))              |
| `least_squares`    | (f(x) - 1)^2 / 2 + f(G(z))^2 / 2          | (f(G(z)) - 1)^2 / 2   |
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

LOSS_TYPES = ("minimax", "non_saturating", "wasserstein", "hinge", "least_squares")
# Games whose discriminator output is a logit of the probability "real".
PROBABILISTIC_LOSS_TYPES = ("minimax", "non_saturating")


def _flat(logits: jax.Array, argument: str = "fake_logits") -> jax.Array:
    """`[B, ...]` logits as float32 `[B, n]`; a scalar or an empty batch raises."""
    logits = jnp.asarray(logits)
    if logits.ndim == 0 or logits.shape[0] == 0 or logits.size == 0:
        raise ValueError(f"{argument} must be [B] or [B, ...] logits with B >= 1 and at "
                         f"least one output per example; got shape {logits.shape}.")
    return jnp.reshape(logits, (logits.shape[0], -1)).astype(jnp.float32)


def _per_example_shape(logits: jax.Array) -> tuple[int, ...]:
    # Size-1 axes carry no positions: [B], [B, 1] and [B, 1, 1, 1] are one logit each.
    return tuple(d for d in jnp.shape(logits)[1:] if d != 1)


def _real_and_fake(real_logits: jax.Array, fake_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Both sides as float32 `[B, n]` and `[B', n]`; per-example shapes must agree."""
    real, fake = _flat(real_logits, "real_logits"), _flat(fake_logits, "fake_logits")
    if _per_example_shape(real_logits) != _per_example_shape(fake_logits):
        raise ValueError(
            "real_logits and fake_logits must have the same per-example shape (size-1 axes "
            f"aside); got real_logits {jnp.shape(real_logits)} and fake_logits "
            f"{jnp.shape(fake_logits)}.")
    return real, fake


def minimax_discriminator_loss(*, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Discriminator's side of the minimax game (Goodfellow et al. 2014).

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))],  D = sigmoid(logits):
    the binary cross-entropy of "real" against "fake". Minimized by D*(x) =
    p_data(x) / (p_data(x) + p_g(x)).

    Args:
        real_logits: `[B]`, `[B, 1]` or `[B, ...]` logits on real data.
        fake_logits: `[B']`, `[B', 1]` or `[B', ...]` (like `real_logits`) on generated data.
    Returns:
        Scalar loss.
    """
    real, fake = _real_and_fake(real_logits, fake_logits)
    return jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake))


def minimax_generator_loss(*, fake_logits: jax.Array) -> jax.Array:
    """Generator's side of the minimax game, the saturating loss (Goodfellow et al. 2014).

    L_G = E_z[log(1 - D(G(z)))] = -E_z[softplus(logit)].
    Its gradient vanishes when D confidently rejects fakes (logit -> -inf), which is why
    practice uses `non_saturating_generator_loss`.

    Args:
        fake_logits: `[B]`, `[B, 1]` or `[B, ...]` logits on generated data.
    Returns:
        Scalar loss (always <= 0).
    """
    return -jnp.mean(jax.nn.softplus(_flat(fake_logits)))


def non_saturating_generator_loss(*, fake_logits: jax.Array) -> jax.Array:
    """The practical non-saturating generator loss (Goodfellow et al. 2014, Sec. 3).

    L_G = -E_z[log D(G(z))] = E_z[softplus(-logit)]. Same fixed points as the minimax
    game, but strong gradients exactly where the saturating loss has none.

    Args:
        fake_logits: `[B]`, `[B, 1]` or `[B, ...]` logits on generated data.
    Returns:
        Scalar loss (always >= 0).
    """
    return jnp.mean(jax.nn.softplus(-_flat(fake_logits)))


def wasserstein_discriminator_loss(*, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Critic loss of the Wasserstein GAN (Arjovsky et al. 2017).

    L_D = E_z[f(G(z))] - E_x[f(x)]: minus the Kantorovich-Rubinstein estimate of W1, valid
    when f is 1-Lipschitz (enforce with weight clipping or a gradient penalty).

    Args:
        real_logits: `[B]`, `[B, 1]` or `[B, ...]` critic outputs on real data.
        fake_logits: `[B']`, ... (like `real_logits`) critic outputs on generated data.
    Returns:
        Scalar loss.
    """
    real, fake = _real_and_fake(real_logits, fake_logits)
    return jnp.mean(fake) - jnp.mean(real)


def wasserstein_generator_loss(*, fake_logits: jax.Array) -> jax.Array:
    """Generator loss of the Wasserstein GAN (Arjovsky et al. 2017): L_G = -E_z[f(G(z))].

    Args:
        fake_logits: `[B]`, `[B, 1]` or `[B, ...]` critic outputs on generated data.
    Returns:
        Scalar loss.
    """
    return -jnp.mean(_flat(fake_logits))


def hinge_discriminator_loss(*, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018, SNGAN).

    L_D = E_x[max(0, 1 - f(x))] + E_z[max(0, 1 + f(G(z)))].

    Args:
        real_logits: `[B]`, `[B, 1]` or `[B, ...]` discriminator outputs on real data.
        fake_logits: `[B']`, ... (like `real_logits`) discriminator outputs on generated data.
    Returns:
        Scalar loss (>= 0; 0 once real outputs >= 1 and fake outputs <= -1).
    """
    real, fake = _real_and_fake(real_logits, fake_logits)
    return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


def least_squares_discriminator_loss(*, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Least-squares discriminator loss (Mao et al. 2017, LSGAN with a=0, b=c=1).

    L_D = E_x[(f(x) - 1)^2] / 2 + E_z[f(G(z))^2] / 2.

    Args:
        real_logits: `[B]`, `[B, 1]` or `[B, ...]` discriminator outputs on real data.
        fake_logits: `[B']`, ... (like `real_logits`) discriminator outputs on generated data.
    Returns:
        Scalar loss.
    """
    real, fake = _real_and_fake(real_logits, fake_logits)
    return 0.5 * jnp.mean(jnp.square(real - 1.0)) + 0.5 * jnp.mean(jnp.square(fake))


def least_squares_generator_loss(*, fake_logits: jax.Array) -> jax.Array:
    """Least-squares generator loss (Mao et al. 2017, c=1): L_G = E_z[(f(G(z)) - 1)^2] / 2.

    Args:
        fake_logits: `[B]`, `[B, 1]` or `[B, ...]` discriminator outputs on generated data.
    Returns:
        Scalar loss.
    """
    return 0.5 * jnp.mean(jnp.square(_flat(fake_logits) - 1.0))


_DISCRIMINATOR_LOSSES = {
        "minimax": minimax_discriminator_loss,
        "non_saturating": minimax_discriminator_loss,
        "wasserstein": wasserstein_discriminator_loss,
        "hinge": hinge_discriminator_loss,
        "least_squares": least_squares_discriminator_loss,
}
_GENERATOR_LOSSES = {
        "minimax": minimax_generator_loss,
        "non_saturating": non_saturating_generator_loss,
        "wasserstein": wasserstein_generator_loss,
        "hinge": wasserstein_generator_loss,  # SNGAN's hinge game: G maximizes E[f(G(z))].
        "least_squares": least_squares_generator_loss,
}


def check_loss_type(loss_type: str) -> str:
    """Returns `loss_type` or raises a ValueError that lists the valid names."""
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"Unknown loss_type {loss_type!r}; expected one of {LOSS_TYPES}.")
    return loss_type


def discriminator_loss(*, real_logits: jax.Array, fake_logits: jax.Array,
                                              loss_type: str) -> jax.Array:
    """The discriminator's loss for the game `loss_type` (see the module table).

    Args:
        real_logits: `[B]`, `[B, 1]` or `[B, ...]` discriminator outputs on real data.
        fake_logits: `[B']`, ... (like `real_logits`) discriminator outputs on generated data.
        loss_type: one of `LOSS_TYPES`.
    Returns:
        Scalar loss to minimize.
    Raises:
        ValueError: an unknown `loss_type`, scalar or empty logits, or real and fake
          logits of different per-example shapes (see the module docstring).
    """
    return _DISCRIMINATOR_LOSSES[check_loss_type(loss_type)](
            real_logits=real_logits, fake_logits=fake_logits)


def generator_loss(*, fake_logits: jax.Array, loss_type: str) -> jax.Array:
    """The generator's loss for the game `loss_type` (see the module table).

    Args:
        fake_logits: `[B]`, `[B, 1]` or `[B, ...]` discriminator outputs on generated data.
        loss_type: one of `LOSS_TYPES`.
    Returns:
        Scalar loss to minimize.
    """
    return _GENERATOR_LOSSES[check_loss_type(loss_type)](fake_logits=fake_logits)
