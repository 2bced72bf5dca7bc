"""When a training loop logs, samples, evaluates and checkpoints.

An event named `name` happens after step s when `every[name]` divides s (0: never on
the way), and the events `at_end` always happen after the last step. Calls of several
steps end where an event falls, so that no event is stepped over.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class EventSchedule:
    """The loop's events: `every` maps an event's name to its period in steps.

    Attributes:
      every: {"log": 100, "checkpoint": 1000, ...}; 0 leaves an event to the end.
      at_end: the events after the last step, whatever their period.
      num_steps: the run's length.
      boundaries: the steps at which one stage ends and the next begins.
    """
    every: dict[str, int]
    at_end: tuple[str, ...]
    num_steps: int
    boundaries: tuple[int, ...] = ()

    def events(self, step: int) -> set[str]:
        """The names of the events due after `step` steps."""
        due = {name for name, every in self.every.items() if every and step % every == 0}
        if step >= self.num_steps:
            due.update(self.at_end)
        return due

    def chunk_length(self, step: int, steps_per_call: int) -> int:
        """How many steps the call from `step` runs: at most `steps_per_call`, ending at
        the next event, stage boundary or the run's end (at least 1)."""
        n = min(steps_per_call, self.num_steps - step)
        for every in self.every.values():
            if every:
                n = min(n, every - step % every)
        for boundary in self.boundaries:
            if boundary > step:
                n = min(n, boundary - step)
        return max(n, 1)
