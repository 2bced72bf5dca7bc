"""Checkpoints of a run with orbax: the whole `GameState` and the input position."""
from __future__ import annotations

from pathlib import Path

import orbax.checkpoint as ocp


class RunCheckpoints:
    """`workdir/checkpoints/<step>/{state, input}`, keeping the `max_to_keep` newest.

    Saves are asynchronous (training goes on while the files are written);
    `wait()` blocks until the last one is on disk.
    """

    def __init__(self, directory: str | Path, *, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
            item_names=("state", "input"))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state, input_state: dict) -> None:
        if step in self._manager.all_steps():
            return
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), input=ocp.args.JsonSave(input_state)))

    def restore(self, step: int, abstract_state) -> tuple[object, dict]:
        """(state, input position) at `step`, laid out like `abstract_state`."""
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), input=ocp.args.JsonRestore()))
        return restored["state"], restored["input"]

    def restore_state(self, step: int, abstract_state):
        """Only the `GameState` at `step` (for sampling and evaluation)."""
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state)))
        return restored["state"]

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

