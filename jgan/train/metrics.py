"""The per-step metrics of a training loop, averaged between logs, losses checked.

A call's metrics are read from the device while the next call runs (one call late),
so that reading them does not stall the device.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import jax
import numpy as np

from jgan.errors import NonFiniteLossError


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
            self._absorb(first_step, jax.device_get(metrics))

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
