"""Mixed precision per network: float32 master weights, bfloat16 or float16 compute.

Casting happens at the network boundary, as in jmp (DeepMind's "JAX mixed precision")
and Haiku's `mixed_precision.set_policy`: a `Policy` names a network's compute dtype,
and `jgan.core.game.Networks` casts the network's parameters and floating inputs to it
when the network is applied and its floating outputs back to float32. So

* parameters, optimizer state, EMA weights and gradients stay float32: the cast is
  part of the differentiated function, its transpose casts the gradient back to
  float32 (the "master weights" of mixed-precision training);
* mutable collections (batch-norm statistics, spectral-norm power-iteration vectors)
  are not cast: flax computes batch statistics in at least float32 from bfloat16
  inputs, and an updated collection is cast back to the dtype it had, so the state's
  dtypes never change;
* losses and penalties read float32 outputs and are computed in float32.

Inside a network every flax submodule boundary casts too (`compute_interceptor`): a
float32 value made inside the network (a float32 collection such as the spectral
norm's sigma, a float32 constant, a noise draw) would otherwise promote every layer
after it back to float32. The layers' matrix products and convolutions then run in the
compute dtype, the statistics they keep in float32.

float16 has 5 exponent bits: gradients below about 6e-8 flush to zero. A game with a
float16 network scales every team's loss before differentiating and unscales the
gradients (`loss_scaling`, `LossScaleState`), as NVIDIA's apex / `torch.amp.GradScaler`
and jmp's `DynamicLossScale` do: the scale lives in each team's optimizer state (so
every update rule, checkpoint and device layout carries it with no code of its own),
`jgan.core.step_parts.team_gradients` reads it, and the optimizer skips an update whose
gradients are not finite. bfloat16 has float32's exponent range and needs no scaling.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgan.errors import ConfigError, require

PyTree = Any

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}

# Dynamic loss scaling (apex's and jmp's defaults): start at 2^15, halve on a non-finite
# gradient (that update skipped), double after this many finite updates in a row.
DYNAMIC_INITIAL_SCALE = 2.0 ** 15
DYNAMIC_PERIOD = 2000
DYNAMIC_FACTOR = 2.0
DYNAMIC_MIN_SCALE = 1.0
DYNAMIC_MAX_SCALE = 2.0 ** 24


def _is_floating_array(x) -> bool:
    # Arrays only: Python scalars (hyperparameters a module takes) are left alone, and
    # so are integers, booleans and PRNG keys.
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jnp.floating)


def cast_floating(tree: PyTree, dtype) -> PyTree:
    """`tree` with every floating-point array leaf cast to `dtype`; other leaves
    (integers, booleans, keys, Python scalars, None) unchanged. Shapes are kept."""
    return jax.tree.map(lambda x: x.astype(dtype) if _is_floating_array(x) else x, tree)


@dataclasses.dataclass(frozen=True)
class Policy:
    """How one network computes: parameters and outputs in float32, compute in
    `compute_dtype`.

    Attributes:
      compute_dtype: float32, bfloat16 or float16 (a numpy dtype).
    """
    compute_dtype: np.dtype = np.dtype(jnp.float32)

    def __post_init__(self):
        dtype = np.dtype(self.compute_dtype)
        if dtype not in {np.dtype(d) for d in DTYPES.values()}:
            raise ValueError(f"compute_dtype must be one of {sorted(DTYPES)}, got {dtype}.")
        object.__setattr__(self, "compute_dtype", dtype)

    @classmethod
    def from_name(cls, name: str) -> "Policy":
        """`Policy.from_name("bfloat16")`.

        Raises:
          ValueError: `name` is not float32, bfloat16 or float16 (names it).
        """
        if name not in DTYPES:
            raise ValueError(f"{name!r} is not a compute dtype; expected one of "
                             f"{sorted(DTYPES)}.")
        return cls(np.dtype(DTYPES[name]))

    @property
    def name(self) -> str:
        return self.compute_dtype.name

    @property
    def param_dtype(self) -> np.dtype:
        """The dtype parameters, optimizer state and gradients are kept in."""
        return np.dtype(jnp.float32)

    @property
    def output_dtype(self) -> np.dtype:
        """The dtype a network's outputs reach the losses in."""
        return np.dtype(jnp.float32)

    @property
    def casts(self) -> bool:
        """Whether the policy changes anything (False for float32 compute)."""
        return self.compute_dtype != self.param_dtype

    def cast_to_compute(self, tree: PyTree) -> PyTree:
        """Floating array leaves of `tree` (params `{...: [shape]}`, inputs `[B, ...]`)
        cast to the compute dtype, same shapes; other leaves unchanged."""
        return cast_floating(tree, self.compute_dtype)

    def cast_to_output(self, tree: PyTree) -> PyTree:
        """Floating array leaves of `tree` (a network's outputs) cast to float32."""
        return cast_floating(tree, self.output_dtype)


FLOAT32 = Policy()


def compute_interceptor(policy: Policy):
    """A `flax.linen.intercept_methods` interceptor that casts the floating arguments
    and outputs of every module method called inside a network to `policy`'s compute
    dtype: a float32 value made inside the network (the spectral norm's float32
    sigma dividing a bfloat16 kernel, a float32 constant) reaches the next layer in
    the compute dtype instead of promoting it to float32. Statistics a module computes
    inside a method (batch norm's mean and variance, the power iteration) keep
    whatever precision the module gives them."""
    def interceptor(next_fun, args, kwargs, context):
        del context
        return policy.cast_to_compute(
            next_fun(*policy.cast_to_compute(args), **policy.cast_to_compute(kwargs)))
    return interceptor


def keep_dtypes(updated: PyTree, old: PyTree) -> PyTree:
    """`updated` collections (`{collection: variables}`) with each leaf cast to the
    dtype of the leaf at the same place in `old`; a collection whose structure differs
    from `old`'s (one the call created) gets its floating leaves cast to float32."""
    out = {}
    for name, value in updated.items():
        before = old.get(name) if isinstance(old, Mapping) else None
        if before is not None and jax.tree.structure(value) == jax.tree.structure(before):
            out[name] = jax.tree.map(
                lambda new, o: new.astype(o.dtype) if hasattr(o, "dtype") else new,
                value, before)
        else:
            out[name] = cast_floating(value, jnp.float32)
    return out


def parse_overrides(text: str) -> dict[str, str]:
    """`"discriminator=float32,generator=bfloat16"` -> `{network: dtype name}`.

    Raises:
      ValueError: an entry is not NAME=DTYPE, a name repeats, or a dtype is unknown.
    """
    out = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, sep, dtype = (part.strip() for part in entry.partition("="))
        if not sep or not name or not dtype:
            raise ValueError(f"{entry!r} is not NETWORK=DTYPE (e.g. generator=bfloat16).")
        if name in out:
            raise ValueError(f"network {name!r} is named twice.")
        if dtype not in DTYPES:
            raise ValueError(f"{dtype!r} (for {name!r}) is not one of {sorted(DTYPES)}.")
        out[name] = dtype
    return out


class LossScale(NamedTuple):
    """How a game with float16 networks scales its losses.

    Attributes:
      initial: the scale at step 0 (the fixed scale when not `dynamic`).
      dynamic: halve on non-finite gradients (skipping that update), double after
        `period` finite updates in a row, within [`min_scale`, `max_scale`].
    """
    initial: float = DYNAMIC_INITIAL_SCALE
    dynamic: bool = True
    period: int = DYNAMIC_PERIOD
    factor: float = DYNAMIC_FACTOR
    min_scale: float = DYNAMIC_MIN_SCALE
    max_scale: float = DYNAMIC_MAX_SCALE


def parse_loss_scale(value) -> LossScale:
    """`"dynamic"` -> dynamic scaling from 2^15; a positive number (or its string,
    `"1024"`) -> that fixed scale.

    Raises:
      ValueError: anything else.
    """
    if isinstance(value, str) and value.strip() == "dynamic":
        return LossScale()
    try:
        scale = float(value)
    except (TypeError, ValueError):
        scale = float("nan")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"{value!r} is neither 'dynamic' nor a positive number.")
    return LossScale(initial=scale, dynamic=False)


def validate_config(config) -> None:
    """Checks `config.precision`'s values (network names are checked against the game
    in `policies_from_config`). Raises ConfigError naming the key."""
    p = config.precision
    require(p.compute_dtype in DTYPES, "precision.compute_dtype",
            f"{p.compute_dtype!r} is not one of {sorted(DTYPES)}.")
    try:
        parse_overrides(p.networks)
    except ValueError as e:
        raise ConfigError(f"config.precision.networks: {e}") from None
    try:
        parse_loss_scale(p.loss_scale)
    except ValueError as e:
        raise ConfigError(f"config.precision.loss_scale: {e} (float16 only: 'dynamic', or "
                          "a fixed scale such as '1024').") from None


def policies_from_config(config, networks: Iterable[str], *,
                         allow_unknown: bool = False) -> dict[str, Policy]:
    """`{network: Policy}` for the game's `networks`: `precision.compute_dtype` for
    every one, `precision.networks` overriding it by name. Float32 everywhere gives {}.

    Args:
      config: the run's config.
      networks: the game's network names.
      allow_unknown: ignore overrides of networks not in `networks` (one stage's game
        of a run whose other stages have them; the caller checks the union).
    Raises:
      ConfigError: a bad dtype, or `precision.networks` names a network that is not in
        `networks` (names it and the game's networks).
    """
    validate_config(config)
    networks = sorted(networks)
    overrides = parse_overrides(config.precision.networks)
    unknown = sorted(set(overrides) - set(networks))
    require(allow_unknown or not unknown, "precision.networks",
            f"names {unknown}, which the game does not have (its networks: {networks}).")
    names = {net: overrides.get(net, config.precision.compute_dtype) for net in networks}
    policies = {net: Policy.from_name(name) for net, name in names.items()}
    return {net: p for net, p in policies.items() if p.casts}


def apply_to_game(game, policies: Mapping[str, Policy], loss_scale: LossScale | None = None):
    """`game` (a `jgan.core.game.Game`) computing its networks with `policies`; when a
    network computes in float16, every team's optimizer wrapped in `loss_scaling`
    (every team: each one's gradients pass through the others' networks too, a
    generator's through the discriminator). Idempotent: an optimizer already wrapped is
    not wrapped again.

    Args:
      game: the game.
      policies: `{network: Policy}`; networks not named compute in float32.
      loss_scale: the scaling of float16 games; None: `LossScale()` (dynamic).
    """
    teams = game.teams
    if any(p.compute_dtype == np.dtype(jnp.float16) for p in policies.values()):
        scale = LossScale() if loss_scale is None else loss_scale
        teams = {name: team if isinstance(team.optimizer, LossScaledTransformation)
                 else dataclasses.replace(team, optimizer=loss_scaling(team.optimizer, scale))
                 for name, team in teams.items()}
    return dataclasses.replace(game, teams=teams, precision=dict(policies))


def apply_config(config, game):
    """`apply_to_game` with the policies and loss scale of `config.precision`."""
    policies = policies_from_config(config, game.modules)
    return apply_to_game(game, policies, parse_loss_scale(config.precision.loss_scale))


# --- loss scaling -----------------------------------------------------------------


class LossScaleState(NamedTuple):
    """A loss-scaled optimizer's state.

    Attributes:
      scale: float32 scalar, the factor the team's loss is multiplied by.
      finite_steps: int32 scalar, finite updates since the scale last changed.
      inner_state: the wrapped optimizer's state.
    """
    scale: jax.Array
    finite_steps: jax.Array
    inner_state: PyTree


class LossScaledTransformation(optax.GradientTransformation):
    """The optax transformation `loss_scaling` returns (a marker subclass)."""
    __slots__ = ()


def loss_scaling(inner: optax.GradientTransformation,
                 loss_scale: LossScale = LossScale()) -> LossScaledTransformation:
    """`inner` with a loss scale in its state and, for a dynamic scale, the skip rule.

    The gradients it receives are already unscaled (`team_gradients` multiplies the
    loss by `loss_scale_of(state)` and divides the gradients by it). Dynamic: when any
    gradient is not finite the update is zero, `inner`'s state is kept and the scale
    halves (not below `min_scale`); after `period` finite updates in a row it doubles
    (not above `max_scale`). Static: the scale never changes and every update is
    applied (a non-finite gradient then stops the run as it would in float32).
    """
    s = loss_scale

    def init(params):
        return LossScaleState(scale=jnp.asarray(s.initial, jnp.float32),
                              finite_steps=jnp.zeros((), jnp.int32),
                              inner_state=inner.init(params))

    def update(updates, state, params=None):
        new_updates, inner_state = inner.update(updates, state.inner_state, params)
        if not s.dynamic:
            return new_updates, state._replace(inner_state=inner_state)
        finite = all_finite(updates)
        grown = state.finite_steps + 1 >= s.period
        scale = jnp.where(
            finite,
            jnp.where(grown, jnp.minimum(state.scale * s.factor, s.max_scale), state.scale),
            jnp.maximum(state.scale / s.factor, s.min_scale)).astype(jnp.float32)
        finite_steps = jnp.where(finite & ~grown, state.finite_steps + 1, 0).astype(jnp.int32)
        new_updates = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)),
                                   new_updates)
        inner_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                                   inner_state, state.inner_state)
        return new_updates, LossScaleState(scale, finite_steps, inner_state)

    return LossScaledTransformation(init, update)


def all_finite(tree: PyTree) -> jax.Array:
    """Boolean scalar: every floating leaf of `tree` is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if _is_floating_array(x)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def loss_scale_of(opt_state: PyTree) -> jax.Array | None:
    """The loss scale (float32 scalar) of a team whose optimizer is `loss_scaling`'s,
    else None."""
    return opt_state.scale if isinstance(opt_state, LossScaleState) else None


def scale_loss(loss: jax.Array, scale: jax.Array | None) -> jax.Array:
    """`loss * scale` (float32), or `loss` when `scale` is None."""
    return loss if scale is None else loss * scale


def unscale_grads(grads: PyTree, scale: jax.Array | None) -> PyTree:
    """`grads / scale` (float32 leaves), or `grads` when `scale` is None."""
    return grads if scale is None else jax.tree.map(lambda g: g / scale, grads)
