"""A game of named teams: its static definition and its explicit pytree state.

A `Game` is static (modules, optimizers, loss functions: hashable Python objects kept
out of the pytree); a `GameState` is the pytree a step function maps to a new one.

A game is one or more named *teams*. A team is one or more named networks, the loss it
minimizes (a function of every network in the game), its optimizer and, optionally,
EMA weights. A GAN has two teams ("discriminator", "generator"), an autoencoder one,
an adversarial autoencoder three; CycleGAN's two generators or BiGAN's encoder with
its generator are one team of two networks. Every loss reads every network, but its
gradients reach only its own team's parameters: a network is updated by one team and
read by the others. A *phase* that updates a network another team owns (the
adversarial autoencoder's encoder, trained to reconstruct by one team and to fool the
code discriminator by another) names it in `Team.borrows`: the owner keeps the
network's variables (and EMA), the borrowing team its own optimizer state over it.

State that is not parameters (an image pool, a fade-in alpha, a queue) lives in
`GameState.extras`: a loss reads it through `Networks.extras` and replaces entries
with `Networks.update_extras`; `Game.advance_extras` moves it at the end of a step.
It is part of the pytree, so checkpoints save and restore it like parameters.
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
from jgan.precision import Policy, compute_interceptor, keep_dtypes
from jgan.sharding import gathered, shard_examples

PyTree = Any
Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class TeamState:
    """One team's variables and optimizer state.

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
      teams: `{team name: TeamState}`.
      ema: `{team name: params}`, the exponential moving average of the params of each
        team that keeps one (`Team.ema_decay`); `{}` when none does.
      extras: `{name: pytree}`, state that is not parameters (`Game.init_extras`);
        `{}` for most games.
      step: int32 scalar, number of completed steps.
      rng: the run's base key; a step draws from `fold_in(rng, step)`.
    """
    teams: dict[str, TeamState]
    ema: dict[str, PyTree]
    extras: dict[str, PyTree]
    step: jax.Array
    rng: jax.Array

    def replace_team(self, name: str, team_state: TeamState) -> "GameState":
        """This state with team `name`'s state replaced."""
        if name not in self.teams:
            raise KeyError(f"No team named {name!r}; the state has {sorted(self.teams)}.")
        return self.replace(teams={**self.teams, name: team_state})

    def params(self, *, use_ema: bool = False) -> dict[str, PyTree]:
        """`{network name: params}` over every team (EMA weights where kept, if `use_ema`)."""
        out = {}
        for name, team in self.teams.items():
            out.update(self.ema[name] if use_ema and name in self.ema else team.params)
        return out

    def collections(self) -> dict[str, PyTree]:
        """`{network name: collections}` over every team."""
        out = {}
        for team in self.teams.values():
            out.update(team.collections)
        return out


class Networks:
    """Every team's networks bound to one set of variables, for one loss evaluation.

    `nets("generator", z)` applies the network named "generator" with its current
    parameters and collections. In training mode the network's mutable collections are
    updated, and later calls in the same evaluation see the updated values (as a
    stateful framework would); `updated_collections` returns them. Modules whose
    `__call__` (or the `method` called) takes a `train` argument receive it.

    A network with a `Policy` in `precision` (`jgan.precision`) is applied with its
    params and floating inputs cast to the policy's compute dtype (and every flax
    submodule boundary inside it, `compute_interceptor`); its floating outputs come
    back in float32, and its collections keep their dtypes. Each network runs under
    `jax.named_scope(name)`, so profiles and jaxprs tell the networks apart.

    Only use inside the function being traced: it records traced values.
    """

    def __init__(self, modules: Mapping[str, nn.Module], params: Mapping[str, PyTree],
                 collections: Mapping[str, PyTree], *, train: bool, rng: jax.Array,
                 step: jax.Array | None = None, extras: Mapping[str, PyTree] | None = None,
                 precision: Mapping[str, Policy] | None = None):
        self._modules = modules
        self._precision = dict(precision or {})
        self._extras = dict(extras or {})
        self._extra_updates = {}
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

    @property
    def extras(self) -> dict[str, PyTree]:
        """The state's extras, with this evaluation's `update_extras` applied."""
        return {**self._extras, **self._extra_updates}

    def update_extras(self, **values: PyTree) -> None:
        """Replaces extras entries (same structure, shapes and dtypes) for the step.

        The new values leave the loss without gradient (they are state, not outputs),
        and the step writes them into `GameState.extras` after this team's update.
        """
        for name, value in values.items():
            if name not in self._extras:
                raise KeyError(f"No extras entry {name!r}; the state has "
                               f"{sorted(self._extras)} (Game.init_extras declares them).")
            _check_like_state(name, value, self._extras[name])
            self._extra_updates[name] = jax.lax.stop_gradient(value)

    def updated_extras(self) -> dict[str, PyTree]:
        """The entries replaced by `update_extras` in this evaluation."""
        return dict(self._extra_updates)

    def __call__(self, name: str, *args, method: str | Callable | None = None,
                 rngs: dict[str, jax.Array] | None = None, update_collections: bool = True,
                 **kwargs):
        if name not in self._modules:
            raise KeyError(f"No network named {name!r}; the game has {sorted(self._modules)}.")
        module = self._modules[name]
        if accepts(module, "train", method) and "train" not in kwargs:
            kwargs["train"] = self._train
        if rngs is None:
            rngs = {"dropout": jax.random.fold_in(self._rng, self._calls)}
        self._calls += 1
        # Inputs a loss draws itself (latents, labels) would otherwise stay replicated
        # over a data-parallel mesh, and with them every pass over the fakes.
        args = shard_examples(args)
        params = self._params[name]
        policy = self._precision.get(name)
        if policy is not None and policy.casts:
            params = policy.cast_to_compute(params)
            args, kwargs = policy.cast_to_compute(args), policy.cast_to_compute(kwargs)
        # FSDP: weights split over a "model" axis are gathered where the network runs.
        params = gathered(params)
        variables = {"params": params, **self._collections[name]}
        mutable = (list(self._collections[name]) if self._train else []) or False
        with jax.named_scope(name):
            if policy is not None and policy.casts:
                with nn.intercept_methods(compute_interceptor(policy)):
                    out = module.apply(variables, *args, method=method, rngs=rngs,
                                       mutable=mutable, **kwargs)
            else:
                out = module.apply(variables, *args, method=method, rngs=rngs,
                                   mutable=mutable, **kwargs)
        if mutable:
            out, updated = out
            if policy is not None and policy.casts:
                updated = keep_dtypes(updated, self._collections[name])
            if update_collections:
                self._collections[name] = {**self._collections[name], **updated}
        if policy is not None and policy.casts:
            out = policy.cast_to_output(out)
        return out

    def updated_collections(self, names) -> dict[str, PyTree]:
        return {name: self._collections[name] for name in names}


def _check_like_state(name: str, value: PyTree, state: PyTree) -> None:
    """An extras update must keep the entry's structure, shapes and dtypes."""
    if jax.tree.structure(value) != jax.tree.structure(state):
        raise ValueError(f"extras[{name!r}]: the update's structure {jax.tree.structure(value)} "
                         f"differs from the state's {jax.tree.structure(state)}.")
    for new, old in zip(jax.tree.leaves(value), jax.tree.leaves(state)):
        if (jnp.shape(new), jnp.result_type(new)) != (old.shape, old.dtype):
            raise ValueError(f"extras[{name!r}]: an update of shape {jnp.shape(new)} "
                             f"{jnp.result_type(new)} for state of shape {old.shape} "
                             f"{old.dtype}.")


# loss_fn(nets, batch, rng) -> (scalar loss, metrics dict of scalars)
LossFn = Callable[[Networks, PyTree, jax.Array], tuple[jax.Array, Metrics]]


@dataclasses.dataclass(frozen=True, eq=False)
class Team:
    """One team: its networks, the loss it minimizes and how it is updated.

    Attributes:
      networks: `{network name: module}`, the networks the team owns; names are
        unique across the game.
      loss: `(nets, batch, rng) -> (scalar loss, metrics)`, where `nets` binds every
        network of the game; only the parameters this team updates (its networks and
        `borrows`) are differentiated.
      optimizer: optax transformation over the team's `{network name: params}`.
      ema_decay: decay of EMA weights of the team's params; None keeps none.
      ema_warmup: use min(ema_decay, (1 + t) / (10 + t)) at step t, as TensorFlow's
        `ExponentialMovingAverage(num_updates=t)`: the EMA starts as a short average
        instead of holding the initial weights (exp(-t (1 - decay)) of them at step t,
        37 % at t = 1,000 with decay 0.999).
      metrics_prefix: the step's metrics of this team are `{prefix}_loss` and
        `{prefix}_grad_norm`; None uses the team's name.
      borrows: names of networks owned by other teams that this team updates too, with
        its own optimizer (a phase of a sequential schedule: only the alternating rule
        takes such teams). The owner holds their variables and EMA; this team's
        `TeamState` holds its own networks and an optimizer state over both.
    """
    networks: Mapping[str, nn.Module]
    loss: LossFn
    optimizer: optax.GradientTransformation
    ema_decay: float | None = None
    ema_warmup: bool = False
    metrics_prefix: str | None = None
    borrows: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "borrows", tuple(self.borrows))
        if not self.networks and not self.borrows:
            raise ValueError("A team needs at least one network (its own or borrowed).")
        if self.ema_decay is not None and not self.networks:
            raise ValueError("A team that only borrows networks keeps no EMA of them (their "
                             "owner does): ema_decay must be None.")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) or None, got {self.ema_decay}.")
        if self.ema_warmup and self.ema_decay is None:
            raise ValueError("ema_warmup warms up the EMA's decay, so it needs ema_decay.")


@dataclasses.dataclass(frozen=True, eq=False)
class Game:
    """The static definition of a game of one or more named teams; a family fills it in.

    Attributes:
      teams: `{team name: Team}`, in update order: the alternating rule updates them in
        this order (each against the others' newest parameters), and every rule draws
        the teams' keys in it.
      example_inputs: `batch -> {network name: args tuple}`, each network's init inputs.
      init_extras: `batch -> {name: pytree}`, the initial extras (state that is not
        parameters); None: the game keeps none.
      advance_extras: `(extras, step) -> extras`, applied once at the end of every step
        (after the teams' updates), with the step number before the increment; None
        leaves extras to the losses' `Networks.update_extras`.
      precision: `{network name: jgan.precision.Policy}`, the dtype each network
        computes in (params, optimizer state and outputs stay float32); networks not
        named compute in float32. A float16 network needs loss scaling: build the game
        with `jgan.precision.apply_to_game`, which wraps the optimizers.
    """
    teams: Mapping[str, Team]
    example_inputs: Callable[[PyTree], Mapping[str, tuple]]
    init_extras: Callable[[PyTree], Mapping[str, PyTree]] | None = None
    advance_extras: Callable[[Mapping[str, PyTree], jax.Array], Mapping[str, PyTree]] | None = None
    precision: Mapping[str, Policy] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not self.teams:
            raise ValueError("A game needs at least one team.")
        seen = {}
        for team_name, team in self.teams.items():
            for net in team.networks:
                if net in seen:
                    raise ValueError(f"Network names must be unique across teams: {net!r} is "
                                     f"in both {seen[net]!r} and {team_name!r}.")
                seen[net] = team_name
        for team_name, team in self.teams.items():
            for net in team.borrows:
                if net not in seen or seen[net] == team_name:
                    raise ValueError(
                        f"Team {team_name!r} borrows {net!r}, which is not a network of "
                        f"another team (networks: {sorted(seen)}).")
        unknown = sorted(set(self.precision) - set(seen))
        if unknown:
            raise ValueError(f"precision names networks {unknown} that the game does not "
                             f"have (its networks: {sorted(seen)}).")
        for net, policy in self.precision.items():
            if not isinstance(policy, Policy):
                raise ValueError(f"precision[{net!r}] must be a jgan.precision.Policy, got "
                                 f"{policy!r}.")

    @property
    def has_borrowing_teams(self) -> bool:
        """Whether a team updates a network another team owns (`Team.borrows`)."""
        return any(team.borrows for team in self.teams.values())

    def updated_networks(self, team: str) -> tuple[str, ...]:
        """The networks `team` updates: its own (sorted), then those it borrows."""
        if team not in self.teams:
            raise KeyError(f"No team named {team!r}; the game has {list(self.teams)}.")
        return tuple(sorted(self.teams[team].networks)) + self.teams[team].borrows

    def updated_params(self, state: GameState, team: str) -> dict[str, PyTree]:
        """`{network: params}` of the networks `team` updates, from their owners."""
        return {net: state.teams[self.team_of(net)].params[net]
                for net in self.updated_networks(team)}

    def with_updated(self, state: GameState, team: str, params: Mapping[str, PyTree],
                     collections: Mapping[str, PyTree] | None = None) -> GameState:
        """`state` with the params (and collections) of the networks `team` updates
        replaced, each in its owner's `TeamState`."""
        teams = dict(state.teams)
        for net, value in params.items():
            owner = self.team_of(net)
            changed = {"params": {**teams[owner].params, net: value}}
            if collections is not None:
                changed["collections"] = {**teams[owner].collections, net: collections[net]}
            teams[owner] = teams[owner].replace(**changed)
        return state.replace(teams=teams)

    @property
    def modules(self) -> dict[str, nn.Module]:
        """`{network name: module}` over every team."""
        return {name: module for team in self.teams.values()
                for name, module in team.networks.items()}

    def team_of(self, network: str) -> str:
        """The name of the team that updates `network`."""
        for team_name, team in self.teams.items():
            if network in team.networks:
                return team_name
        raise KeyError(f"No network named {network!r}; the game has {sorted(self.modules)}.")

    def init(self, rng: jax.Array, example_batch: PyTree) -> GameState:
        """Initializes every network, every optimizer state, the EMA weights and extras.

        Args:
          rng: base key of the run.
          example_batch: a batch (shapes matter, values do not) for `example_inputs`
            and `init_extras`.
        Returns:
          `GameState` at step 0. A network's initial parameters depend on the key and
          its name only, not on its team or on the other networks.
        """
        inputs = self.example_inputs(example_batch)
        init_rng, run_rng = jax.random.split(rng)
        teams = {name: _init_team(team, inputs, init_rng) for name, team in self.teams.items()}
        for name, team in self.teams.items():
            if team.borrows:  # an optimizer state over the borrowed networks too
                point = GameState(teams=teams, ema={}, extras={}, step=None, rng=None)
                teams[name] = teams[name].replace(
                    opt_state=team.optimizer.init(self.updated_params(point, name)))
        ema = {name: jax.tree.map(jnp.copy, teams[name].params)
               for name, team in self.teams.items() if team.ema_decay is not None}
        extras = dict(self.init_extras(example_batch)) if self.init_extras else {}
        return GameState(teams=teams, ema=ema, extras=extras, step=jnp.zeros((), jnp.int32),
                         rng=run_rng)

    def bind(self, state: GameState, *, train: bool, rng: jax.Array,
             use_ema: bool = False) -> Networks:
        """`Networks` over `state`'s variables (EMA weights where kept, if `use_ema`)."""
        return Networks(self.modules, state.params(use_ema=use_ema), state.collections(),
                        train=train, rng=rng, step=state.step, extras=state.extras,
                        precision=self.precision)

    def apply(self, state: GameState, network: str, *args, use_ema: bool = False,
              rng: jax.Array | None = None, method: str | Callable | None = None, **kwargs):
        """Applies one network of `state` in inference mode: sample G, encode with E.

        `game.apply(state, "generator", z, use_ema=True)` is G(z) with the EMA weights;
        batch norm uses its running statistics and nothing in `state` changes.

        Args:
          state: a `GameState` of this game.
          network: the network's name.
          *args, **kwargs: its inputs (and keyword arguments of its `__call__` or
            `method`).
          use_ema: use the EMA weights of the network's team, where it keeps them.
          rng: dropout key; None uses a fixed key (deterministic networks ignore it).
          method: a method of the module to call instead of `__call__`.
        Returns:
          The network's output.
        """
        self.team_of(network)  # a named error for an unknown network
        rng = jax.random.key(0) if rng is None else rng
        nets = self.bind(state, train=False, rng=rng, use_ema=use_ema)
        return nets(network, *args, method=method, **kwargs)


def _init_team(team: Team, inputs: Mapping[str, tuple], init_rng: jax.Array) -> TeamState:
    params, collections = {}, {}
    for name in sorted(team.networks):
        if name not in inputs:
            raise KeyError(f"example_inputs gives no inputs for network {name!r}.")
        key = jax.random.fold_in(init_rng, _stable_hash(name))
        module = team.networks[name]
        variables = module.init({"params": key, "dropout": key}, *inputs[name],
                                **train_kwargs(module, False))
        variables = flax.core.unfreeze(variables)
        params[name] = variables.pop("params")
        collections[name] = variables
    return TeamState(params=params, collections=collections, opt_state=team.optimizer.init(params))


def _stable_hash(name: str) -> int:
    # Python's hash() of a str changes between processes; init must not.
    return sum((i + 1) * ord(c) for i, c in enumerate(name)) % (2**31 - 1)
