"""What a family's generating network takes, and grids that show what it learned.

A generating network takes z alone (`kind="latent"`: an unconditional GAN's generator,
a VAE's decoder), (z, y) (`kind="labels"`: cGAN, projection, ACGAN) or [z, codes]
(`kind="codes"`: InfoGAN). `GeneratorInputs` draws such inputs, calls the network on
them (`network`, "generator" unless the family names another), maps its output to data
(`to_data`: images in [-1, 1], or points; e.g. a Bernoulli decoder's logits to
`sigmoid(logits) * 2 - 1`), and lays out sample grids: a row per class with the same z
in each column for labels, a row per value of a code with the other codes and the noise
fixed per column for codes.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from typing import TYPE_CHECKING

from jgan.core.game import Networks
from jgan.families.network_names import GENERATOR

if TYPE_CHECKING:  # infogan.py registers its family with a GeneratorInputs: no cycle
    from jgan.families.infogan import InfoGANCodes

KINDS = ("latent", "labels", "codes")


@dataclasses.dataclass(frozen=True)
class GeneratorInputs:
    """What a family's generating network takes, and how its output becomes data.

    Attributes:
      family: the family's name (for messages).
      latent_dim: size of z (for codes, `codes.noise_dim`).
      num_classes: K, the labels' range, for `kind="labels"`.
      codes: InfoGAN's code layout, for `kind="codes"`.
      kind: "latent" (z `[N, latent_dim]` ~ N(0, I)), "labels" (z and y `[N]`
        uniform in [0, K)) or "codes" (`codes.sample`); None: "codes" when `codes` is
        given, else "latent".
      network: the name of the network that maps the inputs to data.
      to_data: the network's output `[N, ...]` -> data `[N, ...]` (images in
        [-1, 1]); None: the output is the data.
      draw_latent: `(key, n) -> z [n, latent_dim]`, the prior of a `kind="latent"`
        network when it is not N(0, I) (an adversarial autoencoder's mixture, swiss
        roll or categorical code); None: z ~ N(0, I). Interpolations between such
        draws are straight lines.
    """
    family: str
    latent_dim: int
    num_classes: int = 0
    codes: InfoGANCodes | None = None
    kind: str | None = None
    network: str = GENERATOR
    to_data: Callable[[jax.Array], jax.Array] | None = None
    draw_latent: Callable[[jax.Array, int], jax.Array] | None = None

    def __post_init__(self):
        if self.kind is None:
            object.__setattr__(self, "kind", "latent" if self.codes is None else "codes")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r} (family "
                             f"{self.family!r}).")
        if self.kind == "labels" and self.num_classes < 1:
            raise ValueError(f"The {self.family} family's generator takes labels: it needs "
                             "num_classes >= 1.")
        if self.kind == "codes" and self.codes is None:
            raise ValueError(f"The {self.family} family's generator takes codes: it needs "
                             "its codes.")
        if self.draw_latent is not None and self.kind != "latent":
            raise ValueError(f"draw_latent draws z alone: the {self.family} family's "
                             f"generator takes {self.kind}.")

    @property
    def conditional(self) -> bool:
        """Whether the network takes labels."""
        return self.kind == "labels"

    def random(self, rng: jax.Array, n: int) -> dict:
        """n random inputs: `{"z"}`, `{"z", "labels"}` (uniform) or InfoGAN's codes."""
        if self.kind == "codes":
            return self.codes.sample(rng, n)
        if self.draw_latent is not None:
            return {"z": self.draw_latent(rng, n)}
        if not self.conditional:  # z from the key itself, as before families had inputs
            return {"z": jax.random.normal(rng, (n, self.latent_dim), jnp.float32)}
        z_rng, y_rng = jax.random.split(rng)
        out = {"z": jax.random.normal(z_rng, (n, self.latent_dim), jnp.float32)}
        if self.conditional:
            out["labels"] = jax.random.randint(y_rng, (n,), 0, self.num_classes, jnp.int32)
        return out

    def generate(self, nets: Networks, inputs: dict) -> jax.Array:
        """The samples for `inputs` (as `random` or the grids give them): the network's
        output through `to_data`."""
        if self.kind == "codes":
            out = nets(self.network, self.codes.generator_input(inputs))
        elif self.conditional:
            out = nets(self.network, inputs["z"], inputs["labels"])
        else:
            out = nets(self.network, inputs["z"])
        return out if self.to_data is None else self.to_data(out)

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
        if self.kind == "latent":
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

    def requested(self, key: jax.Array, num: int, *, interpolate: bool = False,
                  interpolation_steps: int = 8, labels: Sequence = (),
                  vary: str = "categorical0", codes: Sequence[str] = ()) -> tuple[dict, int | None]:
        """The inputs of a sample grid as `jgan.sample` asks for it, and its columns.

        Args:
          key: the grid's key.
          num: about how many samples.
          interpolate: rows of `interpolation_steps` samples along a path between two
            latents (spherical for a Gaussian prior, straight for a uniform one), the
            labels and codes fixed along a row.
          labels: class-conditional families: the classes, a row each (default all);
            with `interpolate`, the class of every row.
          vary: InfoGAN: the code each row varies (`grid`).
          codes: InfoGAN: `NAME=VALUE` codes held fixed (categorical<i> / continuous<j>).
        Returns:
          `(inputs, columns)`; columns None for a square grid.
        Raises:
          ValueError: a label or code this run does not have (names it).
        """
        if interpolate:
            inputs, columns = self._interpolation(key, num, interpolation_steps, labels)
        elif self.conditional:
            inputs, columns = self._class_rows(key, num, labels)
        elif self.kind == "codes":
            inputs, columns = self.grid(key, num, vary=vary)
        else:
            inputs, columns = self.random(key, num), None
        if self.kind == "codes" and codes:
            inputs = _fix_codes(inputs, codes, self.codes)
        return inputs, columns

    def _interpolation(self, key, num: int, steps: int, labels) -> tuple[dict, int]:
        rows = max(1, num // steps)
        base = self.random(key, rows * steps)
        noise = "noise" if self.kind == "codes" else "z"
        t = jnp.linspace(0.0, 1.0, steps)
        inputs = {k: jnp.repeat(v[::steps], steps, axis=0)
                  for k, v in base.items()}  # labels / codes fixed along a strip
        if self.draw_latent is not None:  # any prior: a straight line between two draws
            ends = self.draw_latent(jax.random.fold_in(key, 1), 2 * rows).reshape(rows, 2, -1)
            inputs[noise] = jnp.concatenate([e[0] + t[:, None] * (e[1] - e[0]) for e in ends])
        elif self.kind == "codes" and self.codes.noise == "uniform":
            # A straight line stays inside the cube the uniform prior fills.
            ends = self.codes.sample_noise(jax.random.fold_in(key, 1), rows, 2)
            inputs[noise] = jnp.concatenate([e[0] + t[:, None] * (e[1] - e[0]) for e in ends])
        else:
            ends = jax.random.normal(jax.random.fold_in(key, 1), (rows, 2, base[noise].shape[-1]))
            inputs[noise] = jnp.concatenate([slerp(e[0], e[1], t) for e in ends])
        if labels and self.conditional:
            inputs["labels"] = jnp.full((rows * steps,), int(labels[0]), jnp.int32)
        return inputs, steps

    def _class_rows(self, key, num: int, labels) -> tuple[dict, int]:
        classes = [int(c) for c in labels] if labels else list(range(self.num_classes))
        bad = [c for c in classes if not 0 <= c < self.num_classes]
        if bad:
            raise ValueError(f"--labels {bad} are outside [0, {self.num_classes}).")
        columns = max(1, num // len(classes))
        z = jax.random.normal(key, (columns, self.latent_dim))
        return {"z": jnp.tile(z, (len(classes), 1)),
                "labels": jnp.repeat(jnp.asarray(classes, jnp.int32), columns)}, columns


def _fix_codes(inputs: dict, assignments: Sequence[str], codes) -> dict:
    """InfoGAN inputs with codes held at `NAME=VALUE` (categorical<i> / continuous<j>)."""
    inputs = dict(inputs)
    for item in assignments:
        name, _, value = item.partition("=")
        kind = name.rstrip("0123456789")
        index = int(name[len(kind):] or 0)
        if kind == "categorical" and index < len(codes.categorical) and value:
            v = int(value)
            if not 0 <= v < codes.categorical[index]:
                raise ValueError(f"--codes: {name}={v} is outside [0, {codes.categorical[index]}).")
            inputs["categorical"] = inputs["categorical"].at[:, index].set(v)
        elif kind == "continuous" and index < codes.continuous and value:
            inputs["continuous"] = inputs["continuous"].at[:, index].set(float(value))
        else:
            raise ValueError(f"--codes: {item!r} names no code of this run (categorical "
                             f"{codes.categorical}, {codes.continuous} continuous).")
    return inputs


def slerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
    """Spherical interpolation between latents a, b `[D]` at times t `[T]` -> `[T, D]`."""
    cos = jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b))
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    so = jnp.sin(omega)
    t = t[:, None]
    lerp = (1 - t) * a + t * b
    sl = (jnp.sin((1 - t) * omega) * a + jnp.sin(t * omega) * b) / jnp.where(so == 0, 1.0, so)
    return jnp.where(so < 1e-6, lerp, sl)
