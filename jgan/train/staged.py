"""A run's training call across its stages (`jgan.core.stages`).

A run is a sequence of stages, each a game trained for its own number of steps (one
stage for most families). `StagedTraining` starts or restores the state of the stage a
step belongs to, runs each call with that stage's step, and right after a stage's last
step carries the networks into the next stage's game (`carry_state`). The boundary
step therefore belongs to the next stage (`stage_at`) and a checkpoint written there
already holds that stage's state: the step of a checkpoint records its stage, and a
run resumed at or after a boundary continues exactly.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import jax

from jgan.checkpoints import RunCheckpoints
from jgan.core.stages import Stage, carry_state, stage_at
from jgan.train.setup import restore_or_init

# The key a stage's fresh init (before carrying) is drawn with: fold_in(run key, this + i).
_INIT_KEY_OFFSET = 100


class StagedTraining:
    """The state and the training call of a run in `stages`.

    Args:
      stages: the run's stages; their steps sum to the run's.
      make_chunk: `step_fn -> (train_chunk, steps_per_call)` for one stage's step.
      make_step: `Stage -> step_fn(state, batch)`.
      rng: the run's key; stage 0 starts from `game.init(rng, example)`.
      example: a batch, for `Game.init`.
      state_sharding: `abstract state -> shardings`, where each array of a stage's
        state lives (`DataParallel.state_shardings`); the step keeps that layout.
    """

    def __init__(self, stages: Sequence[Stage], *, make_chunk: Callable,
                 make_step: Callable, rng: jax.Array, example, state_sharding: Callable):
        self.stages = tuple(stages)
        self._make_chunk = make_chunk
        self._make_step = make_step
        self._rng = rng
        self._example = example
        self._shardings = [state_sharding(jax.eval_shape(stage.game.init, rng, example))
                           for stage in self.stages]
        self._inits = [jax.jit(stage.game.init, out_shardings=shardings)
                       for stage, shardings in zip(self.stages, self._shardings)]
        self._chunks: dict[int, tuple[Callable, int]] = {}
        self._state_sharding = state_sharding
        self.step = 0

    @property
    def boundaries(self) -> tuple[int, ...]:
        """The steps at which a stage ends and the next begins."""
        ends, total = [], 0
        for stage in self.stages[:-1]:
            total += stage.num_steps
            ends.append(total)
        return tuple(ends)

    @property
    def steps_per_call(self) -> int:
        """The most steps a call runs (the same for every stage's step)."""
        return self._chunk(0)[1]

    def stage_index(self) -> int:
        """The index of the stage the next step belongs to."""
        return stage_at(self.stages, self.step)[0]

    def restore_or_init(self, ckpts: RunCheckpoints, inp):
        """The state to continue from: the latest checkpoint's, laid out like its stage's
        game, or stage 0's fresh state."""
        latest = ckpts.latest_step()
        index = stage_at(self.stages, latest)[0] if latest is not None else 0
        init = self._inits[index]
        state, self.step = restore_or_init(ckpts, init, (self._init_key(index), self._example),
                                           inp, self._state_sharding)
        return state, self.step

    def train_chunk(self, state, num_steps: int):
        """Runs `num_steps` steps of the current stage (a call never crosses a boundary);
        after a stage's last step, the state is the next stage's."""
        index = self.stage_index()
        train_chunk, _ = self._chunk(index)
        state, metrics = train_chunk(state, num_steps)
        self.step += num_steps
        if self.step in self.boundaries:
            nxt = index + 1
            fresh = self._inits[nxt](self._init_key(nxt), self._example)
            state = carry_state(state, fresh, previous_game=self.stages[index].game,
                                carry_from=self.stages[nxt].carry_from)
        return state, metrics

    def _init_key(self, index: int) -> jax.Array:
        return self._rng if index == 0 else jax.random.fold_in(self._rng, _INIT_KEY_OFFSET + index)

    def _chunk(self, index: int) -> tuple[Callable, int]:
        if index not in self._chunks:
            self._chunks[index] = self._make_chunk(
                _keeping_layout(self._make_step(self.stages[index]), self._shardings[index]))
        return self._chunks[index]


def _keeping_layout(step_fn: Callable, shardings) -> Callable:
    """`step_fn` whose new state is laid out as `shardings` (the state it was given), so
    that a sharded state stays sharded from call to call whatever XLA would choose."""
    def step(state, batch):
        state, metrics = step_fn(state, batch)
        return jax.lax.with_sharding_constraint(state, shardings), metrics
    return step
