"""Checkpoints of a run with orbax: its whole state (a `GameState`, a classifier's
state) and the input position. A leaf below `jgan.train`, which writes them, and
`jgan.eval`, which reads a trained classifier back.

States saved before games had named teams (fields `generator`, `discriminator`,
`ema_params`) are read into today's `GameState` (`teams`, `ema`, `extras`) by
`upgrade_legacy_state`, so that such a run resumes and continues exactly.
"""
from __future__ import annotations

from pathlib import Path

import orbax.checkpoint as ocp

from jgan.core.game import GameState

# The fields of a GameState as saved before named teams, and its two teams' names.
LEGACY_FIELDS = frozenset({"generator", "discriminator", "ema_params", "step", "rng"})
LEGACY_TEAMS = ("discriminator", "generator")


def legacy_layout(abstract_state: GameState) -> dict:
    """`abstract_state` (a two-team GAN's) laid out as states were saved before named
    teams: `{generator, discriminator, ema_params, step, rng}`."""
    if set(abstract_state.teams) != set(LEGACY_TEAMS) or abstract_state.extras:
        raise ValueError(f"A checkpoint saved before named teams holds a GAN's two teams "
                         f"{LEGACY_TEAMS}; this run's game has {sorted(abstract_state.teams)}"
                         f"{' and extras' if abstract_state.extras else ''}.")
    return {"generator": abstract_state.teams["generator"],
            "discriminator": abstract_state.teams["discriminator"],
            "ema_params": abstract_state.ema.get("generator"),
            "step": abstract_state.step, "rng": abstract_state.rng}


def upgrade_legacy_state(saved: dict, like: GameState) -> GameState:
    """A state saved before named teams, as today's `GameState` (shaped like `like`)."""
    teams = {name: like.teams[name].replace(**_fields(saved[name])) for name in LEGACY_TEAMS}
    ema = {} if saved.get("ema_params") is None else {"generator": saved["ema_params"]}
    return GameState(teams=teams, ema=ema, extras={}, step=saved["step"], rng=saved["rng"])


def _fields(team) -> dict:
    if isinstance(team, dict):
        return {k: team[k] for k in ("params", "collections", "opt_state")}
    return {"params": team.params, "collections": team.collections, "opt_state": team.opt_state}


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
            item_names=("state", "input"),
            item_handlers={"state": ocp.StandardCheckpointHandler(),
                           "input": ocp.JsonCheckpointHandler()})

    def latest_step(self) -> int | None:
        """The step of the newest checkpoint, or None where there is none."""
        return self._manager.latest_step()

    def save(self, step: int, state, input_state: dict) -> None:
        """Starts saving `state` and the input position at `step` (once per step)."""
        if step in self._manager.all_steps():
            return
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), input=ocp.args.JsonSave(input_state)))

    def restore(self, step: int, abstract_state) -> tuple[object, dict]:
        """(state, input position) at `step`, laid out like `abstract_state`; a
        `GameState` saved before named teams is upgraded."""
        return self._restore(step, abstract_state, with_input=True)

    def restore_state(self, step: int, abstract_state):
        """Only the state at `step` (for sampling and evaluation), as `restore` reads it."""
        return self._restore(step, abstract_state, with_input=False)[0]

    def _restore(self, step: int, abstract_state, *, with_input: bool):
        legacy = (isinstance(abstract_state, GameState)
                  and self._saved_fields(step) == LEGACY_FIELDS)
        target = legacy_layout(abstract_state) if legacy else abstract_state
        items = {"state": ocp.args.StandardRestore(target)}
        if with_input:
            items["input"] = ocp.args.JsonRestore()
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        state = restored["state"]
        if legacy:
            state = upgrade_legacy_state(state, abstract_state)
        return state, restored["input"] if with_input else None

    def _saved_fields(self, step: int) -> frozenset:
        tree = self._manager.item_metadata(step)["state"].tree
        return frozenset(tree) if isinstance(tree, dict) else frozenset()

    def wait(self) -> None:
        """Blocks until the last save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for the last save, then releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
