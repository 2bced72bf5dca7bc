"""A run in stages through the trainer: each stage trains its own game for its steps,
networks carry over by name, and a run stopped before, at or after a boundary resumes
exactly (the step of a checkpoint records its stage)."""
from __future__ import annotations

import dataclasses
import json
import shutil

import chex
import jax
import optax
import pytest

from jgan.checkpoints import RunCheckpoints
from jgan.core.stages import Stage
from jgan.errors import ConfigError
from jgan.families import registry
from jgan.families.network_names import DISCRIMINATOR, GENERATOR
from jgan.runs.load import load_run
from jgan.train import builders, trainer
from tests.helpers import load_config

BOUNDARY = 20   # a checkpoint step: the run can stop exactly there


def _discriminator_first(config):
    """Stage 1 trains D against a frozen G (two D updates per step); stage 2 is the
    usual game, both teams updated simultaneously."""
    game = registry.get_family("gan").build_game(config)
    frozen = dataclasses.replace(game.teams[GENERATOR], optimizer=optax.set_to_zero())
    return (Stage("discriminator_first", dataclasses.replace(
                game, teams={**game.teams, GENERATOR: frozen}), BOUNDARY,
                repeats={DISCRIMINATOR: 2}),
            Stage("both", game, config.num_steps - BOUNDARY, update_rule="simultaneous"))


@pytest.fixture(scope="module")
def staged_config():
    families = dict(registry._FAMILIES)
    registry.register(dataclasses.replace(registry.get_family("gan"), name="staged_gan",
                                          build_stages=_discriminator_first))
    config = load_config("mixture", "ring,non_saturating,runlocal")
    config.family = "staged_gan"
    config.num_steps, config.checkpoint_every, config.log_every = 40, 5, 5
    yield config
    registry._FAMILIES.clear()
    registry._FAMILIES.update(families)


@pytest.fixture(scope="module")
def straight_run(staged_config, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("straight")
    trainer.train_and_evaluate(staged_config, workdir)
    return workdir


class _Killed(Exception):
    """Stands for SIGKILL right after a checkpoint."""


@pytest.fixture(scope="module")
def killed_run(staged_config, tmp_path_factory):
    """`stopped_at -> workdir` of the run killed right after its checkpoint at that
    step (made once per step; tests copy it before resuming)."""
    runs = {}

    def run(stopped_at: int):
        if stopped_at not in runs:
            runs[stopped_at] = tmp_path_factory.mktemp(f"killed_at_{stopped_at}")
            save = RunCheckpoints.save

            def save_then_die(self, step, *args, **kwargs):
                save(self, step, *args, **kwargs)
                if step == stopped_at:
                    self.close()   # the write completes, as orbax's does before a kill
                    raise _Killed
            with pytest.MonkeyPatch.context() as patched:
                patched.setattr(RunCheckpoints, "save", save_then_die)
                with pytest.raises(_Killed):
                    trainer.train_and_evaluate(staged_config, runs[stopped_at])
        return runs[stopped_at]
    return run


def _same(a, b) -> bool:
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool((x == y).all()), a, b)))


def test_each_stage_trains_its_own_game(straight_run, killed_run):
    stopped = killed_run(BOUNDARY - 5)   # its checkpoints 5, 10, 15 are all stage 1's
    early = load_run(stopped, step=5)[2].params()
    late = load_run(stopped, step=BOUNDARY - 5)[2].params()
    final = load_run(straight_run)[2].params()
    chex.assert_trees_all_equal(early[GENERATOR], late[GENERATOR])   # frozen in stage 1
    assert not _same(early[DISCRIMINATOR], late[DISCRIMINATOR])
    assert not _same(late[GENERATOR], final[GENERATOR])
    metrics = [json.loads(line) for line in (straight_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(5, 45, 5))
    assert json.loads((straight_run / "eval.json").read_text())["step"] == 40


@pytest.mark.parametrize("stopped_at", [BOUNDARY - 5, BOUNDARY])
def test_a_run_stopped_around_a_stage_boundary_resumes_exactly(staged_config, straight_run,
                                                               killed_run, tmp_path, stopped_at):
    resumed = tmp_path / "resumed"
    shutil.copytree(killed_run(stopped_at), resumed)
    trainer.train_and_evaluate(staged_config, resumed)
    for name in ("metrics.jsonl", "eval.json"):
        assert (resumed / name).read_text() == (straight_run / name).read_text()
    chex.assert_trees_all_equal(load_run(resumed)[2], load_run(straight_run)[2])


def test_stages_must_add_up_to_the_run(staged_config):
    config = staged_config.copy_and_resolve_references()
    config.num_steps = BOUNDARY   # leaves the second stage no step
    with pytest.raises(ValueError, match="Stage 'both': num_steps must be >= 1"):
        builders.build_stages(config)
    registry.register(dataclasses.replace(registry.get_family("staged_gan"), name="short",
                                          build_stages=lambda c: _discriminator_first(c)[:1]))
    config.family, config.num_steps = "short", 40
    with pytest.raises(ConfigError, match=r"config\.num_steps: 40 is not the 20 steps of the "
                                          r"short family's stages \(discriminator_first: 20\)"):
        builders.build_stages(config)
