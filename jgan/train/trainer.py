"""The training loop of any family's experiment: `train_and_evaluate(config, workdir)`.

One jitted step over the config's device mesh (batch split over every device, state
replicated or sharded FSDP-style over a "model" axis, `jgan.state_sharding`), called `steps_per_call` steps at a time (`jgan.train.chunks`). A run can
stop at any point (SIGTERM included) and the same command resumes it exactly.

The parts, each a module of `jgan.train`: `setup` (workdir, mesh, state restored or
made), `chunks` (the training call), `loop` (events, stop signals, checkpoints, with
`schedule`, `stopping` and `metrics`), `staged` (the state and call of each stage),
`samples` (sample images), `run_evaluation`
(metrics during training and eval.json).
"""
from __future__ import annotations

from pathlib import Path

import jax
import ml_collections

from jgan.checkpoints import RunCheckpoints
from jgan.core.step_parts import metrics_prefix
from jgan.saved_configs import upgrade_config
from jgan.sharding import on_mesh
from jgan.train import builders, writers
from jgan.train.chunks import make_train_chunk
from jgan.train.run_evaluation import RunEvaluation, headline
from jgan.train.input import build_input
from jgan.train.loop import TrainingLoop
from jgan.train.progress import Progress
from jgan.train.resume import check_resumable
from jgan.train.samples import SampleWriter, Sampling
from jgan.train.schedule import EventSchedule
from jgan.train.setup import DataParallel, open_workdir, save_config
from jgan.train.staged import StagedTraining

# Config keys a resumed run may change: how long and how often, not what is trained.
RESUMABLE_CHANGES = ("num_steps", "log_every", "sample_every", "checkpoint_every",
                     "checkpoints_kept", "progress_bar", "steps_per_call", "max_train_seconds", "mesh.model",
                     "mesh.min_shard_size")
# The logged means the progress bar shows besides each team's loss.
PROGRESS_EXTRAS = ("d_acc_real", "d_acc_fake")


def _check_resumable(config: ml_collections.ConfigDict, workdir: Path) -> None:
    resumable = set(RESUMABLE_CHANGES)
    if any(team.schedule != "constant" for team in config.optimizer.values()):
        resumable.discard("num_steps")  # the learning-rate schedule depends on it
    # What is measured may change on resume; what is trained may not.
    check_resumable(config, workdir, resumable=resumable | {"task"}, ignored_prefixes=("eval.",),
                    upgrade=upgrade_config)


def event_schedule(config: ml_collections.ConfigDict,
                   boundaries: tuple[int, ...] = ()) -> EventSchedule:
    """When a run logs, samples, checkpoints and evaluates; the evaluation after
    the last step is the final one (eval.json), not an event. No call crosses a stage
    boundary."""
    eval_every = config.eval.every if config.eval.metrics else 0
    return EventSchedule(every={"log": config.log_every, "sample": config.sample_every,
                                "checkpoint": config.checkpoint_every, "eval": eval_every},
                         at_end=("log", "sample", "checkpoint"), num_steps=config.num_steps,
                         boundaries=boundaries)


def _in_last_stage(staged: StagedTraining, handler):
    # Samples and evaluations read the last stage's networks: earlier stages (pretraining)
    # may not have them yet.
    def handle(state, step):
        if staged.stage_index() == len(staged.stages) - 1:
            handler(state, step)
    return handle


def _samples_in_each_stage(config: ml_collections.ConfigDict, staged: StagedTraining,
                           last: SampleWriter, make_writer):
    """Sample grids in every stage whose game has the network samples come from (each
    resolution of progressive growing); none in a stage without it (ADDA's pretraining).
    `last` is the run's writer (the last stage's networks); the others are built when
    their stage first samples."""
    sampler = builders.build_generator_inputs(config)
    by_stage = {len(staged.stages) - 1: last}

    def handle(state, step):
        index = staged.stage_index()
        if index not in by_stage:
            game = staged.stages[index].game
            draws = sampler is not None and any(
                sampler.network in team.networks for team in game.teams.values())
            by_stage[index] = make_writer(game) if draws else None
        if by_stage[index] is not None:
            by_stage[index](state, step)
    return handle


def _progress(config: ml_collections.ConfigDict, start: int, loss_keys: tuple[str, ...]) -> Progress:
    keys = (*loss_keys, *PROGRESS_EXTRAS)
    return Progress(config.progress_bar, config.num_steps, start,
                    lambda logged: {k: logged[k] for k in keys if k in logged},
                    active=jax.process_index() == 0)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Trains the model that `config` describes, leaving everything in `workdir`.

    workdir gets `config.json`, `metrics.jsonl`, `tensorboard/`, `samples/`,
    `checkpoints/` and, at the end, `eval.json`.

    Returns:
      The final evaluation (the contents of eval.json).
    Raises:
      builders.ConfigError: a config value that cannot work, before compiling.
      jgan.errors.NonFiniteLossError: a loss became NaN/inf; the last good checkpoint
        is kept.
      SystemExit(143): SIGTERM, after saving a checkpoint to resume from.
    """
    builders.validate(config)
    workdir = open_workdir(config, workdir, _check_resumable)
    devices = DataParallel.over_all_devices(config, ("batch_size",))
    inp = build_input(config, devices.replicated)
    stages = builders.build_stages(config)
    game = stages[-1].game   # the networks samples and evaluations read
    rng = jax.random.PRNGKey(config.seed)
    ckpts = RunCheckpoints(workdir / "checkpoints",
                           max_to_keep=config.checkpoints_kept or None)
    staged = StagedTraining(
        stages, make_chunk=lambda step_fn: make_train_chunk(config, inp, step_fn, devices.data),
        make_step=builders.build_stage_step, rng=rng, example=inp.example_batch(),
        state_sharding=devices.state_shardings)
    state, start = staged.restore_or_init(ckpts, inp)
    save_config(config, workdir)
    if jax.process_index() == 0:
        (workdir / "samples").mkdir(exist_ok=True)

    sampling = Sampling.build(config, game, devices.mesh, rng)
    evaluation = RunEvaluation(config, game, inp, sampling, rng)
    writer = writers.RunWriter(workdir, resume_step=start, enabled=jax.process_index() == 0)
    # Each team's loss: a non-finite one stops the run; the progress bar shows them.
    loss_keys = tuple(dict.fromkeys(f"{metrics_prefix(stage.game, team)}_loss"
                                    for stage in stages for team in stage.game.teams))
    loop = TrainingLoop(
        schedule=event_schedule(config, staged.boundaries),
        # Traced with the mesh in context, so that the examples a loss draws itself are
        # split over the devices like the real batch (jgan.sharding.shard_examples).
        train_chunk=on_mesh(devices.mesh, staged.train_chunk),
        steps_per_call=staged.steps_per_call,
        checked=loss_keys, ckpts=ckpts, writer=writer, inp=inp,
        progress=_progress(config, start, loss_keys),
        handlers={"sample": _samples_in_each_stage(
                      config, staged, SampleWriter(config, game, inp, sampling, writer, workdir),
                      lambda stage_game: SampleWriter(
                          config, stage_game, inp, Sampling.build(config, stage_game,
                                                                  devices.mesh, rng),
                          writer, workdir)),
                  "eval": _in_last_stage(staged, lambda state, step: evaluation.during_training(
                      state, step, writer))},
        time_limit=float(config.get("max_train_seconds", 0.0)))
    end = loop.run(state, start)
    result = evaluation.final(end, workdir, writer)
    writer.close()
    loop.progress.summary(end.step, headline(result), workdir)
    return result
