"""The two-team game: its static definition and its explicit pytree state.

A `Game` is static (modules, optimizers, loss functions: hashable Python objects kept
out of the pytree); a `GameState` is the pytree a step function maps to a new one.
Each side of the game is a *team* of one or more named networks sharing one optimizer
state, so that CycleGAN's two generators or BiGAN's encoder-with-generator fit the
same machinery as a plain GAN.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jgan.models.calling import accepts, train_kwargs
from jgan.sharding import shard_examples

PyTree = Any
Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class TeamState:
    """One side of the game.

    Attributes:
      params: `{network name: params}`.
      collections: `{network name: {collection name: variables}}`, the mutable
        collections (batch statistics, spectral-norm power-iteration vectors); `{}` for
        a network without any.
      opt_state: the team's optax state, over `params`.
    """
    params: PyTree
    collections: PyTree
    opt_state: PyTree


@flax.struct.dataclass
class GameState:
    """Everything that changes during training, as one pytree.

    Attributes:
      generator: the generator team (generators, encoders, auxiliary Q networks...).
      discriminator: the discriminator team.
      ema_params: exponential moving average of `generator.params` (same structure),
        or None when the game keeps no EMA.
      step: int32 scalar, number of completed steps.
      rng: the run's base key; a step draws from `fold_in(rng, step)`.
    """
    generator: TeamState
    discriminator: TeamState
    ema_params: PyTree
    step: jax.Array
    rng: jax.Array


class Networks:
    """Both teams' networks bound to one set of variables, for one loss evaluation.

    `nets("generator", z)` applies the network named "generator" with its current
    parameters and collections. In training mode the network's mutable collections are
    updated, and later calls in the same evaluation see the updated values (as a
    stateful framework would); `updated_collections` returns them. Modules whose
    `__call__` takes a `train` argument receive it.

    Only use inside the function being traced: it records traced values.
    """

    def __init__(self, modules: Mapping[str, nn.Module], params: Mapping[str, PyTree],
                 collections: Mapping[str, PyTree], *, train: bool, rng: jax.Array,
                 step: jax.Array | None = None):
        self._modules = modules
        self._step = step
        self._params = params
        self._collections = dict(collections)
        self._train = train
        self._rng = rng
        self._calls = 0

    @property
    def train(self) -> bool:
        return self._train

    @property
    def step(self) -> jax.Array:
        """The bound state's step (int32 scalar), for losses scheduled over training."""
        if self._step is None:
            raise ValueError("These Networks were bound without a step; bind them with "
                             "Game.bind, which passes the state's.")
        return self._step

    def params(self, name: str) -> PyTree:
        return self._params[name]

    def __call__(self, name: str, *args, method: str | Callable | None = None,
                 rngs: dict[str, jax.Array] | None = None, update_collections: bool = True,
                 **kwargs):
        if name not in self._modules:
            raise KeyError(f"No network named {name!r}; the game has {sorted(self._modules)}.")
        module = self._modules[name]
        if accepts(module, "train") and "train" not in kwargs:
            kwargs["train"] = self._train
        if rngs is None:
            rngs = {"dropout": jax.random.fold_in(self._rng, self._calls)}
        self._calls += 1
        # Inputs a loss draws itself (latents, labels) would otherwise stay replicated
        # over a data-parallel mesh, and with them every pass over the fakes.
        args = shard_examples(args)
        variables = {"params": self._params[name], **self._collections[name]}
        mutable = list(self._collections[name]) if self._train else False
        if mutable:
            out, updated = module.apply(variables, *args, method=method, rngs=rngs,
                                        mutable=mutable, **kwargs)
            if update_collections:
                self._collections[name] = {**self._collections[name], **updated}
            return out
        return module.apply(variables, *args, method=method, rngs=rngs, **kwargs)

    def updated_collections(self, names) -> dict[str, PyTree]:
        return {name: self._collections[name] for name in names}


# loss_fn(nets, batch, rng) -> (scalar loss, metrics dict of scalars)
LossFn = Callable[[Networks, PyTree, jax.Array], tuple[jax.Array, Metrics]]


@dataclasses.dataclass(frozen=True, eq=False)
class Game:
    """The static definition of a two-team game; a model family fills it in.

    Attributes:
      generator_team: `{name: module}` updated by `generator_loss`.
      discriminator_team: `{name: module}` updated by `discriminator_loss`.
      generator_loss: `(nets, batch, rng) -> (loss, metrics)`, minimized by the
        generator team; `nets` binds both teams' networks.
      discriminator_loss: the same for the discriminator team.
      generator_optimizer: optax transformation of the generator team.
      discriminator_optimizer: optax transformation of the discriminator team.
      example_inputs: `batch -> {name: args tuple}` giving each network's init inputs.
      ema_decay: decay of the generator team's EMA weights; None keeps no EMA.
      ema_warmup: use min(ema_decay, (1 + t) / (10 + t)) at step t, as TensorFlow's
        `ExponentialMovingAverage(num_updates=t)`: the EMA starts as a short average
        instead of holding the initial weights (exp(-t (1 - decay)) of them at step t,
        37 % at t = 1,000 with decay 0.999).
    """
    generator_team: Mapping[str, nn.Module]
    discriminator_team: Mapping[str, nn.Module]
    generator_loss: LossFn
    discriminator_loss: LossFn
    generator_optimizer: optax.GradientTransformation
    discriminator_optimizer: optax.GradientTransformation
    example_inputs: Callable[[PyTree], Mapping[str, tuple]]
    ema_decay: float | None = None
    ema_warmup: bool = False

    def __post_init__(self):
        shared = set(self.generator_team) & set(self.discriminator_team)
        if shared:
            raise ValueError(f"Network names must be unique across teams; both teams have {sorted(shared)}.")

    @property
    def modules(self) -> dict[str, nn.Module]:
        return {**self.generator_team, **self.discriminator_team}

    def init(self, rng: jax.Array, example_batch: PyTree) -> GameState:
        """Initializes every network, both optimizer states and the EMA weights.

        Args:
          rng: base key of the run.
          example_batch: a batch (shapes matter, values do not) for `example_inputs`.
        Returns:
          `GameState` at step 0.
        """
        inputs = self.example_inputs(example_batch)
        init_rng, run_rng = jax.random.split(rng)

        def init_team(team: Mapping[str, nn.Module], optimizer) -> TeamState:
            params, collections = {}, {}
            for name in sorted(team):
                if name not in inputs:
                    raise KeyError(f"example_inputs gives no inputs for network {name!r}.")
                key = jax.random.fold_in(init_rng, _stable_hash(name))
                module = team[name]
                kwargs = train_kwargs(module, False)
                variables = module.init({"params": key, "dropout": key}, *inputs[name], **kwargs)
                variables = flax.core.unfreeze(variables)
                params[name] = variables.pop("params")
                collections[name] = variables
            return TeamState(params=params, collections=collections,
                             opt_state=optimizer.init(params))

        generator = init_team(self.generator_team, self.generator_optimizer)
        discriminator = init_team(self.discriminator_team, self.discriminator_optimizer)
        ema = jax.tree.map(jnp.copy, generator.params) if self.ema_decay is not None else None
        return GameState(generator=generator, discriminator=discriminator, ema_params=ema,
                         step=jnp.zeros((), jnp.int32), rng=run_rng)

    def bind(self, state: GameState, *, train: bool, rng: jax.Array,
             use_ema: bool = False) -> Networks:
        """`Networks` over `state`'s variables (EMA generator weights if `use_ema`)."""
        gen_params = state.generator.params
        if use_ema and state.ema_params is not None:
            gen_params = state.ema_params
        return Networks(self.modules, {**gen_params, **state.discriminator.params},
                        {**state.generator.collections, **state.discriminator.collections},
                        train=train, rng=rng, step=state.step)


def _stable_hash(name: str) -> int:
    # Python's hash() of a str changes between processes; init must not.
    return sum((i + 1) * ord(c) for i, c in enumerate(name)) % (2**31 - 1)
