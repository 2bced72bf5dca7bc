"""The training loop's parts on a toy run: a counter for a state, a chosen loss per step.

The trainers' own tests (test_experiments, test_classifier) run them end to end; these
pin down the loop's rules where they are cheap to reach: when events happen, what is
logged, and what SIGTERM and a non-finite loss leave behind.
"""
from __future__ import annotations

import io
import json
import os
import signal

import jax.numpy as jnp
import numpy as np
import pytest

from jgan.checkpoints import RunCheckpoints
from jgan.errors import NonFiniteLossError, NonFiniteStateError
from jgan.train import writers
from jgan.train.loop import TrainingLoop
from jgan.train.progress import Progress
from jgan.train.metrics import MetricsAccumulator
from jgan.train.schedule import EventSchedule


def test_events_fall_on_their_periods_and_all_at_the_end():
    schedule = EventSchedule(every={"log": 4, "checkpoint": 6, "eval": 0}, at_end=("log", "checkpoint"),
                             num_steps=10)
    assert [sorted(schedule.events(s)) for s in (3, 4, 6, 12)] == [
        [], ["log"], ["checkpoint"], ["checkpoint", "log"]]
    assert schedule.events(10) == {"log", "checkpoint"}
    # A call ends at the next event or at the end, and runs at least one step.
    assert [schedule.chunk_length(s, 100) for s in (0, 4, 6, 8, 9)] == [4, 2, 2, 2, 1]
    assert schedule.chunk_length(0, 3) == 3


def test_metrics_are_averaged_between_logs_and_read_one_call_late():
    acc = MetricsAccumulator(("loss",), lambda: "step 0 in DIR")
    acc.add(1, {"loss": jnp.array([1.0, 2.0])})
    assert acc.means() == {}  # the call's metrics are still on the device
    acc.add(3, {"loss": jnp.array([3.0, 6.0])})
    acc.flush()
    assert acc.means() == {"loss": 3.0}
    assert acc.means() == {}


def test_a_non_finite_loss_names_its_step_and_the_last_good_checkpoint():
    acc = MetricsAccumulator(("loss",), lambda: "step 8 in DIR")
    acc.add(11, {"loss": jnp.array([0.5, jnp.nan, 1.0]), "other": jnp.array([np.inf] * 3)})
    with pytest.raises(NonFiniteLossError, match=r"^Step 12: loss is nan\. .* step 8 in DIR\.$"):
        acc.flush()


class _Input:
    """A pipeline's stand-in: its position is the number of batches taken."""
    position = 0

    def get_state(self):
        return {"position": self.position}


def _loop(tmp_path, losses, *, handlers=None, on_step=None, sample_every=0, weights=None,
          progress=None):
    """A loop over 10 steps, 3 per call at most, logging every 4 and checkpointing
    every 6; step s (from 1) reports loss `losses[s - 1]` and leaves the state's
    weight at `weights[s - 1]` (1.0 by default)."""
    weights = np.ones(10) if weights is None else weights

    def train_chunk(state, n):
        steps = state["step"] + 1 + jnp.arange(n)
        if on_step is not None:
            on_step(int(state["step"]) + n)
        new_state = {"step": state["step"] + n, "w": jnp.asarray(weights)[steps[-1] - 1]}
        return new_state, {"loss": jnp.asarray(losses)[steps - 1]}

    writer = writers.RunWriter(tmp_path)
    return TrainingLoop(
        schedule=EventSchedule(every={"log": 4, "checkpoint": 6, "sample": sample_every},
                               at_end=("log", "checkpoint"), num_steps=10),
        train_chunk=train_chunk, steps_per_call=3, checked=("loss",),
        ckpts=RunCheckpoints(tmp_path / "checkpoints"), writer=writer, inp=_Input(),
        progress=progress or Progress(False, 10, 0, dict, active=False), handlers=handlers or {})


_START = {"step": jnp.array(0), "w": jnp.array(1.0)}


def _logged(tmp_path):
    return [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]


def test_the_loop_logs_means_runs_handlers_and_checkpoints_on_schedule(tmp_path):
    seen = []
    loop = _loop(tmp_path, np.arange(1.0, 11.0),
                 handlers={"sample": lambda state, step: seen.append((step, int(state["step"])))},
                 sample_every=5)
    end = loop.run(_START, 0)
    assert end.step == 10 and not end.out_of_time and end.last_logged == {"loss": 9.5}
    assert _logged(tmp_path) == [{"step": 4, "loss": 2.5}, {"step": 8, "loss": 6.5},
                                 {"step": 10, "loss": 9.5}]
    assert seen == [(5, 5), (10, 10)]  # a call ends where an event falls
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [6, 10]


def test_sigterm_checkpoints_where_it_arrives_and_exits_143(tmp_path):
    def terminate_after(step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    loop = _loop(tmp_path, np.ones(10), on_step=terminate_after)
    with pytest.raises(SystemExit) as exit_:
        loop.run(_START, 0)
    assert exit_.value.code == 128 + signal.SIGTERM
    ckpts = RunCheckpoints(tmp_path / "checkpoints")
    assert ckpts.latest_step() == 3
    ckpts.close()


def test_a_non_finite_loss_stops_before_the_next_checkpoint(tmp_path):
    losses = np.ones(10)
    losses[4] = np.inf  # step 5; the next checkpoint would be step 6
    with pytest.raises(NonFiniteLossError,
                       match="Step 5: loss is inf.*last good checkpoint is none: no checkpoint"):
        _loop(tmp_path, losses).run(_START, 0)
    assert not any(p.name.isdigit() for p in (tmp_path / "checkpoints").iterdir())


def test_sigint_checkpoints_like_sigterm_and_exits_130(tmp_path):
    def interrupt_after(step):
        if step == 8:  # a log step, not a checkpoint step
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(SystemExit) as exit_:
        _loop(tmp_path, np.ones(10), on_step=interrupt_after).run(_START, 0)
    assert exit_.value.code == 128 + signal.SIGINT
    ckpts = RunCheckpoints(tmp_path / "checkpoints")
    assert ckpts.latest_step() == 8
    ckpts.close()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_a_non_finite_parameter_with_finite_losses_is_never_checkpointed(tmp_path):
    weights = np.ones(10)
    weights[7:] = np.nan  # from step 8; the losses stay finite
    with pytest.raises(NonFiniteStateError,
                       match=r"Step 10: state\['w'\] holds NaN.*checkpoint is step 6 in"):
        _loop(tmp_path, np.ones(10), weights=weights).run(_START, 0)
    ckpts = RunCheckpoints(tmp_path / "checkpoints")
    assert ckpts.latest_step() == 6
    ckpts.close()


def test_the_bar_shows_each_logged_mean_beside_its_step_and_its_last_line_once(tmp_path):
    out = io.StringIO()  # a log file: tqdm writes every redraw, none overwritten
    progress = Progress(True, 10, 0, dict, stream=out)
    bar = progress._bar  # draw at every update, as a slow run does
    bar.mininterval, bar.miniters, bar.dynamic_miniters = 0, 0, False
    _loop(tmp_path, np.arange(1.0, 11.0), progress=progress).run(_START, 0)
    lines = [line.strip() for line in out.getvalue().replace("\r", "\n").splitlines()
             if line.strip()]
    drawn = {line.split("|")[2].split("[")[0].strip(): line for line in lines if "|" in line}
    assert "loss=2.5" in drawn["4/10"] and "loss=6.5" in drawn["8/10"]
    assert sum("10/10" in line for line in lines) == 1 and "loss=9.5" in lines[-1]


def test_without_a_bar_logged_steps_print_lines(tmp_path, capsys):
    out = io.StringIO()
    _loop(tmp_path, np.arange(1.0, 11.0),
          progress=Progress(False, 10, 0, dict, stream=out, line_interval=0.0)).run(_START, 0)
    lines = out.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "step 4/10: loss=2.5", "step 8/10: loss=6.5", "step 10/10: loss=9.5"]
    assert all(line.endswith("steps/s)") for line in lines)
    # Lines at most every line_interval seconds, but always the first and the last.
    out = io.StringIO()
    _loop(tmp_path / "slow", np.arange(1.0, 11.0),
          progress=Progress(False, 10, 0, dict, stream=out, line_interval=3600.0)).run(_START, 0)
    assert [line.split(" (")[0] for line in out.getvalue().splitlines()] == [
        "step 4/10: loss=2.5", "step 10/10: loss=9.5"]


def test_the_summary_names_the_step_the_headline_and_the_outputs(tmp_path, capsys):
    (tmp_path / "eval.json").write_text("{}")
    (tmp_path / "samples").mkdir()
    Progress(False, 10, 4, dict).summary(10, {"modes": 8, "high_quality": 0.97}, tmp_path)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("Done: step 10/10 (6 steps in this call, ")
    assert printed[1:] == ["  modes=8 high_quality=0.97", f"  in {tmp_path}: eval.json, samples/"]
    Progress(False, 10, 4, dict, active=False).summary(10, {}, tmp_path)
    assert capsys.readouterr().out == ""  # not the main process
