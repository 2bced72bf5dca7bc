"""A run's training call: `train_chunk(state, n) -> (state, metrics [n])`.

Mixture data and image data held in device memory (`data.on_device`) are sampled on
device, `steps_per_call` steps per call inside a `lax.scan`; other image data comes
from the grain pipeline, one step per call.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding

from jgan.train.input import MixtureInput, is_on_device


def pipeline_batch(inp, data_sharding: NamedSharding) -> dict:
    """The pipeline's next batch, each process's part placed on its devices."""
    return {k: jax.make_array_from_process_local_data(data_sharding, np.asarray(v))
            for k, v in inp.next().items()}


def one_step_per_call(jitted_step: Callable, next_batch: Callable) -> Callable:
    """A chunk of one step on `next_batch(state)`, whatever n: the metrics get a
    leading axis of 1 like a scan's."""
    def train_chunk(state, num_steps):
        del num_steps
        state, metrics = jitted_step(state, next_batch(state))
        return state, jax.tree.map(lambda m: m[None], metrics)
    return train_chunk


def _python_loop(jitted_step: Callable) -> Callable:
    def train_chunk(state, num_steps):
        per_step = []
        for _ in range(num_steps):
            state, metrics = jitted_step(state)
            per_step.append(metrics)
        return state, jax.tree.map(lambda *m: jnp.stack(m), *per_step)
    return train_chunk


def _on_device_chunk(inp, step_fn: Callable, data_sharding: NamedSharding) -> Callable:
    def on_device_step(state, _=None):
        batch = jax.lax.with_sharding_constraint(inp.batch_at(state.step), data_sharding)
        return step_fn(state, batch)

    if jax.default_backend() == "cpu" and not isinstance(inp, MixtureInput):
        # XLA's CPU backend runs convolutions inside a while loop about 8x slower than
        # the same step outside one (DCGAN on MNIST, jax 0.10), and unrolling the scan
        # instead compiles a program per chunk length that grows with it (InfoGAN,
        # steps_per_call=100: over 8 minutes and 12 GB before the first step). One
        # compiled step called from Python costs neither.
        return _python_loop(jax.jit(on_device_step, donate_argnums=0))
    return jax.jit(
        lambda state, num_steps: jax.lax.scan(on_device_step, state, None, length=num_steps),
        static_argnums=1, donate_argnums=0)


def make_train_chunk(config: ml_collections.ConfigDict, inp, step_fn: Callable,
                     data_sharding: NamedSharding) -> tuple[Callable, int]:
    """(train_chunk, steps_per_call) for `step_fn(state, batch) -> (state, metrics)`."""
    if is_on_device(inp):
        return _on_device_chunk(inp, step_fn, data_sharding), config.steps_per_call
    jitted_step = jax.jit(step_fn, donate_argnums=0)
    return one_step_per_call(jitted_step, lambda _: pipeline_batch(inp, data_sharding)), 1
