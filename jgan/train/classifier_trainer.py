"""Trains the evaluation classifier: `train_and_evaluate(config, workdir)`.

A `DigitClassifier` learns the labels of a TFDS image dataset, of one domain of a
translation task or of one attribute group of StarGAN's digits
(`jgan.data.classification_sources`), with cross entropy, AdamW and
a warmup + cosine learning-rate schedule, on random shifts (and optionally flips) of
the training images made on device. One jitted step over a data-parallel device mesh
(batch sharded along "data", state replicated), run by the GAN trainer's loop
(`jgan.train.loop`): the same checkpoints of the state and the input position, so
rerunning the command resumes the run exactly, and the same SIGTERM handling. The test
split is evaluated whole, no example dropped.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jgan.data import classification_sources
from jgan.data import in_memory
from jgan.eval.classifier_state import (
    SCHEDULES,
    TASK,
    ClassifierState,
    create_state,
    learning_rate_schedule,
)
from jgan.checkpoints import RunCheckpoints
from jgan.errors import ConfigError
from jgan.saved_configs import upgrade_config
from jgan.train import writers
from jgan.train.chunks import one_step_per_call, pipeline_batch
from jgan.train.input import DeviceDataInput, PipelineInput, is_on_device
from jgan.train.loop import TrainingLoop
from jgan.train.progress import Progress
from jgan.train.resume import check_resumable
from jgan.train.schedule import EventSchedule
from jgan.train.setup import DataParallel, open_workdir, restore_or_init, save_config

# Config keys a resumed run may change: how often it reports, not what it trains.
RESUMABLE_CHANGES = ("log_every", "eval_every", "checkpoint_every", "progress_bar")


def _require(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"config.{key}: {message}")


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks a classifier config's values. Raises ConfigError naming the key."""
    _require(config.get("task") == TASK, "task", f"{config.get('task')!r} is not {TASK!r}.")
    d = config.data
    _require(d.kind in classification_sources.KINDS, "data.kind",
             f"{d.kind!r} is not one of {classification_sources.KINDS}.")
    target = d.get("target", "label")
    _require(d.kind == "attribute_digits" or target == "label", "data.target",
             f"{target!r}: only attribute_digits has targets other than 'label'.")
    _require(d.kind != "attribute_digits" or target in classification_sources.TARGET_CLASSES,
             "data.target", f"{target!r} is not one of "
             f"{tuple(classification_sources.TARGET_CLASSES)}.")
    classes = classification_sources.target_classes(d)
    _require(classes is None or config.model.num_classes == classes, "model.num_classes",
             f"data.target={target!r} has {classes} classes, got {config.model.num_classes}.")
    _require(d.resolution >= 8, "data.resolution", f"must be >= 8, got {d.resolution}.")
    _require(d.channels in (1, 3), "data.channels", f"must be 1 or 3, got {d.channels}.")
    _require(d.get("resize", "bicubic") in ("bicubic", "pad"), "data.resize",
             f"{d.get('resize')!r} is not bicubic or pad.")
    _require(config.num_steps >= 1, "num_steps", f"must be >= 1, got {config.num_steps}.")
    for key in ("batch_size", "eval_batch_size"):
        _require(config[key] >= 1, key, f"must be >= 1, got {config[key]}.")
    for key in ("log_every", "eval_every", "checkpoint_every"):
        _require(config[key] >= 0, key, f"must be >= 0 (0: only at the end), got {config[key]}.")
    m = config.model
    _require(m.num_classes >= 2, "model.num_classes", f"must be >= 2, got {m.num_classes}.")
    _require(m.width >= 1, "model.width", f"must be >= 1, got {m.width}.")
    _require(m.features >= 1, "model.features", f"must be >= 1, got {m.features}.")
    _require(0.0 <= m.dropout_rate < 1.0, "model.dropout_rate",
             f"must be in [0, 1), got {m.dropout_rate}.")
    o = config.optimizer
    _require(o.learning_rate > 0, "optimizer.learning_rate", f"must be > 0, got {o.learning_rate}.")
    _require(o.weight_decay >= 0, "optimizer.weight_decay", f"must be >= 0, got {o.weight_decay}.")
    _require(o.schedule in SCHEDULES, "optimizer.schedule",
             f"{o.schedule!r} is not one of {SCHEDULES}.")
    _require(0 <= o.warmup_steps < config.num_steps, "optimizer.warmup_steps",
             f"must be in [0, num_steps={config.num_steps}), got {o.warmup_steps}.")
    _require(0 <= config.augment.max_shift < d.resolution, "augment.max_shift",
             f"must be in [0, data.resolution={d.resolution}), got {config.augment.max_shift}.")


def augment(key: jax.Array, images: jax.Array, *, max_shift: int,
            horizontal_flip: bool) -> jax.Array:
    """Random translations (and mirror images) of a batch, made on device.

    Each image `(N, H, W, C)` is shifted by its own (dy, dx), uniform in
    [-max_shift, max_shift]^2; pixels shifted in are -1 (the background of
    MNIST-like data in [-1, 1]). With `horizontal_flip` each image is also mirrored
    left-right with probability 1/2 (for clothes, not digits).
    """
    n, h, w, c = images.shape
    shift_key, flip_key = jax.random.split(key)
    if max_shift:
        s = max_shift
        padded = jnp.pad(images, ((0, 0), (s, s), (s, s), (0, 0)), constant_values=-1.0)
        corners = jax.random.randint(shift_key, (n, 2), 0, 2 * s + 1)
        images = jax.vmap(lambda img, yx: jax.lax.dynamic_slice(img, (yx[0], yx[1], 0), (h, w, c)))(
            padded, corners)
    if horizontal_flip:
        flip = jax.random.bernoulli(flip_key, 0.5, (n, 1, 1, 1))
        images = jnp.where(flip, images[:, :, ::-1], images)
    return images


def make_train_step(config: ml_collections.ConfigDict):
    """`(state, batch) -> (state, metrics)`; the randomness of step s is
    `fold_in(PRNGKey(seed + 1), s)`, so a resumed run repeats it exactly."""
    step_key = jax.random.PRNGKey(config.seed + 1)
    schedule = learning_rate_schedule(config)

    def train_step(state: ClassifierState, batch: dict) -> tuple[ClassifierState, dict]:
        augment_key, dropout_key = jax.random.split(jax.random.fold_in(step_key, state.step))
        images = augment(augment_key, batch["image"], max_shift=config.augment.max_shift,
                         horizontal_flip=config.augment.horizontal_flip)

        def loss_fn(params):
            (logits, _), updates = state.apply_fn(
                {"params": params, "batch_stats": state.batch_stats}, images, train=True,
                rngs={"dropout": dropout_key}, mutable=["batch_stats"])
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
            return loss, (logits, updates.get("batch_stats", {}))

        (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        metrics = {"train_loss": loss,
                   "train_accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"]),
                   "learning_rate": schedule(state.step)}
        return state.apply_gradients(grads=grads, batch_stats=batch_stats), metrics

    return train_step


class EvalSplit:
    """A whole evaluation split in memory: `images` float32 (N, R, R, C) in [-1, 1] and
    `labels` int32 (N,), read once through the training pipeline's preprocessing."""

    def __init__(self, config: ml_collections.ConfigDict):
        d = config.data
        source = classification_sources.classification_source(d, d.eval_split, seed=config.seed)
        arrays = in_memory.load_examples(source, resolution=d.resolution, channels=d.channels,
                                         resize=d.get("resize", "bicubic"))
        images = arrays["image"]
        if images.dtype == np.uint8:  # the pipeline's x / 127.5 - 1, in float32
            images = images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        self.images, self.labels = images, arrays["label"]


def make_evaluate(mesh: Mesh, batch_size: int):
    """`(state, split) -> {test_loss, test_accuracy, num_test}`: the mean cross
    entropy and accuracy over every test example, in sharded batches of `batch_size`
    (the last one padded and masked)."""
    data_sharding = NamedSharding(mesh, P("data"))

    @jax.jit
    def sums(state, images, labels, mask):
        logits, _ = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats},
                                   images, train=False)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        correct = jnp.argmax(logits, -1) == labels
        return jnp.sum(jnp.where(mask, loss, 0.0)), jnp.sum(correct & mask)

    def put(array):
        # Every process holds the whole split, so each can fill any shard.
        return jax.make_array_from_callback(array.shape, data_sharding, lambda idx: array[idx])

    def evaluate(state: ClassifierState, split: EvalSplit) -> dict:
        n = len(split.labels)
        total_loss, total_correct = 0.0, 0
        for start in range(0, n, batch_size):
            images = split.images[start:start + batch_size]
            labels = split.labels[start:start + batch_size]
            mask = np.ones(len(labels), bool)
            pad = batch_size - len(labels)
            if pad:
                images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
                labels = np.concatenate([labels, np.zeros(pad, labels.dtype)])
                mask = np.concatenate([mask, np.zeros(pad, bool)])
            loss, correct = jax.device_get(sums(state, put(images), put(labels), put(mask)))
            total_loss += float(loss)
            total_correct += int(correct)
        return {"test_loss": total_loss / n, "test_accuracy": total_correct / n, "num_test": n}

    return evaluate


def _check_resumable(config: ml_collections.ConfigDict, workdir: Path) -> None:
    check_resumable(config, workdir, resumable=RESUMABLE_CHANGES, what="classifier run",
                    upgrade=upgrade_config)


def event_schedule(config: ml_collections.ConfigDict) -> EventSchedule:
    """When a classifier run logs, evaluates the test split and checkpoints: every
    `log_every`, `eval_every` and `checkpoint_every` steps, and all three at the end."""
    return EventSchedule(every={"log": config.log_every, "eval": config.eval_every,
                                "checkpoint": config.checkpoint_every},
                         at_end=("log", "eval", "checkpoint"), num_steps=config.num_steps)


def _train_chunk(config: ml_collections.ConfigDict, inp, data_sharding):
    """One step per call on the next batch: drawn on device at the state's step
    (`data.on_device`), else the pipeline's."""
    train_step = jax.jit(make_train_step(config), donate_argnums=0)
    if is_on_device(inp):
        draw_batch = jax.jit(lambda step: jax.lax.with_sharding_constraint(
            inp.batch_at(step), data_sharding))
        return one_step_per_call(train_step, lambda state: draw_batch(state.step))
    return one_step_per_call(train_step, lambda _: pipeline_batch(inp, data_sharding))


def _progress(config: ml_collections.ConfigDict, start: int) -> Progress:
    return Progress(config.progress_bar, config.num_steps, start,
                    lambda logged: {k: v for k, v in logged.items() if k != "learning_rate"},
                    active=jax.process_index() == 0)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Trains the classifier that `config` describes, leaving everything in `workdir`.

    workdir gets `config.json`, `metrics.jsonl` (train_loss, train_accuracy and
    learning_rate every `log_every` steps; test_loss and test_accuracy every
    `eval_every` steps), `tensorboard/`, `checkpoints/` and, at the end, `eval.json`.
    The loop is the GAN trainer's (`jgan.train.loop`).

    Returns:
      The final evaluation (the contents of eval.json): test_accuracy, test_loss,
      num_test (the whole `data.eval_split`), step, and the last training metrics.
    Raises:
      ConfigError: a config value that cannot work, before compiling.
      jgan.errors.NonFiniteLossError: the training loss became NaN/inf (names the step).
      SystemExit(143): SIGTERM, after saving a checkpoint to resume from.
    """
    validate(config)
    workdir = open_workdir(config, workdir, _check_resumable)
    devices = DataParallel.over_all_devices(config, ("batch_size", "eval_batch_size"))
    # data.on_device: the whole split in device memory and each step's batch drawn there
    # (its position is the step); the grain pipeline is the bottleneck on a GPU host.
    source = classification_sources.classification_source(config.data, config.data.split,
                                                          seed=config.seed)
    inp = (DeviceDataInput(config, config.batch_size, devices.replicated, source=source)
           if config.data.get("on_device", False)
           else PipelineInput(config, config.batch_size, source=source))
    eval_split = EvalSplit(config)
    init_fn = jax.jit(lambda rng: create_state(config, rng), out_shardings=devices.replicated)
    ckpts = RunCheckpoints(workdir / "checkpoints")
    state, start = restore_or_init(ckpts, init_fn, (jax.random.PRNGKey(config.seed),), inp,
                                   devices.replicated)
    save_config(config, workdir)

    evaluate = make_evaluate(devices.mesh, config.eval_batch_size)
    writer = writers.RunWriter(workdir, resume_step=start, enabled=jax.process_index() == 0)
    tested = {}  # the latest evaluation of the test split

    def evaluate_event(state, step):
        tested.update(evaluate(state, eval_split))
        writer.write_scalars(step, {k: tested[k] for k in ("test_loss", "test_accuracy")})

    progress = _progress(config, start)
    loop = TrainingLoop(
        schedule=event_schedule(config), train_chunk=_train_chunk(config, inp, devices.data),
        steps_per_call=1, checked=("train_loss",), ckpts=ckpts, writer=writer, inp=inp,
        progress=progress, handlers={"eval": evaluate_event},
        # Means in float32, as this trainer always logged them.
        mean_dtype=np.float32)
    end = loop.run(state, start)
    result = tested or evaluate(end.state, eval_split)  # the latter: a finished run, rerun
    result = {**result, "step": int(jax.device_get(end.state.step)), "num_steps": config.num_steps,
              "dataset": config.data.name, "eval_split": config.data.eval_split,
              "final_train_metrics": end.last_logged}
    if jax.process_index() == 0:
        (workdir / "eval.json").write_text(json.dumps(result, indent=2))
    writer.close()
    progress.summary(end.step, {k: result[k] for k in ("test_accuracy", "test_loss")}, workdir)
    return result
