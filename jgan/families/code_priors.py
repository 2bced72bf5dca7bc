"""Priors an adversarial autoencoder imposes on its codes (Makhzani et al. 2016, Fig. 2-4).

Every prior draws codes z `[N, dim]`; the ones made of K components also give the
component of each draw, and take it as an argument where the label picks it:

  gaussian       z ~ N(0, I).
  mixture        K Gaussians around the origin: in every pair of coordinates, component
                 k is N((r, 0), diag(s_r^2, s_t^2)) rotated by the angle 2 pi k / K,
                 r = 1.4, s_r = 0.5 (along the radius), s_t = 0.05 (across it); needs an
                 even dim. The component is uniform, or the example's label.
  swiss_roll     a 2-D spiral: u = (v + k) / K with v ~ U(0, 1), z = 3 sqrt(u)
                 (cos 4 pi sqrt(u), sin 4 pi sqrt(u)); component k is the k-th of K
                 equal segments of u, uniform or the label.
  label_mixture  `mixture` with the component given by the example's label (the
                 semi-supervised prior of the paper's Fig. 4: each class its own
                 component).
  clusters       the unsupervised clustering code: a one-hot y of K categories (uniform)
                 beside a Gaussian style code, z = [y, s] `[N, K + dim]`.

The constants of the mixture and the swiss roll are those of the paper's figures as the
common reference implementations draw them.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

PRIORS = ("gaussian", "mixture", "swiss_roll", "label_mixture", "clusters")
MIXTURE_RADIUS, RADIAL_STD, TANGENTIAL_STD = 1.4, 0.5, 0.05
SWISS_ROLL_RADIUS, SWISS_ROLL_TURNS = 3.0, 2.0


def gaussian_mixture(key: jax.Array, components: jax.Array, *, dim: int,
                     num_components: int) -> jax.Array:
    """Draws from component `components[i]` of the K-Gaussian mixture (module docstring).

    Args:
      key: PRNG key.
      components: int `[N]` in [0, K).
      dim: even size of z.
      num_components: K.
    Returns:
      z `[N, dim]`.
    """
    if dim % 2:
        raise ValueError(f"The Gaussian mixture prior lays its components out in pairs of "
                         f"coordinates: it needs an even dim, got {dim}.")
    n = components.shape[0]
    noise = jax.random.normal(key, (n, dim // 2, 2))
    radial = MIXTURE_RADIUS + RADIAL_STD * noise[..., 0]
    tangential = TANGENTIAL_STD * noise[..., 1]
    angle = (2.0 * jnp.pi / num_components) * components.astype(jnp.float32)[:, None]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    pairs = jnp.stack([radial * cos - tangential * sin, radial * sin + tangential * cos], -1)
    return pairs.reshape(n, dim)


def swiss_roll(key: jax.Array, components: jax.Array, *, num_components: int) -> jax.Array:
    """Draws from segment `components[i]` of the 2-D swiss roll (module docstring).

    Args:
      key: PRNG key.
      components: int `[N]` in [0, K).
      num_components: K.
    Returns:
      z `[N, 2]`.
    """
    v = jax.random.uniform(key, components.shape)
    root = jnp.sqrt((v + components.astype(jnp.float32)) / num_components)
    angle = 2.0 * jnp.pi * SWISS_ROLL_TURNS * root
    return SWISS_ROLL_RADIUS * root[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)


@dataclasses.dataclass(frozen=True)
class CodePrior:
    """One of `PRIORS` with its sizes.

    Attributes:
      kind: the prior's name (module docstring).
      dim: size of z (of the style code for "clusters").
      num_components: K of "mixture", "swiss_roll" and "label_mixture".
      num_clusters: K of "clusters".
    """
    kind: str
    dim: int
    num_components: int = 10
    num_clusters: int = 16

    def __post_init__(self):
        if self.kind not in PRIORS:
            raise ValueError(f"Unknown prior {self.kind!r}; expected one of {PRIORS}.")
        if self.kind == "swiss_roll" and self.dim != 2:
            raise ValueError(f"The swiss roll is 2-D: it needs dim 2, got {self.dim}.")
        if self.kind in ("mixture", "label_mixture") and self.dim % 2:
            raise ValueError(f"The {self.kind} prior needs an even dim, got {self.dim}.")

    @property
    def takes_labels(self) -> bool:
        """Whether the example's label picks the component (the discriminator sees it)."""
        return self.kind == "label_mixture"

    @property
    def code_dim(self) -> int:
        """Size of a code the decoder reads: dim, or K + dim for "clusters"."""
        return self.dim + (self.num_clusters if self.kind == "clusters" else 0)

    def sample(self, key: jax.Array, n: int, labels: jax.Array | None = None) -> jax.Array:
        """n codes `[n, code_dim]`; `labels` `[n]` pick the components of "mixture",
        "swiss_roll" and "label_mixture" (uniform when None)."""
        component_key, key = jax.random.split(key)
        if self.kind == "gaussian":
            return jax.random.normal(key, (n, self.dim))
        if self.kind == "clusters":
            y = jax.random.randint(component_key, (n,), 0, self.num_clusters)
            return jnp.concatenate([jax.nn.one_hot(y, self.num_clusters),
                                    jax.random.normal(key, (n, self.dim))], axis=-1)
        if labels is None:
            labels = jax.random.randint(component_key, (n,), 0, self.num_components)
        if self.kind == "swiss_roll":
            return swiss_roll(key, labels, num_components=self.num_components)
        return gaussian_mixture(key, labels, dim=self.dim, num_components=self.num_components)
