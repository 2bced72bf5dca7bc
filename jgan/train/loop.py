"""The loop every trainer runs: calls of steps, and the events between them.

After each call the loop checks the metrics (`MetricsAccumulator`), then runs the
events due (`EventSchedule`) in a fixed order: log, sample, eval, checkpoint. The run
may end early: on SIGTERM it checkpoints and exits with status 143; past
`max_train_seconds` it logs, samples and checkpoints as at its last step and returns,
for the caller to evaluate. Either way the same command resumes it exactly.
"""
from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

import numpy as np

from jgan.checkpoints import RunCheckpoints
from jgan.train import writers
from jgan.train.metrics import MetricsAccumulator, check_state_finite
from jgan.train.progress import Progress
from jgan.train.schedule import EventSchedule
from jgan.train.setup import input_position
from jgan.train.stopping import StopRequested, TimeLimit, exit_status

# The events a caller handles itself, in the order they run (after "log").
CALLER_EVENTS = ("sample", "eval")


@dataclasses.dataclass
class LoopEnd:
    """How the loop ended: the state and step, the last logged means, and whether
    `max_train_seconds` stopped it."""
    state: object
    step: int
    last_logged: dict
    out_of_time: bool


@dataclasses.dataclass
class TrainingLoop:
    """Runs `train_chunk(state, n) -> (state, {name: [n] per-step values})` to
    `schedule.num_steps`, writing what the events ask for.

    Attributes:
      schedule: when each event happens.
      train_chunk: runs n steps in one call.
      steps_per_call: the most steps a call runs.
      checked: the metrics that must stay finite.
      ckpts: where checkpoints go; closed when the loop ends.
      writer: metrics.jsonl and TensorBoard; flushed when the loop ends.
      inp: the input, whose position checkpoints record.
      progress: the progress bar; closed when the loop ends.
      handlers: `{"sample" | "eval": fn(state, step)}`, the events the caller handles.
      time_limit: seconds of training before the run stops early (0: none).
      mean_dtype: what logged means are computed in.
    """
    schedule: EventSchedule
    train_chunk: Callable
    steps_per_call: int
    checked: tuple[str, ...]
    ckpts: RunCheckpoints
    writer: writers.RunWriter
    inp: object
    progress: Progress
    handlers: dict[str, Callable] = dataclasses.field(default_factory=dict)
    time_limit: float = 0.0
    mean_dtype: type = np.float64

    def run(self, state, start: int) -> LoopEnd:
        """Trains from step `start`.

        Raises:
          SystemExit(143 | 130): SIGTERM or SIGINT, after checkpointing.
          NonFiniteLossError: a checked metric is NaN or infinite.
          NonFiniteStateError: the state to be checkpointed holds NaN or infinity.
        """
        self._last_checkpoint = self.ckpts.latest_step()
        # A run resumed at its end (rerun after it finished, or killed before eval.json)
        # reports the means it logged there, as the uninterrupted run did.
        self._last_logged = self.writer.logged_at(start, self.checked)
        self._metrics = MetricsAccumulator(
            self.checked, self._resume_point, dtype=self.mean_dtype)
        try:
            with StopRequested() as stop:
                state, step, stopped, out_of_time = self._steps(state, start, stop)
        finally:
            self.progress.close()
            self.ckpts.close()
            self.writer.flush()
        if stopped:
            self.writer.close()
            print(f"{stop.name}: saved checkpoint at step {step} in {self.ckpts.directory}; "
                  "rerun the same command to continue.", file=sys.stderr)
            raise SystemExit(exit_status(stop.signum))
        return LoopEnd(state, step, self._last_logged, out_of_time)

    def _resume_point(self) -> str:
        """Where a rerun continues from, for error messages."""
        if self._last_checkpoint is None:
            return (f"none: no checkpoint was written yet in {self.ckpts.directory}, so a "
                    "rerun starts from step 0")
        return f"step {self._last_checkpoint} in {self.ckpts.directory}"

    def _steps(self, state, step: int, stop: StopRequested):
        stopped = out_of_time = False
        time_limit = TimeLimit(self.time_limit)
        while step < self.schedule.num_steps:
            n = self.schedule.chunk_length(step, self.steps_per_call)
            state, metrics = self.train_chunk(state, n)
            self._metrics.add(step + 1, metrics)  # reads the previous call's, while this runs
            step += n
            events = self.schedule.events(step)
            stop_now = stop.requested  # read once: SIGTERM may arrive at any moment
            if stop_now:
                events.add("checkpoint")
            out_of_time = not stop_now and time_limit.reached()
            if out_of_time:  # ends like the last step
                events.update(self.schedule.at_end)
            if events:
                self._handle(events, state, step)  # shows the means logged at `step` ...
            self.progress.update(n)                # ... before the bar reaches it
            if stop_now:
                stopped = True
                break
            if out_of_time:
                print(f"max_train_seconds={self.time_limit:g} reached at step {step}: "
                      "evaluating; rerun the same command to continue.", file=sys.stderr)
                break
        self._metrics.flush()
        return state, step, stopped, out_of_time

    def _handle(self, events: set[str], state, step: int) -> None:
        self._metrics.flush()
        if "log" in events:
            means = self._metrics.means()
            if means:
                self._last_logged = means
                self.writer.write_scalars(step, means)
                self.progress.show(step, means)
        for name in CALLER_EVENTS:
            if name in events and name in self.handlers:
                self.handlers[name](state, step)
        if "checkpoint" in events:
            # Losses were checked above (flush); a NaN can still hide in a parameter.
            check_state_finite(state, step, self._resume_point)
            self.ckpts.save(step, state, input_position(self.inp))
            self._last_checkpoint = step
