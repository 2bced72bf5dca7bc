"""Variational bounds on log p(x): Gaussian posteriors, likelihoods, the ELBO and IWAE.

The model is a latent-variable model p(x, z) = p(x | z) p(z) with the prior
p(z) = N(0, I) and an amortized diagonal-Gaussian posterior q(z | x) =
N(mean, diag exp(log_var)) (Kingma & Welling 2014, "Auto-encoding variational Bayes").

  elbo                      E_q[log p(x | z)] - beta KL(q(z | x) || p(z)) <= log p(x)
                            (beta = 1; Higgins et al. 2017's beta-VAE otherwise)
  importance_weighted_bound log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q (Burda,
                            Grosse & Salakhutdinov 2016): >= the ELBO in expectation,
                            non-decreasing in k, -> log p(x) as k -> infinity

Conventions a family relies on:

* Shapes. A batch holds B examples; `mean` and `log_var` are `[B, L]` (L the latent
  size); every log density or bound is per example, `[B]`, summed over the latent axis
  or over all non-batch axes of x. Samples of z stack on a new *leading* axis:
  `[n, B, L]`. No function averages over the batch: a family takes the mean of `[B]`.
* Likelihoods enter as a function. `log_likelihood_fn(z)` maps one latent per example,
  `z [B, L]`, to log p(x | z) `[B]` for the batch x the family closes over, e.g.
  `lambda z: bernoulli_log_likelihood(x, logits=decoder.apply(params, z))`. The bounds
  call it under `jax.vmap` over the sample axis, so it sees the shapes it sees in
  training; it must treat examples independently (no batch statistics).
* Keys. Sample i of the posterior noise is drawn with `jax.random.fold_in(key, i)`,
  whatever the number of samples and the chunking: the same key gives the same
  z_0, z_1, ... to `reparameterize`, `elbo` and `importance_weighted_bound`, so a
  chunked bound equals the unchunked one, and bounds with different k share their
  first samples.
* Numbers. Everything is computed in float32 whatever the networks' dtype.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

LogLikelihoodFn = Callable[[jax.Array], jax.Array]

_LOG_2PI = math.log(2.0 * math.pi)


def _check_posterior(mean: jax.Array, log_var: jax.Array) -> None:
    if mean.shape != log_var.shape or mean.ndim < 1:
        raise ValueError(f"mean and log_var must have one shape [..., L]; got mean "
                         f"{mean.shape} and log_var {log_var.shape}.")


def _check_batch_posterior(mean: jax.Array, log_var: jax.Array) -> None:
    # The bounds hand log_likelihood_fn one latent per example: z [B, L].
    _check_posterior(mean, log_var)
    if mean.ndim != 2:
        raise ValueError(f"mean and log_var must be [B, L]; got mean {mean.shape} and "
                         f"log_var {log_var.shape}.")


def _check_num_samples(num_samples: int, name: str = "num_samples") -> int:
    # Python ints only: the number of samples sets shapes, so it must be static under jit.
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"{name} must be a positive Python int (static under jit), got "
                         f"{num_samples!r}.")
    return num_samples


def _sum_non_batch(values: jax.Array) -> jax.Array:
    return jnp.sum(jnp.reshape(values, (values.shape[0], -1)), axis=-1)


def gaussian_kl(*, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL(N(mean, diag exp(log_var)) || N(0, I)), in closed form (Kingma & Welling 2014, app. B).

    KL = 1/2 sum_j (exp(log_var_j) + mean_j^2 - 1 - log_var_j), summed over the latent
    (last) axis.

    Args:
      mean: `[B, L]` posterior means (any leading axes `[..., L]`).
      log_var: `[B, L]` posterior log variances, the shape of `mean`.
    Returns:
      `[B]` (`[...]`): KL >= 0, 0 exactly when mean = 0 and log_var = 0.
    """
    _check_posterior(mean, log_var)
    mean, log_var = mean.astype(jnp.float32), log_var.astype(jnp.float32)
    return 0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, axis=-1)


def _sample_noise(key: jax.Array, indices: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """eps_i ~ N(0, I) of `shape` for each sample index i: `[len(indices), *shape]`.

    Sample i is drawn with `fold_in(key, i)`, which depends on i alone (unlike
    `jax.random.split(key, n)[i]`, which depends on n under the original threefry
    split): this is what lets chunked and unchunked bounds agree.
    """
    return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), shape,
                                                jnp.float32))(indices)


def reparameterize(key: jax.Array, *, mean: jax.Array, log_var: jax.Array,
                   num_samples: int | None = None) -> jax.Array:
    """z = mean + exp(log_var / 2) * eps, eps ~ N(0, I): the reparameterization trick
    (Kingma & Welling 2014, Sec. 2.4), differentiable in `mean` and `log_var`.

    Sample i uses eps_i ~ N(0, I) drawn with `jax.random.fold_in(key, i)`, so
    `reparameterize(key, ..., num_samples=None)` equals sample 0 of any
    `num_samples=n` call with the same key.

    Args:
      key: PRNG key.
      mean: `[B, L]` posterior means.
      log_var: `[B, L]` posterior log variances.
      num_samples: n, or None for one sample without the sample axis.
    Returns:
      `[B, L]` when `num_samples` is None, else `[n, B, L]`.
    """
    _check_posterior(mean, log_var)
    n = 1 if num_samples is None else _check_num_samples(num_samples)
    mean, log_var = mean.astype(jnp.float32), log_var.astype(jnp.float32)
    noise = _sample_noise(key, jnp.arange(n, dtype=jnp.uint32), mean.shape)
    z = mean + jnp.exp(0.5 * log_var) * noise
    return z[0] if num_samples is None else z


def gaussian_log_density(z: jax.Array, *, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """log N(z; mean, diag exp(log_var)), summed over the last (latent) axis.

    log q(z) = -1/2 sum_j (log 2 pi + log_var_j + (z_j - mean_j)^2 exp(-log_var_j)).

    Args:
      z: `[B, L]`, or `[n, B, L]` samples (leading axes broadcast against `mean`).
      mean: `[B, L]`.
      log_var: `[B, L]`.
    Returns:
      `[B]`, or `[n, B]`.
    """
    _check_posterior(mean, log_var)
    if z.shape[-mean.ndim:] != mean.shape:
        raise ValueError(f"z must be [..., {', '.join(map(str, mean.shape))}] to match mean; "
                         f"got z {z.shape}.")
    z, mean, log_var = (a.astype(jnp.float32) for a in (z, mean, log_var))
    return -0.5 * jnp.sum(_LOG_2PI + log_var + jnp.square(z - mean) * jnp.exp(-log_var),
                          axis=-1)


def standard_normal_log_density(z: jax.Array) -> jax.Array:
    """log N(z; 0, I), the prior's log density, summed over the last (latent) axis.

    log p(z) = -1/2 sum_j (log 2 pi + z_j^2).

    Args:
      z: `[B, L]` or `[n, B, L]`.
    Returns:
      `[B]` or `[n, B]`.
    """
    z = z.astype(jnp.float32)
    return -0.5 * jnp.sum(_LOG_2PI + jnp.square(z), axis=-1)


def bernoulli_log_likelihood(x: jax.Array, *, logits: jax.Array) -> jax.Array:
    """log Bernoulli(x; sigmoid(logits)), summed over every non-batch axis.

    log p(x | z) = sum_d x_d log sigmoid(l_d) + (1 - x_d) log(1 - sigmoid(l_d))
                 = -sum_d x_d softplus(-l_d) + (1 - x_d) softplus(l_d),
    exact and finite for logits of any magnitude (the binarized-MNIST likelihood of
    Kingma & Welling 2014 and Burda et al. 2016). For x in [0, 1] that is not binary it
    is minus the binary cross-entropy, not a normalized density (the continuous
    Bernoulli of Loaiza-Ganem & Cunningham 2019 adds the normalizer): fine as a
    training loss, not a log-likelihood to report.

    Args:
      x: `[B, ...]` data in {0, 1} (or [0, 1]).
      logits: `[B, ...]` decoder logits, the shape of x.
    Returns:
      `[B]`.
    """
    if x.shape != logits.shape or x.ndim < 1:
        raise ValueError(f"x and logits must have one shape [B, ...]; got x {x.shape} and "
                         f"logits {logits.shape}.")
    x, logits = x.astype(jnp.float32), logits.astype(jnp.float32)
    return -_sum_non_batch(x * jax.nn.softplus(-logits) + (1.0 - x) * jax.nn.softplus(logits))


def gaussian_log_likelihood(x: jax.Array, *, mean: jax.Array, log_var: jax.Array | None = None,
                            log_scale: jax.Array | float | None = None) -> jax.Array:
    """log N(x; mean, diag sigma^2), summed over every non-batch axis.

    log p(x | z) = -1/2 sum_d (log 2 pi + log sigma_d^2 + (x_d - mean_d)^2 / sigma_d^2).
    Give exactly one of `log_var` (log sigma^2, e.g. a decoder's per-pixel output) or
    `log_scale` (log sigma, e.g. one learned scalar); either broadcasts against x.

    Args:
      x: `[B, ...]` data.
      mean: `[B, ...]` decoder means, the shape of x.
      log_var: log sigma^2, broadcastable to x's shape (a scalar, `[B, ...]`, `[...]`).
      log_scale: log sigma, broadcastable likewise.
    Returns:
      `[B]`.
    """
    if x.shape != mean.shape or x.ndim < 1:
        raise ValueError(f"x and mean must have one shape [B, ...]; got x {x.shape} and "
                         f"mean {mean.shape}.")
    if (log_var is None) == (log_scale is None):
        given = "both" if log_var is not None else "neither"
        raise ValueError(f"gaussian_log_likelihood needs exactly one of log_var and "
                         f"log_scale; got {given}.")
    name, spread = ("log_var", log_var) if log_var is not None else ("log_scale", log_scale)
    spread = jnp.asarray(spread, jnp.float32)
    try:
        broadcast = jnp.broadcast_shapes(x.shape, spread.shape)
    except ValueError:
        broadcast = None
    if broadcast != x.shape:
        raise ValueError(f"{name} must broadcast to x's shape {x.shape}; got {spread.shape}.")
    log_var = spread if name == "log_var" else 2.0 * spread
    x, mean = x.astype(jnp.float32), mean.astype(jnp.float32)
    return -0.5 * _sum_non_batch(_LOG_2PI + log_var
                                 + jnp.square(x - mean) * jnp.exp(-log_var))


class ELBOTerms(NamedTuple):
    """The per-example ELBO and its parts, each `[B]`.

    elbo = expected_log_likelihood - beta * kl.
    """
    elbo: jax.Array
    expected_log_likelihood: jax.Array  # Monte-Carlo E_q[log p(x | z)]; minus it is the
                                        # reconstruction loss
    kl: jax.Array                       # KL(q(z | x) || p(z)), analytic


def elbo(key: jax.Array, *, mean: jax.Array, log_var: jax.Array,
         log_likelihood_fn: LogLikelihoodFn, num_samples: int = 1,
         beta: float | jax.Array = 1.0) -> ELBOTerms:
    """Per-example evidence lower bound, the VAE objective (Kingma & Welling 2014, eq. 10).

    ELBO(x) = (1/n) sum_i log p(x | z_i) - beta KL(q(z | x) || p(z)),
    z_i = mean + exp(log_var / 2) eps_i (`reparameterize`, sample i keyed by
    `fold_in(key, i)`), the KL analytic (`gaussian_kl`). With beta = 1 its expectation
    is log p(x) - KL(q(z | x) || p(z | x)) <= log p(x); beta != 1 is the beta-VAE
    (Higgins et al. 2017), beta may be traced (a KL warm-up schedule). Differentiable
    in `mean` and `log_var` (the reparameterization gradient) and in whatever
    `log_likelihood_fn` closes over.

    The family runs the encoder itself and passes its output (mean, log_var), so the
    encoder runs once per step and its outputs stay at hand for logging; the decoder
    enters through `log_likelihood_fn`, because it must be evaluated at the samples.
    A loss to minimize is `-jnp.mean(terms.elbo)`.

    Args:
      key: PRNG key of the posterior samples.
      mean: `[B, L]` posterior means.
      log_var: `[B, L]` posterior log variances.
      log_likelihood_fn: z `[B, L]` -> log p(x | z) `[B]` for the batch x (see the
        module docstring); called under `jax.vmap` over the n samples.
      num_samples: n, Monte-Carlo samples per example (a static Python int).
      beta: weight of the KL term.
    Returns:
      `ELBOTerms(elbo, expected_log_likelihood, kl)`, each `[B]`.
    """
    _check_batch_posterior(mean, log_var)
    z = reparameterize(key, mean=mean, log_var=log_var, num_samples=num_samples)
    log_likelihood = _log_likelihoods(log_likelihood_fn, z, mean.shape[0])
    expected_log_likelihood = jnp.mean(log_likelihood, axis=0)
    kl = gaussian_kl(mean=mean, log_var=log_var)
    return ELBOTerms(elbo=expected_log_likelihood - beta * kl,
                     expected_log_likelihood=expected_log_likelihood, kl=kl)


def _log_likelihoods(log_likelihood_fn: LogLikelihoodFn, z: jax.Array,
                     batch_size: int) -> jax.Array:
    """log p(x | z_i) for samples `z [n, B, L]` -> `[n, B]`, float32."""
    log_likelihood = jax.vmap(log_likelihood_fn)(z)
    if log_likelihood.shape != z.shape[:1] + (batch_size,):
        raise ValueError(f"log_likelihood_fn must map z [B, L] = {z.shape[1:]} to [B] = "
                         f"({batch_size},); got {log_likelihood.shape[1:]}.")
    return log_likelihood.astype(jnp.float32)


def importance_weighted_bound(key: jax.Array, *, mean: jax.Array, log_var: jax.Array,
                              log_likelihood_fn: LogLikelihoodFn, num_samples: int,
                              chunk_size: int | None = None) -> jax.Array:
    """The importance-weighted bound L_k on log p(x) (Burda, Grosse & Salakhutdinov 2016, eq. 8).

    L_k(x) = log (1/k) sum_{i=1}^k w_i,  w_i = p(x | z_i) p(z_i) / q(z_i | x),
    z_i ~ q(z | x), k = `num_samples`. E[L_1] is the ELBO, E[L_k] <= E[L_{k+1}] <=
    log p(x), and L_k -> log p(x) as k -> infinity (their Theorem 1). It is also the
    IWAE training objective (differentiable like `elbo`) and, at k = 5,000, the usual
    estimate of a VAE's test log-likelihood.

    Memory: the k samples are taken `chunk_size` at a time in a `lax.scan` that
    carries a running logsumexp of the log weights, so memory grows with `chunk_size`,
    not k; under differentiation each chunk is rematerialized (`jax.checkpoint`), so
    the backward pass stores one `[B]` carry per chunk, not the chunk's activations. When k is not a multiple of `chunk_size`,
    the last chunk is padded with samples whose log weights are masked to -inf.
    Sample i is keyed by `fold_in(key, i)` (not by its chunk), so the result does not
    depend on `chunk_size` beyond float rounding, and its z_i are those of
    `reparameterize(key, ..., num_samples=k)` and of `elbo(key, ..., num_samples=k)`.

    Args:
      key: PRNG key of the posterior samples.
      mean: `[B, L]` posterior means.
      log_var: `[B, L]` posterior log variances.
      log_likelihood_fn: z `[B, L]` -> log p(x | z) `[B]`, as in `elbo`.
      num_samples: k (a static Python int).
      chunk_size: samples per chunk (static), or None for all k at once; values above
        k are clipped to k.
    Returns:
      `[B]`: L_k per example.
    """
    _check_batch_posterior(mean, log_var)
    k = _check_num_samples(num_samples)
    chunk = k if chunk_size is None else min(_check_num_samples(chunk_size, "chunk_size"), k)
    num_chunks = -(-k // chunk)
    batch_size = mean.shape[0]
    mean, log_var = mean.astype(jnp.float32), log_var.astype(jnp.float32)
    indices = jnp.arange(num_chunks * chunk, dtype=jnp.uint32).reshape(num_chunks, chunk)

    # prevent_cse=False: inside a scan, CSE cannot undo the rematerialization (JAX docs).
    @functools.partial(jax.checkpoint, prevent_cse=False)
    def chunk_log_weights(chunk_indices: jax.Array) -> jax.Array:
        noise = _sample_noise(key, chunk_indices, mean.shape)
        z = mean + jnp.exp(0.5 * log_var) * noise                      # [c, B, L]
        log_weights = (_log_likelihoods(log_likelihood_fn, z, batch_size)
                       + standard_normal_log_density(z)
                       - gaussian_log_density(z, mean=mean, log_var=log_var))   # [c, B]
        # Padding samples (i >= k) contribute w = 0.
        return jnp.where((chunk_indices < k)[:, None], log_weights, -jnp.inf)

    def accumulate(running: jax.Array, chunk_indices: jax.Array):
        chunk_total = jax.nn.logsumexp(chunk_log_weights(chunk_indices), axis=0)
        # logaddexp(-inf, a) = a: the first chunk needs no special case.
        return jnp.logaddexp(running, chunk_total), None

    initial = jnp.full((batch_size,), -jnp.inf, jnp.float32)
    log_total, _ = jax.lax.scan(accumulate, initial, indices)
    return log_total - math.log(k)
