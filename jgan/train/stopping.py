"""What stops a training loop before its last step: SIGTERM, or a limit on its time.

Both are only read between calls, so that the loop can checkpoint first and the same
command resumes the run exactly.
"""
from __future__ import annotations

import signal
import time

import jax
import numpy as np

# The exit status of a run stopped by SIGTERM after it saved a checkpoint, as a
# process killed by the signal would report it.
SIGTERM_EXIT_STATUS = 128 + signal.SIGTERM


class StopRequested:
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


class TimeLimit:
    """`seconds` of training from its creation (0: no limit)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._start = time.monotonic()

    def reached(self) -> bool:
        """Whether the time is up; the same answer on every host."""
        if not self.seconds:
            return False
        over = time.monotonic() - self._start >= self.seconds
        if jax.process_count() > 1:  # hosts must leave the loop at the same step
            from jax.experimental import multihost_utils
            over = bool(multihost_utils.broadcast_one_to_all(np.asarray(over)))
        return over
