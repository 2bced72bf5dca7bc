"""Runs in stages: a sequence of games, networks carried from one to the next by name.

ADDA pretrains a classifier and then adapts its encoder adversarially; progressive
growing trains at 4 px, then 8 px, ... Each `Stage` has its own game, update rule and
number of steps. At a boundary, `carry_state` starts the next stage from a fresh
`Game.init` of its game and copies over, by network name, what the previous stage
learned. The step counter and the run's key continue, so a run is one sequence of
steps and `stage_at(stages, step)` tells which stage a step belongs to: a checkpoint
of the state alone records the stage, and resuming it (at a boundary or inside a
stage) continues exactly.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from jgan.core.game import Game, GameState, PyTree


@dataclasses.dataclass(frozen=True, eq=False)
class Stage:
    """One stage of a run.

    Attributes:
      name: the stage's name (in logs and errors).
      game: the game trained in this stage.
      num_steps: steps of this stage (>= 1).
      update_rule, repeats, unroll_steps, micro_batches: `jgan.core.steps.make_step`'s
        arguments.
      carry_from: `{network of this stage: network of the previous stage}` for networks
        that start from another one's weights (ADDA's target encoder from the source
        encoder); every other network is carried by its own name (`carry_state`).
    """
    name: str
    game: Game
    num_steps: int
    update_rule: str = "alternating"
    repeats: Mapping[str, int] | None = None
    unroll_steps: int = 0
    micro_batches: int = 1
    carry_from: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.num_steps < 1:
            raise ValueError(f"Stage {self.name!r}: num_steps must be >= 1, got {self.num_steps}.")


def stage_at(stages: Sequence[Stage], step: int) -> tuple[int, int]:
    """`(stage index, steps done in that stage)` for a run that has completed `step`
    steps; a step at a boundary belongs to the next stage (0 steps done in it), the
    last stage's end to the last stage.

    Raises:
      ValueError: `step` is negative or beyond the stages' total.
    """
    total = sum(s.num_steps for s in stages)
    if not 0 <= step <= total:
        raise ValueError(f"Step {step} is outside the run's {total} steps "
                         f"({', '.join(f'{s.name}: {s.num_steps}' for s in stages)}).")
    start = 0
    for i, stage in enumerate(stages):
        if step < start + stage.num_steps or i == len(stages) - 1:
            return i, step - start
        start += stage.num_steps
    raise AssertionError("unreachable")


def carry_state(previous: GameState, fresh: GameState, *, previous_game: Game,
                carry_from: Mapping[str, str] | None = None) -> GameState:
    """The next stage's state: `fresh` (its game's `init`) with what `previous` learned.

    For every network of `game` that `previous_game` also has (by name, or by the name
    `carry_from` maps it to), each
    parameter and collection leaf found at the same path in both is copied from
    `previous`; leaves only the new network has (a new resolution's layers) keep their
    fresh values. EMA weights are carried where both stages keep them for the network;
    a network that gains EMA weights starts them at its carried parameters.
    Optimizer states start fresh (a new game, possibly new teams and optimizers);
    extras entries of the same name are carried; the step and key continue.

    Args:
      previous: the last state of the previous stage.
      fresh: `game.init(...)` for the next stage.
      previous_game: the previous stage's game.
      carry_from: `{new network: previous network}` to start a network from another's
        weights (`Stage.carry_from`); a missing previous network raises.
    Returns:
      The first state of the next stage.
    Raises:
      ValueError: a carried leaf changed shape or dtype (names the network and path).
    """
    carry_from = dict(carry_from or {})
    old_params = previous.params()
    missing = sorted(set(carry_from.values()) - set(old_params))
    if missing:
        raise ValueError(f"carry_from names {missing}, which the previous stage does not have "
                         f"(its networks: {sorted(old_params)}).")
    source = lambda net: carry_from.get(net, net)  # noqa: E731
    old_collections = previous.collections()
    old_ema = previous.params(use_ema=True)
    # A network started from another's weights gets copies: one buffer in two places of
    # the state could not be donated to the step.
    for net, old in carry_from.items():
        old_params = {**old_params, net: jax.tree.map(jnp.copy, old_params[old])}
        if old in old_collections:
            old_collections = {**old_collections,
                               net: jax.tree.map(jnp.copy, old_collections[old])}
        if old in old_ema:
            old_ema = {**old_ema, net: jax.tree.map(jnp.copy, old_ema[old])}
    source = lambda net: net  # noqa: E731
    teams = {}
    for team_name, team_state in fresh.teams.items():
        params = {net: _merge(net, old_params.get(source(net)), p)
                  for net, p in team_state.params.items()}
        collections = {net: _merge(net, old_collections.get(source(net)), c)
                       for net, c in team_state.collections.items()}
        teams[team_name] = team_state.replace(params=params, collections=collections)
    ema = {}
    for team_name, average in fresh.ema.items():
        carried = teams[team_name].params
        ema[team_name] = {net: (_merge(net, old_ema[source(net)], carried[net])
                                if _has_ema(previous_game, previous, source(net))
                                else carried[net])
                          for net in average}
    extras = {name: (_merge(f"extras[{name!r}]", previous.extras.get(name), value)
                     if name in previous.extras else value)
              for name, value in fresh.extras.items()}
    return fresh.replace(teams=teams, ema=ema, extras=extras, step=previous.step,
                         rng=previous.rng)


def _has_ema(game: Game, state: GameState, network: str) -> bool:
    try:
        return game.team_of(network) in state.ema
    except KeyError:
        return False


def _merge(network: str, old: PyTree | None, new: PyTree) -> PyTree:
    if old is None:
        return new
    old_leaves = dict(jax.tree_util.tree_flatten_with_path(old)[0])

    def take(path, leaf):
        if path not in old_leaves:
            return leaf
        carried = old_leaves[path]
        if (carried.shape, carried.dtype) != (leaf.shape, leaf.dtype):
            raise ValueError(
                f"{network}{jax.tree_util.keystr(path)}: the previous stage's "
                f"{carried.dtype}{list(carried.shape)} cannot be carried into the next "
                f"stage's {leaf.dtype}{list(leaf.shape)}; rename the network or the layer "
                "if it is a different one.")
        return carried

    return jax.tree_util.tree_map_with_path(take, new)
