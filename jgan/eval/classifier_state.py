"""What a classifier run trains and checkpoints: its network, optimizer and state.

The evaluation classifier is trained by `jgan.train.classifier_trainer` and read back
from its checkpoints by `jgan.eval.classifier.load_classifier`; both build the state
here, so that its layout is defined once and `jgan.eval` needs nothing of `jgan.train`.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

from jgan.models.classifier import DigitClassifier

# config.task of a classifier run.
TASK = "classifier"
SCHEDULES = ("cosine", "constant")


class ClassifierState(train_state.TrainState):
    """Parameters, optimizer state and step, plus batch-norm statistics."""
    batch_stats: Any = None


def build_model(config: ml_collections.ConfigDict) -> DigitClassifier:
    """The network that `config.model` describes."""
    m = config.model
    return DigitClassifier(num_classes=m.num_classes, width=m.width, features=m.features,
                           dropout_rate=m.dropout_rate, batch_norm=m.batch_norm)


def learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
    """Linear warmup from 0 over `warmup_steps`, then constant or cosine decay to 0."""
    o = config.optimizer
    if o.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, o.learning_rate, o.warmup_steps,
                                                  config.num_steps)
    return optax.join_schedules([optax.linear_schedule(0.0, o.learning_rate, o.warmup_steps),
                                 optax.constant_schedule(o.learning_rate)], [o.warmup_steps])


def create_state(config: ml_collections.ConfigDict, rng: jax.Array) -> ClassifierState:
    """The initial state of a run (jittable; `jax.eval_shape` of it gives the layout)."""
    model = build_model(config)
    d = config.data
    variables = model.init({"params": rng}, jnp.zeros((1, d.resolution, d.resolution, d.channels)),
                           train=False)
    o = config.optimizer
    tx = optax.adamw(learning_rate_schedule(config), b1=o.b1, b2=o.b2, weight_decay=o.weight_decay)
    return ClassifierState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                                  batch_stats=variables.get("batch_stats", {}))
