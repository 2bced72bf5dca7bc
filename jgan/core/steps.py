"""Step functions of a game of named teams: `(state, batch) -> (state, metrics)`.

Every model family reuses these; a family only supplies its `Game` (teams: networks,
losses, optimizers). The update rules (`make_step`'s `update_rule`):

* `alternating`: the teams update one after another in the game's order, each against
  the others' newest parameters; a team can update several times per step
  (`repeats`, e.g. 5 critic updates in WGAN-GP), each time on its own slice of the
  batch.
* `simultaneous`: every team's gradients are taken at the *same* point (the old
  state) and applied together.
* `optimistic`: simultaneous updates with optimistic optimizers (Daskalakis et al.
  2018), `optimistic_step`.
* `extragradient`: gradients at an extrapolated point applied to the current one
  (Gidel et al. 2019), `jgan.core.extragradient.extragradient_step`.

Separate learning rates per team (TTUR, Heusel et al. 2017) need nothing here: each
team has its own optimizer (`Team.optimizer`; in GAN configs
`optimizer.generator.learning_rate` and `optimizer.discriminator.learning_rate`).

`unroll_steps=k` (two-team games, every rule) takes the loss of the team updated last
through k differentiable updates of the other team (Unrolled GAN, Metz et al. 2017;
`jgan.core.unrolled`).

Keys: a step draws `key = fold_in(rng, step)`; the j-th team update of the step (in
the game's order, counting repeats) uses `fold_in(key, j)`.

All rules are pure and jit-compatible. Under `jax.jit` with the batch sharded over a
device mesh they are data parallel as they stand (batch statistics span the global
batch). Inside `shard_map`/`pmap`, pass `axis_name`: gradients and metrics are then
averaged over that axis, and each device draws its own noise.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from jgan.core.accumulation import accumulated_gradients
from jgan.core.extragradient import extragradient_step
from jgan.core.game import Game, GameState, Metrics, PyTree, TeamState
from jgan.core.step_parts import (
    apply_team_update,
    apply_update,
    finish_step,
    merge_metrics,
    metrics_prefix,
    refuse_borrowing,
    split_update_batches,
    step_rng,
    team_gradients,
    team_metrics,
)
from jgan.core.unrolled import unrolled_pair, unrolled_team_gradients

__all__ = ["UPDATE_RULES", "StepFn", "alternating_step", "extragradient_step",
           "has_optimistic_optimizer", "make_step", "optimistic_step", "simultaneous_step",
           "split_update_batches", "step_rng"]

StepFn = Callable[[GameState, PyTree], tuple[GameState, Metrics]]
UPDATE_RULES = ("alternating", "simultaneous", "extragradient", "optimistic")


def _gradients(game: Game, state: GameState, batch: PyTree, rng: jax.Array, *, team: str,
               unroll_steps: int, axis_name: str | None, micro_batches: int = 1):
    # The team updated last in a two-team game looks ahead through its adversary's
    # updates when unrolling; every other team's gradient is plain, taken on the whole
    # batch or accumulated over micro-batches.
    pair = unrolled_pair(game) if unroll_steps else None
    if pair is not None and team == pair[0]:
        return unrolled_team_gradients(game, state, batch, rng, team=team, adversary=pair[1],
                                       unroll_steps=unroll_steps, axis_name=axis_name)

    def gradients(point, micro_batch, key):
        return team_gradients(game, point, micro_batch, key, team=team, axis_name=axis_name)
    return accumulated_gradients(gradients, game, state, batch, rng, team=team,
                                 micro_batches=micro_batches)


def _checked_repeats(game: Game, repeats: Mapping[str, int] | None) -> dict[str, int]:
    repeats = dict(repeats or {})
    unknown = sorted(set(repeats) - set(game.teams))
    if unknown:
        raise KeyError(f"repeats names {unknown}, which are not teams of the game "
                       f"{list(game.teams)}.")
    for name, n in repeats.items():
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"repeats[{name!r}] must be an int >= 1, got {n!r}.")
    return {name: repeats.get(name, 1) for name in game.teams}


def _unrolled(update: Callable, teams, team_batches, first: int, n: int):
    """`lax.scan(update, teams, (team_batches, first + arange(n)))`, unrolled in the
    program. XLA's CPU backend runs convolutions inside a while loop tens of times slower
    than outside one (WGAN-GP on MNIST with 5 critic updates, one core: 14.1 s a step
    in a scan, 1.2 s unrolled, 0.3 s with one update; see jgan.train.chunks), and n is a
    handful of updates."""
    outputs = []
    for i in range(n):
        teams, out = update(teams, (jax.tree.map(lambda x, i=i: x[i], team_batches), first + i))
        outputs.append(out)
    return teams, jax.tree.map(lambda *xs: jnp.stack(xs), *outputs)


def alternating_step(state: GameState, batch: PyTree, *, game: Game,
                     repeats: Mapping[str, int] | None = None, unroll_steps: int = 0,
                     axis_name: str | None = None,
                     micro_batches: int = 1) -> tuple[GameState, Metrics]:
    """The teams update in the game's order, each against the others' newest params.

    The batch is split into S = max(repeats) slices (`split_update_batches`); a team
    that updates r times per step takes the last r slices, one per update. For a GAN
    with teams ("discriminator", "generator") and repeats {"discriminator": 5}, the
    critic's five updates see slices 0..4 and the generator's the last.

    Args:
      state: the game state.
      batch: pytree of arrays with leading axis `S * B`.
      game: the static game.
      repeats: `{team: updates per step}`; teams not named update once.
      unroll_steps: in a two-team game, the loss of the team updated last is taken
        against the other team unrolled this many more differentiable updates
        (`jgan.core.unrolled`); 0: plain.
      axis_name: mapped axis to average gradients and metrics over, inside
        `shard_map`/`pmap`; None under plain `jit`.
      micro_batches: each update's gradients are accumulated over this many slices of
        its batch (`jgan.core.accumulation`); 1: the whole batch at once.
    Returns:
      `(new_state, metrics)`: each team's metrics averaged over its updates.
    """
    repeats = _checked_repeats(game, repeats)
    key = step_rng(state, axis_name)
    num_slices = max(repeats.values())
    batches = split_update_batches(batch, num_slices)
    metrics, extras, j = {}, dict(state.extras), 0
    for name, n in repeats.items():
        def update(teams: dict[str, TeamState], xs, name=name):
            team_batch, i = xs
            point = state.replace(teams=teams, extras=extras)
            g = _gradients(game, point, team_batch, jax.random.fold_in(key, i), team=name,
                           unroll_steps=unroll_steps, axis_name=axis_name,
                           micro_batches=micro_batches)
            new = apply_update(game, point, name, g)
            return new.teams, (team_metrics(metrics_prefix(game, name), g.loss, g.grads,
                                            g.metrics), g.extras)

        team_batches = jax.tree.map(lambda x: x[num_slices - n:], batches)
        if n == 1:
            teams, (team_m, team_extras) = update(
                state.teams, (jax.tree.map(lambda x: x[0], team_batches), j))
        else:
            # Extras a repeated team changes are not threaded between its own updates;
            # the last update's values are kept.
            teams, (team_m, team_extras) = _unrolled(update, state.teams, team_batches, j, n)
            team_m = jax.tree.map(lambda m: jnp.mean(m, axis=0), team_m)
            team_extras = jax.tree.map(lambda e: e[-1], team_extras)
        state = state.replace(teams=teams)
        extras.update(team_extras)
        merge_metrics(metrics, team_m, name)
        j += n
    return finish_step(game, state, dict(state.teams), metrics, axis_name, extras=extras)


def simultaneous_step(state: GameState, batch: PyTree, *, game: Game, unroll_steps: int = 0,
                      axis_name: str | None = None,
                      micro_batches: int = 1) -> tuple[GameState, Metrics]:
    """Every team's gradients at the same point (the old state), applied together.

    Team j (in the game's order) draws `fold_in(key, j)`. Extras a loss replaces are
    written in the game's order after all updates.

    Args:
      state: the game state.
      batch: pytree of arrays with leading axis B, seen by every loss.
      game: the static game.
      unroll_steps: as in `alternating_step`, against the old state.
      axis_name: mapped axis for `shard_map`/`pmap`, as in `alternating_step`.
      micro_batches: gradient accumulation, as in `alternating_step`.
    Returns:
      `(new_state, metrics)`.
    """
    refuse_borrowing(game, "simultaneous updates")
    key = step_rng(state, axis_name)
    teams, metrics, extras = {}, {}, dict(state.extras)
    for j, name in enumerate(game.teams):
        g = _gradients(game, state, batch, jax.random.fold_in(key, j), team=name,
                       unroll_steps=unroll_steps, axis_name=axis_name,
                       micro_batches=micro_batches)
        teams[name] = apply_team_update(game.teams[name].optimizer, state.teams[name],
                                        g.grads, g.collections)
        merge_metrics(metrics, team_metrics(metrics_prefix(game, name), g.loss, g.grads,
                                            g.metrics), name)
        extras.update(g.extras)
    return finish_step(game, state, teams, metrics, axis_name, extras=extras)


def has_optimistic_optimizer(opt_state: PyTree) -> bool:
    """Whether an optax state holds the previous update of `optax.scale_by_optimistic_gradient`
    (true for `optax.optimistic_gradient_descent`, `optax.optimistic_adam_v2`, and any
    chain containing the transformation)."""
    optimistic_state = type(jax.eval_shape(optax.scale_by_optimistic_gradient().init, {}))
    return any(isinstance(s, optimistic_state) for s in jax.tree.leaves(
        opt_state, is_leaf=lambda s: isinstance(s, optimistic_state)))


def optimistic_step(state: GameState, batch: PyTree, *, game: Game, unroll_steps: int = 0,
                    axis_name: str | None = None,
                    micro_batches: int = 1) -> tuple[GameState, Metrics]:
    """Optimistic gradient descent (OGD; Daskalakis, Ilyas, Syrgkanis and Zeng 2018,
    "Training GANs with Optimism"): x_{t+1} = x_t - 2 eta g_t + eta g_{t-1} for each team,
    with every team's gradient g_t taken at the same point.

    The optimism lives in the teams' optimizers, which must carry the previous update:
    `optax.optimistic_gradient_descent(eta)` is OGD exactly (its first step, having no
    g_{-1}, is plain gradient descent), `optax.optimistic_adam_v2(eta, nesterov=False)`
    the paper's Optimistic Adam in optax's form (2 u_t - u_{t-1} on Adam's updates u).
    The rule itself is `simultaneous_step`: keeping the memory in the optimizer state
    keeps `GameState` unchanged, checkpoints included, and reuses optax's
    implementation. This rule only checks that every optimizer is optimistic, so that
    a config cannot silently train plain simultaneous descent under the name.

    Args and returns: as for `simultaneous_step`.
    Raises:
      ValueError: a team's optimizer state has no optimistic memory.
    """
    for team in game.teams:
        if not has_optimistic_optimizer(state.teams[team].opt_state):
            raise ValueError(
                f"update_rule='optimistic' needs optimistic optimizers, but the {team} "
                "team's optimizer state has no optax.scale_by_optimistic_gradient memory; "
                "build it with optax.optimistic_gradient_descent or "
                "optax.optimistic_adam_v2 (configs: jgan.train.builders does this).")
    return simultaneous_step(state, batch, game=game, unroll_steps=unroll_steps,
                             axis_name=axis_name, micro_batches=micro_batches)


def make_step(game: Game, *, update_rule: str = "alternating",
              repeats: Mapping[str, int] | None = None, unroll_steps: int = 0,
              axis_name: str | None = None, micro_batches: int = 1) -> StepFn:
    """The step function `(state, batch) -> (state, metrics)` for `update_rule`.

    Args:
      game: the static game.
      update_rule: one of `UPDATE_RULES`.
      repeats: `{team: updates per step}`; only "alternating" takes more than 1.
      unroll_steps: differentiable updates of the adversary in the loss of the team
        updated last (Unrolled GAN; two-team games); 0 disables.
      axis_name: mapped axis inside `shard_map`/`pmap`, None under `jit`.
      micro_batches: accumulate each team update's gradients over this many slices of
        its batch (`jgan.core.accumulation`); not with extragradient or unrolling.
    Returns:
      The step, a plain function (not jitted): wrap it in `jax.jit` (with shardings)
      or `shard_map`; `chex.assert_max_traces` accepts it.
    """
    if update_rule not in UPDATE_RULES:
        raise ValueError(f"Unknown update_rule {update_rule!r}; expected one of {UPDATE_RULES}.")
    checked = _checked_repeats(game, repeats)
    if update_rule != "alternating" and max(checked.values()) != 1:
        raise ValueError(f"{update_rule} updates take one update per team; got repeats={repeats}.")
    if unroll_steps < 0:
        raise ValueError(f"unroll_steps must be >= 0, got {unroll_steps}.")
    if not isinstance(micro_batches, int) or micro_batches < 1:
        raise ValueError(f"micro_batches must be an int >= 1, got {micro_batches!r}.")
    if micro_batches > 1 and (update_rule == "extragradient" or unroll_steps):
        raise ValueError("Gradient accumulation (micro_batches > 1) takes the alternating, "
                         "simultaneous and optimistic rules without unrolling, not "
                         f"update_rule={update_rule!r} with unroll_steps={unroll_steps}.")
    if unroll_steps:
        unrolled_pair(game, required=True)
    if update_rule != "alternating" or unroll_steps:
        refuse_borrowing(game, f"update_rule={update_rule!r} with unroll_steps={unroll_steps}")
    rule = {"simultaneous": simultaneous_step, "optimistic": optimistic_step,
            "extragradient": extragradient_step}.get(update_rule)

    def step(state: GameState, batch: PyTree) -> tuple[GameState, Metrics]:
        if rule is None:
            return alternating_step(state, batch, game=game, repeats=checked,
                                    unroll_steps=unroll_steps, axis_name=axis_name,
                                    micro_batches=micro_batches)
        if micro_batches > 1:
            return rule(state, batch, game=game, unroll_steps=unroll_steps,
                        axis_name=axis_name, micro_batches=micro_batches)
        return rule(state, batch, game=game, unroll_steps=unroll_steps, axis_name=axis_name)

    step.__doc__ = (f"One {update_rule} step of the game's teams {list(game.teams)}: "
                    "(state, batch) -> (state, metrics).")
    return step
