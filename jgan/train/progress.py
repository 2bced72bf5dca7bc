"""What a run prints while it trains and when it ends.

With `config.progress_bar` a tqdm bar on stderr shows the step and, beside it, the means
logged at that step; without it, a line per logged step (at most one per
`line_interval` seconds, and always the last), so that a run in a log file shows it is
alive. At the end, on both, a summary: the headline numbers of eval.json and where the
outputs are. Only the main process prints.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

# What a workdir holds, for the summary.
OUTPUTS = ("eval.json", "metrics.jsonl", "samples/", "tensorboard/", "checkpoints/")


def format_means(means: dict) -> str:
    """`k=v k=v` of logged means, 4 significant digits."""
    return " ".join(f"{k}={v:.4g}" for k, v in means.items())


class Progress:
    """The bar or the lines of one run (module doc).

    Args:
      bar: a tqdm bar (else lines).
      num_steps, start: the run's last step and the step it starts from.
      postfix: picks the logged means shown (`{name: value}`).
      active: whether this process prints (the main one).
      line_interval: the fewest seconds between two lines without a bar.
      stream: where it prints (stderr).
    """

    def __init__(self, bar: bool, num_steps: int, start: int,
                 postfix: Callable[[dict], dict], *, active: bool = True,
                 line_interval: float = 10.0, stream=None):
        self._postfix = postfix
        self._num_steps = num_steps
        self._start = start
        self._active = active
        self._line_interval = line_interval
        self._stream = stream or sys.stderr
        self._started = time.monotonic()
        self._last_line = -float("inf")  # the first logged step prints at once
        self._bar = None
        if bar and active:
            from tqdm import tqdm
            self._bar = tqdm(total=num_steps, initial=start, unit="step", dynamic_ncols=True,
                             mininterval=1.0, file=self._stream)

    def show(self, step: int, logged: dict) -> None:
        """The means logged at `step`, before the bar reaches it: the bar never shows
        an older interval's numbers beside a newer step."""
        if not self._active:
            return
        shown = self._postfix(logged)
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
            return
        now = time.monotonic()
        if now - self._last_line < self._line_interval and step < self._num_steps:
            return
        self._last_line = now
        rate = (step - self._start) / max(now - self._started, 1e-9)
        print(f"step {step}/{self._num_steps}: {format_means(shown)} ({rate:.3g} steps/s)",
              file=self._stream, flush=True)

    def update(self, n: int) -> None:
        """Advances the bar by `n` steps."""
        if self._bar is None:
            return
        if self._bar.n + n >= self._num_steps:
            # The last line is drawn once, by close(): in a log file (no carriage returns)
            # an update here would print it twice.
            self._bar.n = self._num_steps
        else:
            self._bar.update(n)

    def close(self) -> None:
        """Closes the bar."""
        if self._bar is not None:
            self._bar.close()

    def summary(self, step: int, headline: dict, workdir: str | Path) -> None:
        """Prints on stdout where the run ended, its headline numbers and where its
        outputs are."""
        if not self._active:
            return
        seconds = time.monotonic() - self._started
        print(f"Done: step {step}/{self._num_steps} ({step - self._start} steps in this call, "
              f"{seconds:.0f} s).")
        if headline:
            print(f"  {format_means(headline)}")
        present = [name for name in OUTPUTS if (Path(workdir) / name.rstrip("/")).exists()]
        print(f"  in {workdir}: {', '.join(present)}", flush=True)
