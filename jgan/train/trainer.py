"""The training loop of an experiment: `train_and_evaluate(config, workdir)`.

One jitted step over a data-parallel device mesh (batch sharded along "data", state
replicated). Mixture data, and image data held in device memory (`data.on_device`),
are sampled on device inside a `lax.scan` of `steps_per_call` steps per call; other
image data comes from a grain pipeline, one step per call. A run can stop
at any point (SIGTERM included) and the same command resumes it exactly.
"""
from __future__ import annotations

import functools
import itertools
import json
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jgan.eval import suite
from jgan.eval.modes import PROTOCOL_NUM_SAMPLES, mode_statistics
from jgan.sharding import data_mesh, on_mesh
from jgan.core.step_parts import metrics_prefix
from jgan.saved_configs import upgrade_config
from jgan.families import evaluation as family_eval
from jgan.train import builders, writers
from jgan.train.checkpoint import RunCheckpoints
from jgan.train.input import MixtureInput, build_input, is_on_device
from jgan.train.resume import check_resumable

# Config keys a resumed run may change: how long and how often, not what is trained.
RESUMABLE_CHANGES = ("num_steps", "log_every", "sample_every", "checkpoint_every",
                     "progress_bar", "steps_per_call", "max_train_seconds")


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the message names the step and the loss."""


class _StopRequested:
    """Turns SIGTERM into a flag the loop checks between steps."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    def _handle(self, signum, frame):
        del signum, frame
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _check_resumable(config: ml_collections.ConfigDict, workdir: Path) -> None:
    resumable = set(RESUMABLE_CHANGES)
    if any(config.optimizer[team].schedule != "constant" for team in config.optimizer):
        resumable.discard("num_steps")  # the learning-rate schedule depends on it
    # What is measured may change on resume; what is trained may not.
    check_resumable(config, workdir, resumable=resumable | {"task"}, ignored_prefixes=("eval.",),
                    upgrade=upgrade_config)


def _events(step: int, config) -> set[str]:
    events = set()
    eval_every = config.eval.every if config.eval.metrics else 0
    for name, every in (("log", config.log_every), ("sample", config.sample_every),
                        ("checkpoint", config.checkpoint_every), ("eval", eval_every)):
        if every and step % every == 0:
            events.add(name)
    if step >= config.num_steps:
        events.update(("log", "sample", "checkpoint"))
    return events


def _chunk_length(step: int, config, steps_per_call: int) -> int:
    n = min(steps_per_call, config.num_steps - step)
    eval_every = config.eval.every if config.eval.metrics else 0
    for every in (config.log_every, config.sample_every, config.checkpoint_every, eval_every):
        if every:
            n = min(n, every - step % every)
    return max(n, 1)


def _out_of_time(start_time: float, limit: float) -> bool:
    """Whether `limit` seconds of training have passed; the same answer on every host."""
    if not limit:
        return False
    over = time.monotonic() - start_time >= limit
    if jax.process_count() > 1:  # hosts must leave the loop at the same step
        from jax.experimental import multihost_utils
        over = bool(multihost_utils.broadcast_one_to_all(np.asarray(over)))
    return over


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Trains the GAN that `config` describes, leaving everything in `workdir`.

    workdir gets `config.json`, `metrics.jsonl`, `tensorboard/`, `samples/`,
    `checkpoints/` and, at the end, `eval.json`.

    Returns:
      The final evaluation (the contents of eval.json).
    Raises:
      builders.ConfigError: a config value that cannot work, before compiling.
      NonFiniteLossError: a loss became NaN/inf; the last good checkpoint is kept.
    """
    builders.validate(config)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    is_main = jax.process_index() == 0
    _check_resumable(config, workdir)

    devices = np.array(jax.devices())
    mesh = data_mesh(devices)
    data_sharding = NamedSharding(mesh, P("data"))
    replicated = NamedSharding(mesh, P())
    if config.batch_size % len(devices):
        raise builders.ConfigError(
            f"config.batch_size: {config.batch_size} does not split over {len(devices)} devices.")

    inp = build_input(config, replicated)
    game = builders.build_game(config)
    step_fn = builders.build_step(config, game)
    # Each team's loss: a non-finite one stops the run; the progress bar shows them.
    loss_keys = tuple(f"{metrics_prefix(game, team)}_loss" for team in game.teams)

    example = inp.example_batch()
    init_fn = jax.jit(game.init, out_shardings=replicated)
    rng = jax.random.PRNGKey(config.seed)
    ckpts = RunCheckpoints(workdir / "checkpoints")
    start = ckpts.latest_step()
    if start is None:
        state = init_fn(rng, example)
        start = 0
    else:
        abstract = jax.eval_shape(init_fn, rng, example)
        abstract = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated), abstract)
        state, input_state = ckpts.restore(start, abstract)
        if not is_on_device(inp):
            inp.set_state(input_state["iterator"])
        print(f"Resumed from {ckpts.directory}/{start}.")
    if is_main:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
        (workdir / "samples").mkdir(exist_ok=True)

    if is_on_device(inp):
        def on_device_step(state, _=None):
            batch = jax.lax.with_sharding_constraint(inp.batch_at(state.step), data_sharding)
            return step_fn(state, batch)

        if jax.default_backend() == "cpu" and not isinstance(inp, MixtureInput):
            # XLA's CPU backend runs convolutions inside a while loop about 8x slower than
            # the same step outside one (DCGAN on MNIST, jax 0.10), and unrolling the scan
            # instead compiles a program per chunk length that grows with it (InfoGAN,
            # steps_per_call=100: over 8 minutes and 12 GB before the first step). One
            # compiled step called from Python costs neither.
            jitted_step = jax.jit(on_device_step, donate_argnums=0)

            def train_chunk(state, num_steps):
                per_step = []
                for _ in range(num_steps):
                    state, metrics = jitted_step(state)
                    per_step.append(metrics)
                return state, jax.tree.map(lambda *m: jnp.stack(m), *per_step)
        else:
            train_chunk = jax.jit(
                lambda state, num_steps: jax.lax.scan(on_device_step, state, None, length=num_steps),
                static_argnums=1, donate_argnums=0)
        steps_per_call = config.steps_per_call
    else:
        jitted_step = jax.jit(step_fn, donate_argnums=0)

        def train_chunk(state, num_steps):
            del num_steps
            local = inp.next()
            batch = {k: jax.make_array_from_process_local_data(data_sharding, np.asarray(v))
                     for k, v in local.items()}
            state, metrics = jitted_step(state, batch)
            return state, jax.tree.map(lambda m: m[None], metrics)
        steps_per_call = 1

    # Traced with the mesh in context, so that the examples a loss draws itself are split
    # over the devices like the real batch (jgan.sharding.shard_examples).
    train_chunk = on_mesh(mesh, train_chunk)

    sampler = builders.build_generator_inputs(config)
    use_ema = config.game.ema_decay is not None
    sample_key = jax.random.fold_in(rng, 2)

    generate = sampler and on_mesh(  # sampler None: a family that draws nothing from noise
        mesh, functools.partial(sampler.jitted_generate(game, use_ema=use_ema), key=sample_key))

    # The state samples and evaluations read: the training state, or it with the
    # generator's standing batch-norm statistics (eval.standing_stats).
    sampling_state = builders.build_sampling_state(config, game, sampler)
    grid_inputs, grid_columns = (sampler.grid(sample_key, config.num_sample_images)
                                 if sampler else (None, None))
    # The family's own grids (Family.sample_grids), written instead of the generator's.
    family_grids = builders.build_sample_grids(config, game)
    family_evaluation = builders.build_family_evaluation(config, game)  # Family.evaluation
    evaluator = (suite.Evaluator(suite.EvalSettings.from_config(config))
                 if config.eval.metrics else None)
    family_evaluator = family_eval.FamilyEvaluator.create(
        game, sampler, evaluator, generate=generate, seed_key=jax.random.fold_in(rng, 5))

    def eval_batches(state):
        # The same latents at every evaluation, so successive numbers differ only by G.
        key = jax.random.fold_in(rng, 4)
        for i in itertools.count():
            inputs = sampler.random(jax.random.fold_in(key, i), evaluator.settings.batch_size)
            yield np.asarray(jax.device_get(generate(state, inputs)))
    writer = writers.RunWriter(workdir, resume_step=start, enabled=is_main)

    def write_samples(state, step):
        # Every process takes part in the computation (with several hosts the state is
        # a global array); only the main one writes.
        state = sampling_state(state)
        if isinstance(inp, MixtureInput):
            inputs = sampler.random(jax.random.fold_in(sample_key, 1), PROTOCOL_NUM_SAMPLES)
            pts = np.asarray(jax.device_get(generate(state, inputs)))
            if not is_main:
                return
            img = writers.scatter_plot(pts, inp.mixture.means, workdir / "samples" / f"step_{step:07d}.png",
                                       title=f"step {step}")
        elif family_grids is not None:
            grids = jax.device_get(family_grids(state))
            if is_main:
                writers.write_grids(writer, grids, workdir / "samples", step)
            return
        else:
            images = np.asarray(jax.device_get(generate(state, grid_inputs)))
            if not is_main:
                return
            img = writers.image_grid(images, columns=grid_columns)
            writers.save_png(img, workdir / "samples" / f"step_{step:07d}.png")
        writer.write_image(step, "samples", img if img.shape[-1] == 3 else np.repeat(img, 3, -1))

    accum = defaultdict(list)
    last_logged = writer.logged_at(start, loss_keys)  # a finished run rerun keeps them
    last_checkpoint = start

    def absorb(pending):
        first_step, metrics = pending
        metrics = jax.device_get(metrics)
        for key in loss_keys:
            values = np.asarray(metrics[key])
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                s = first_step + int(bad[0])
                raise NonFiniteLossError(
                    f"Step {s}: {key} is {values[bad[0]]}. Training stopped; the last good "
                    f"checkpoint is step {last_checkpoint} in {ckpts.directory}.")
        for k, v in metrics.items():
            accum[k].append(np.asarray(v, np.float64))

    progress = None
    if config.progress_bar and is_main:
        from tqdm import tqdm
        progress = tqdm(total=config.num_steps, initial=start, unit="step", dynamic_ncols=True,
                        mininterval=1.0, file=sys.stderr)

    step, pending = start, None
    stopped = out_of_time = False
    time_limit = float(config.get("max_train_seconds", 0.0))
    start_time = time.monotonic()
    try:
        with _StopRequested() as stop:
            while step < config.num_steps:
                n = _chunk_length(step, config, steps_per_call)
                state, metrics = train_chunk(state, n)
                if pending is not None:
                    absorb(pending)  # the previous call's, while this one runs
                pending = (step + 1, metrics)
                step += n
                if progress is not None:
                    progress.update(n)
                events = _events(step, config)
                stop_now = stop.requested  # read once: SIGTERM may arrive at any moment
                if stop_now:
                    events.add("checkpoint")
                out_of_time = not stop_now and _out_of_time(start_time, time_limit)
                if out_of_time:  # ends like the last step: log, samples, checkpoint
                    events.update(("log", "sample", "checkpoint"))
                if not events:
                    continue
                absorb(pending)
                pending = None
                if "log" in events and accum:
                    last_logged = {k: float(np.mean(np.concatenate(v))) for k, v in accum.items()}
                    accum.clear()
                    writer.write_scalars(step, last_logged)
                    if progress is not None:
                        progress.set_postfix({k: f"{last_logged[k]:.3f}" for k in
                                              (*loss_keys, "d_acc_real", "d_acc_fake")
                                              if k in last_logged}, refresh=False)
                if "sample" in events:
                    write_samples(state, step)
                if "eval" in events and step < config.num_steps:  # the last one is final
                    view = sampling_state(state)
                    writer.write_scalars(step, suite.scalar_summary(
                        evaluator.evaluate(eval_batches(view))))
                    if family_evaluator is not None:
                        writer.write_scalars(step, family_eval.summary(family_evaluator(view)))
                if "checkpoint" in events:
                    input_state = ({"kind": "on_device"} if is_on_device(inp)
                                   else {"iterator": inp.get_state()})
                    ckpts.save(step, state, input_state)
                    last_checkpoint = step
                if stop_now:
                    stopped = True
                    break
                if out_of_time:
                    print(f"max_train_seconds={time_limit:g} reached at step {step}: "
                          "evaluating; rerun the same command to continue.", file=sys.stderr)
                    break
            if pending is not None:
                absorb(pending)
    finally:
        if progress is not None:
            progress.close()
        ckpts.close()
        writer.flush()

    if stopped:
        writer.close()
        print(f"SIGTERM: saved checkpoint at step {step} in {ckpts.directory}; rerun the same "
              "command to continue.", file=sys.stderr)
        raise SystemExit(128 + signal.SIGTERM)

    view = sampling_state(state)
    result = evaluate(config, view, inp, workdir, generate, last_logged, sampler)
    if out_of_time and step < config.num_steps:
        result["stopped_by_max_train_seconds"] = time_limit
    if evaluator is not None:
        result["metrics"] = evaluator.evaluate(eval_batches(view))
        writer.write_scalars(step, suite.scalar_summary(result["metrics"]))
        if family_evaluator is not None:
            result["family_metrics"] = family_evaluator(view)
            writer.write_scalars(step, family_eval.summary(result["family_metrics"]))
    if family_evaluation is not None:
        result["family_metrics"] = {**result.get("family_metrics", {}), **family_evaluation(view)}
    if is_main:
        (workdir / "eval.json").write_text(json.dumps(result, indent=2))
    writer.close()
    return result


def evaluate(config, state, inp, workdir: Path, generate, last_logged: dict, sampler) -> dict:
    """Final evaluation: mode coverage for mixtures and the last logged metrics.

    The metrics that `config.eval.metrics` names are added by the caller under "metrics".
    """
    result = {"step": int(jax.device_get(state.step)),
              "ema": config.game.ema_decay is not None,
              "final_metrics": last_logged}
    if config.eval.get("standing_stats", 0):
        result["standing_stats"] = config.eval.standing_stats
    if getattr(inp, "num_skipped", 0):
        result["skipped_files"] = inp.num_skipped
    if isinstance(inp, MixtureInput):
        key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 3)
        samples = np.asarray(generate(state, sampler.random(key, PROTOCOL_NUM_SAMPLES)))
        stats = mode_statistics(samples, inp.mixture.means, inp.mixture.std)
        result.update(stats)
        result["protocol"] = (f"Lin et al. 2018 (PacGAN): {PROTOCOL_NUM_SAMPLES} samples, "
                              f"nearest mode, high quality within {stats['threshold']:g} std "
                              f"(std={inp.mixture.std}); a mode is covered by >= 1 such sample.")
        if jax.process_index() == 0:
            writers.scatter_plot(samples, inp.mixture.means, workdir / "samples" / "final.png",
                                 title=f"{stats['modes']}/{inp.mixture.num_modes} modes, "
                                       f"{100 * stats['high_quality']:.1f}% high quality")
    return result
