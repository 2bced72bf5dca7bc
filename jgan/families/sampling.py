"""What a family's generator takes, and grids that show what it learned.

Unconditional generators take z; conditional ones (cGAN, projection, ACGAN) take
(z, y); InfoGAN's takes [z, codes]. `GeneratorInputs` draws such inputs, calls the
generator on them, and lays out sample grids: a row per class with the same z in each
column for class-conditional families, a row per value of a code with the other codes
and the noise fixed per column for InfoGAN.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jgan.families.adversarial import GENERATOR
from jgan.families.infogan import InfoGANCodes
from jgan.core.game import Networks

CONDITIONAL_FAMILIES = ("conditional", "acgan")
FAMILIES = ("gan",) + CONDITIONAL_FAMILIES + ("infogan",)


@dataclasses.dataclass(frozen=True)
class GeneratorInputs:
    """A family's generator inputs.

    Attributes:
      family: one of `FAMILIES`.
      latent_dim: size of z (for InfoGAN, `codes.noise_dim`).
      num_classes: K for the class-conditional families.
      codes: InfoGAN's code layout.
    """
    family: str
    latent_dim: int
    num_classes: int = 0
    codes: InfoGANCodes | None = None

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}.")
        if self.family in CONDITIONAL_FAMILIES and self.num_classes < 1:
            raise ValueError(f"The {self.family} family needs num_classes >= 1.")
        if self.family == "infogan" and self.codes is None:
            raise ValueError("The infogan family needs its codes.")

    @property
    def conditional(self) -> bool:
        return self.family in CONDITIONAL_FAMILIES

    def random(self, rng: jax.Array, n: int) -> dict:
        """n random inputs: `{"z"}`, `{"z", "labels"}` (uniform) or InfoGAN's codes."""
        if self.family == "infogan":
            return self.codes.sample(rng, n)
        if not self.conditional:  # z from the key itself, as before families had inputs
            return {"z": jax.random.normal(rng, (n, self.latent_dim), jnp.float32)}
        z_rng, y_rng = jax.random.split(rng)
        out = {"z": jax.random.normal(z_rng, (n, self.latent_dim), jnp.float32)}
        if self.conditional:
            out["labels"] = jax.random.randint(y_rng, (n,), 0, self.num_classes, jnp.int32)
        return out

    def generate(self, nets: Networks, inputs: dict) -> jax.Array:
        """The generator's samples for `inputs` (as `random` or the grids give them)."""
        if self.family == "infogan":
            return nets(GENERATOR, self.codes.generator_input(inputs))
        if self.conditional:
            return nets(GENERATOR, inputs["z"], inputs["labels"])
        return nets(GENERATOR, inputs["z"])

    def jitted_generate(self, game, *, use_ema: bool):
        """Jitted `(state, inputs, key) -> images`: `generate` with `game`'s networks bound
        to `state` in inference mode (the EMA generator if `use_ema` and the state keeps
        one) and `key` as their dropout key. The key is an argument, not a constant, so
        callers with different keys and the same input shapes share one compilation."""
        @jax.jit
        def generate(state, inputs, key):
            return self.generate(game.bind(state, train=False, rng=key, use_ema=use_ema), inputs)
        return generate

    def grid(self, rng: jax.Array, num: int, *, vary: str = "categorical0") -> tuple[dict, int]:
        """Inputs of a sample grid and its number of columns.

        Unconditional: `num` random inputs, a square grid. Conditional: a row per class,
        `max(1, num // K)` columns, column j sharing one z. InfoGAN: a row per value of
        the code `vary` ("categorical<i>", or "continuous<j>" swept over [-1, 1] in
        columns with a row per value of the first categorical code), every other input
        fixed per column.
        """
        if self.family == "gan":
            return self.random(rng, num), int(np.ceil(np.sqrt(num)))
        if self.conditional:
            k = self.num_classes
            cols = max(1, num // k)
            z = jax.random.normal(rng, (cols, self.latent_dim), jnp.float32)
            return {"z": jnp.tile(z, (k, 1)),
                    "labels": jnp.repeat(jnp.arange(k, dtype=jnp.int32), cols)}, cols
        return self._code_grid(rng, num, vary)

    def _code_grid(self, rng, num: int, vary: str) -> tuple[dict, int]:
        codes = self.codes
        kind, index = vary.rstrip("0123456789"), int(vary[len(vary.rstrip("0123456789")):] or 0)
        if kind == "categorical" and index < len(codes.categorical):
            rows = codes.categorical[index]
            cols = max(1, num // rows)
            base = codes.sample(rng, cols)
            tile = {k: jnp.tile(v, (rows, 1)) for k, v in base.items()}
            values = jnp.repeat(jnp.arange(rows, dtype=jnp.int32), cols)
            tile["categorical"] = tile["categorical"].at[:, index].set(values)
            return tile, cols
        if kind == "continuous" and index < codes.continuous:
            rows = codes.categorical[0] if codes.categorical else 1
            cols = max(2, num // rows)
            base = codes.sample(rng, 1)
            tile = {k: jnp.tile(v, (rows * cols, 1)) for k, v in base.items()}
            if codes.categorical:
                tile["categorical"] = tile["categorical"].at[:, 0].set(
                    jnp.repeat(jnp.arange(rows, dtype=jnp.int32), cols))
            sweep = jnp.tile(jnp.linspace(-1.0, 1.0, cols), rows)
            tile["continuous"] = tile["continuous"].at[:, index].set(sweep)
            return tile, cols
        raise ValueError(f"No InfoGAN code {vary!r}: the run has categorical codes "
                         f"{codes.categorical} and {codes.continuous} continuous codes.")
