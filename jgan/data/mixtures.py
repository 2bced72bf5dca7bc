"""2-D Gaussian mixtures for mode-collapse experiments.

Constants follow the protocol of Lin et al. 2018 (PacGAN, Sec. 5.1 and their released
`synthetic_data_experiments` configs), which adopted the 2-D ring and grid of Metz et
al. 2017 (Unrolled GAN) and Srivastava et al. 2017 (VEEGAN):

* `ring`: 8 equal-weight Gaussians with means (cos 2 pi i / 8, sin 2 pi i / 8),
  i = 0..7 (radius 1), isotropic standard deviation 0.01.
* `grid`: 25 equal-weight Gaussians with means (-4 + 2i, -4 + 2j), i, j = 0..4,
  isotropic standard deviation 0.05.

(Metz et al. used a ring of radius 2 with std 0.02; `Mixture` takes other constants.)
Sampling is a pure JAX function of a key, so the "input position" of a run is its
step number: resuming needs no iterator state.
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Mixture:
    """An equal-weight isotropic Gaussian mixture.

    Attributes:
      means: `[K, D]` component means.
      std: the components' common standard deviation.
    """
    means: np.ndarray
    std: float

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]

    def sample(self, rng: jax.Array, num: int) -> jax.Array:
        """`num` samples, float32 `[num, D]`."""
        k_rng, n_rng = jax.random.split(rng)
        idx = jax.random.randint(k_rng, (num,), 0, self.num_modes)
        noise = jax.random.normal(n_rng, (num, self.means.shape[1]), jnp.float32)
        return jnp.asarray(self.means, jnp.float32)[idx] + self.std * noise


def ring(num_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> Mixture:
    """The 2-D ring (defaults: PacGAN's 8 modes, radius 1, std 0.01)."""
    angles = [2 * math.pi * i / num_modes for i in range(num_modes)]
    means = np.array([[radius * math.cos(a), radius * math.sin(a)] for a in angles], np.float32)
    return Mixture(means=means, std=std)


def grid(size: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture:
    """The 2-D grid (defaults: PacGAN's 5 x 5 modes at -4..4 step 2, std 0.05)."""
    coords = [spacing * (i - (size - 1) / 2) for i in range(size)]
    means = np.array(list(itertools.product(coords, coords)), np.float32)
    return Mixture(means=means, std=std)


MIXTURES = {"ring": ring, "grid": grid}


def get_mixture(name: str, *, scale: float = 1.0, **overrides) -> Mixture:
    """`ring` or `grid`, with optional overrides of its constants.

    `scale` multiplies the means and the standard deviation together (the data's units;
    the protocol's measures, relative to the std, are unchanged): a run's
    `config.data.mixture_scale`.
    """
    if name not in MIXTURES:
        raise ValueError(f"Unknown mixture {name!r}; expected one of {sorted(MIXTURES)}.")
    if not scale > 0:
        raise ValueError(f"Mixture scale must be > 0, got {scale}.")
    mixture = MIXTURES[name](**overrides)
    return Mixture(means=mixture.means * np.float32(scale), std=mixture.std * scale)


def mixture_of(config) -> Mixture:
    """The mixture a run's config names: `data.name` scaled by `data.mixture_scale`."""
    return get_mixture(config.data.name, scale=config.data.get("mixture_scale", 1.0))
