"""The per-step metrics of a training loop, averaged between logs, losses checked.

A call's metrics are read from the device while the next call runs (one call late),
so that reading them does not stall the device.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jgan.errors import NonFiniteLossError, NonFiniteStateError
from jgan.sharding import to_host


class MetricsAccumulator:
    """Collects `{name: [n]}` metrics of calls of n steps; raises on a non-finite loss.

    Args:
      checked: the metrics that must stay finite (each team's loss, over every stage:
        a call's metrics hold those of its stage's teams).
      resume_point: says where the last good checkpoint is ("step 100 in DIR"), for
        the error's message.
      dtype: what the values are averaged in (float64; float32 keeps the classifier's
        logged means as they always were).
    """

    def __init__(self, checked: tuple[str, ...], resume_point: Callable[[], str], *,
                 dtype=np.float64):
        self.checked = checked
        self._resume_point = resume_point
        self._dtype = dtype
        self._values = defaultdict(list)
        self._pending = None

    def add(self, first_step: int, metrics: dict) -> None:
        """Takes the metrics of the call that began at `first_step` (still on device),
        after reading those of the call before."""
        self.flush()
        self._pending = (first_step, metrics)

    def flush(self) -> None:
        """Reads the last call's metrics from the device and checks them."""
        if self._pending is not None:
            first_step, metrics = self._pending
            self._pending = None
            self._absorb(first_step, to_host(metrics))

    def _absorb(self, first_step: int, metrics: dict) -> None:
        for key in self.checked:
            if key not in metrics:
                continue
            values = np.asarray(metrics[key])
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise NonFiniteLossError(
                    f"Step {first_step + int(bad[0])}: {key} is {values[bad[0]]}. Training "
                    f"stopped; the last good checkpoint is {self._resume_point()}.")
        for k, v in metrics.items():
            self._values[k].append(np.asarray(v, self._dtype))

    def means(self) -> dict[str, float]:
        """The mean of each metric over the steps read since the last call, then forgets
        them ({} when there were none)."""
        means = {k: float(np.mean(np.concatenate(v))) for k, v in self._values.items()}
        self._values.clear()
        return means


def _is_float(x) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jnp.inexact)


@jax.jit
def _all_finite(state):
    # One boolean per floating-point leaf, reduced on the device: only they travel.
    return [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(state) if _is_float(x)]


def _float_paths(state) -> list[str]:
    return [jax.tree_util.keystr(path)
            for path, x in jax.tree_util.tree_flatten_with_path(state)[0] if _is_float(x)]


def check_state_finite(state, step: int, resume_point: Callable[[], str]) -> None:
    """Raises NonFiniteStateError, naming the first NaN/inf value's path in `state`,
    unless every floating-point value of `state` is finite (checked before a
    checkpoint is written, so that no checkpoint holds one)."""
    finite = to_host(_all_finite(state))
    if all(bool(f) for f in finite):
        return
    path = _float_paths(state)[[bool(f) for f in finite].index(False)]
    raise NonFiniteStateError(
        f"Step {step}: state{path} holds NaN or infinity though every checked loss was "
        f"finite. Training stopped before checkpointing; the last good checkpoint is "
        f"{resume_point()}.")
