"""What stops a training loop before its last step: SIGTERM or SIGINT (Ctrl-C), or a
limit on its time.

All are only read between calls, so that the loop can checkpoint first and the same
command resumes the run exactly. A second Ctrl-C gives up on that and interrupts at once.
"""
from __future__ import annotations

import signal
import sys
import time

import jax
import numpy as np

# The signals that stop a run after it saves a checkpoint.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_status(signum: int) -> int:
    """The exit status of a run stopped by `signum` after it saved a checkpoint, as a
    process killed by the signal would report it (143 for SIGTERM, 130 for SIGINT)."""
    return 128 + int(signum)


SIGTERM_EXIT_STATUS = exit_status(signal.SIGTERM)


class StopRequested:
    """Turns SIGTERM and SIGINT into a flag the loop checks between steps.

    Attributes:
      requested: whether a stop signal arrived.
      signum: the first one that did (None before).
    """

    def __init__(self):
        self.requested = False
        self.signum = None
        self._previous = {}

    def __enter__(self):
        for signum in STOP_SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    @property
    def name(self) -> str:
        """The signal's name, e.g. "SIGINT"."""
        return signal.Signals(self.signum).name

    def _handle(self, signum, frame):
        del frame
        if signum == signal.SIGINT and self.requested:
            raise KeyboardInterrupt  # Ctrl-C twice: do not wait for the checkpoint
        self.requested = True
        self.signum = self.signum or signum
        if signum == signal.SIGINT:
            print("\nSIGINT: saving a checkpoint after the current call (Ctrl-C again to "
                  "interrupt without one).", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous = {}


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
