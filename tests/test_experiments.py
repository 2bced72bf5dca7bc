"""End-to-end runs of every experiment config's small variant, resume, and failures."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import numpy as np
import pytest
from PIL import Image

from experiments.configs import mixture as mixture_configs
from jgan.errors import MissingFileError, NonFiniteLossError
from jgan.eval.suite import EvalError
from jgan.runs import evaluate_run
from jgan.sample import draw, load_run
from jgan.train import builders, trainer
from tests.helpers import REPO_ROOT, load_config, require_shared_tfds



def read_metrics(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def make_image_folder(root: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    sizes = [(100, 100), (120, 80), (64, 200), (50, 50)]
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)).save(root / f"car_{i}.png")
    return root


def assert_run_outputs(workdir: Path, num_steps: int):
    metrics = read_metrics(workdir)
    assert metrics and metrics[-1]["step"] == num_steps
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake",
                "d_grad_norm", "g_grad_norm"):
        assert key in metrics[-1], key
    assert json.loads((workdir / "eval.json").read_text())["step"] == num_steps
    assert list((workdir / "samples").glob("step_*.png"))
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
    assert (workdir / "checkpoints" / str(num_steps)).is_dir()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """`(config, workdir, result)` of a config's small variant, trained once per module:
    several tests read the same finished run (none may write into its workdir)."""
    runs = {}

    def run(name: str, arg: str = "runlocal"):
        if (name, arg) not in runs:
            config = load_config(name, arg)
            if name != "mixture":
                config.data.data_dir = require_shared_tfds()
            workdir = tmp_path_factory.mktemp(f"{name}-{arg}".replace(",", "-"))
            runs[name, arg] = (config, workdir, trainer.train_and_evaluate(config, workdir))
        config, workdir, result = runs[name, arg]
        return config.copy_and_resolve_references(), workdir, result
    return run


@pytest.fixture
def mixture_run(trained_run):
    return lambda arg: trained_run("mixture", arg)


@pytest.mark.parametrize("mixture", ["ring", "grid"])
@pytest.mark.parametrize("game", mixture_configs.GAMES)
def test_mixture_configs_run_end_to_end(mixture_run, mixture, game):
    config, workdir, result = mixture_run(f"{mixture},{game},runlocal")
    assert_run_outputs(workdir, config.num_steps)
    num_modes = 8 if mixture == "ring" else 25
    assert 0 <= result["modes"] <= num_modes and len(result["mode_counts"]) == num_modes
    assert 0.0 <= result["high_quality"] <= 1.0


@pytest.mark.parametrize("arg", ["ring,non_saturating,runlocal", "grid,hinge_sn,runlocal"])
def test_a_mixture_run_is_scored_again_as_its_eval_json(mixture_run, arg):
    _, workdir, _ = mixture_run(arg)
    saved = json.loads((workdir / "eval.json").read_text())
    again = evaluate_run(workdir)
    keys = ("step", "ema", "modes", "high_quality", "mode_counts", "kl_to_uniform",
            "num_samples", "threshold", "protocol")
    assert {k: again[k] for k in keys} == {k: saved[k] for k in keys}
    with pytest.raises(EvalError, match="2-D mixture"):
        evaluate_run(workdir, overrides={"metrics": "fid"})


@pytest.mark.parametrize("name", ["dcgan_mnist", "wgan_gp_mnist", "sngan_mnist",
                                  "dcgan_fashion_mnist", "dcgan_stacked_mnist"])
def test_tfds_configs_run_end_to_end(trained_run, name):
    config, workdir, _ = trained_run(name)
    assert_run_outputs(workdir, config.num_steps)
    grid = np.asarray(Image.open(workdir / "samples" / f"step_{config.num_steps:07d}.png"))
    channels = () if config.data.channels == 1 else (3,)
    assert grid.shape[2:] == channels and grid.std() > 0  # grayscale or RGB grid, not blank


def test_image_folder_config_runs_end_to_end(tmp_path):
    config = load_config("image_folder")
    config.data.root = str(make_image_folder(tmp_path / "photos"))
    trainer.train_and_evaluate(config, tmp_path / "run")
    assert_run_outputs(tmp_path / "run", config.num_steps)
    out = tmp_path / "grid.png"
    draw(tmp_path / "run", num=4, out=out)  # EMA weights: the config keeps them
    assert np.asarray(Image.open(out)).shape[-1] == 3


def test_image_folder_with_corrupt_file(tmp_path):
    photos = make_image_folder(tmp_path / "photos", n=8)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    config = load_config("image_folder")
    config.data.root = str(photos)
    with pytest.raises(ValueError, match="broken.jpg"):
        trainer.train_and_evaluate(config, tmp_path / "run")
    config.data.skip_corrupt = True
    result = trainer.train_and_evaluate(config, tmp_path / "run2")
    assert_run_outputs(tmp_path / "run2", config.num_steps)
    assert result["skipped_files"] == 1


def _final_state_and_metrics(workdir):
    _, _, state = load_run(workdir)
    return state, read_metrics(workdir)


@pytest.mark.parametrize("name,arg", [("mixture", "ring,wgan_gp,runlocal"),
                                      ("dcgan_mnist", "runlocal")])
def test_exact_resume(tmp_path, name, arg):
    config = load_config(name, arg)
    if name == "mixture":
        # The first half stops at a shorter num_steps, which a decaying learning rate
        # depends on (so a run refuses it): constant rates here.
        for team in config.optimizer.values():
            team.schedule = "constant"
    else:
        config.data.data_dir = require_shared_tfds()
        config.num_steps = 8  # halves end on log and checkpoint boundaries
    straight = tmp_path / "straight"
    trainer.train_and_evaluate(config, straight)
    resumed = tmp_path / "resumed"
    total = config.num_steps
    config.num_steps = total // 2
    trainer.train_and_evaluate(config, resumed)
    config.num_steps = total
    trainer.train_and_evaluate(config, resumed)  # the same command, continued
    state_a, metrics_a = _final_state_and_metrics(straight)
    state_b, metrics_b = _final_state_and_metrics(resumed)
    assert metrics_a == metrics_b
    chex.assert_trees_all_equal(state_a, state_b)


def test_standing_statistics_change_what_is_sampled_and_nothing_that_is_trained(tmp_path):
    config = load_config("dcgan_mnist", "runlocal")
    config.data.data_dir = require_shared_tfds()
    config.num_steps = 4
    config.game.ema_decay = 0.9
    plain, standing = tmp_path / "plain", tmp_path / "standing"
    trainer.train_and_evaluate(config, plain)
    config.eval.standing_stats = 2
    trainer.train_and_evaluate(config, standing)
    state_a, metrics_a = _final_state_and_metrics(plain)
    state_b, metrics_b = _final_state_and_metrics(standing)
    assert metrics_a == metrics_b
    chex.assert_trees_all_equal(state_a, state_b)  # checkpoints keep the training state
    assert json.loads((standing / "eval.json").read_text())["standing_stats"] == 2
    assert "standing_stats" not in json.loads((plain / "eval.json").read_text())
    grid = lambda d: np.asarray(Image.open(d / "samples" / f"step_{config.num_steps:07d}.png"))
    assert not np.array_equal(grid(plain), grid(standing))


@pytest.mark.parametrize("kept,expected", [(2, [8, 10]), (0, [2, 4, 6, 8, 10])])
def test_checkpoints_kept_keeps_the_newest_or_all(tmp_path, kept, expected):
    config = load_config("mixture", "ring,minimax,runlocal")
    config.num_steps, config.checkpoint_every, config.checkpoints_kept = 10, 2, kept
    trainer.train_and_evaluate(config, tmp_path)
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == expected
    # Any kept checkpoint evaluates, not only the latest; a dropped one is named.
    assert evaluate_run(tmp_path, step=expected[0])["step"] == expected[0]
    if kept:
        with pytest.raises(MissingFileError, match="No checkpoint 2 in"):
            evaluate_run(tmp_path, step=2)


def test_max_train_seconds_ends_early_evaluates_and_resumes_exactly(tmp_path, mixture_run):
    config, straight, _ = mixture_run("ring,wgan_gp,runlocal")
    limited = tmp_path / "limited"
    config.max_train_seconds = 1e-9  # over after the first jitted call
    result = trainer.train_and_evaluate(config, limited)
    first_call = trainer.event_schedule(config).chunk_length(0, config.steps_per_call)
    assert 0 < first_call < config.num_steps
    assert result["step"] == first_call
    assert result["stopped_by_max_train_seconds"] == config.max_train_seconds
    assert "modes" in json.loads((limited / "eval.json").read_text())
    assert (limited / "checkpoints" / str(first_call)).is_dir()
    config.max_train_seconds = 0.0  # the same run, continued without a limit
    result = trainer.train_and_evaluate(config, limited)
    assert result["step"] == config.num_steps and "stopped_by_max_train_seconds" not in result
    state_a, metrics_a = _final_state_and_metrics(straight)
    state_b, metrics_b = _final_state_and_metrics(limited)
    assert metrics_a == metrics_b
    chex.assert_trees_all_equal(state_a, state_b)


def test_data_in_device_memory_runs_in_chunks_and_resumes_exactly(tmp_path):
    config = load_config("image_folder", "runlocal")
    config.data.root = str(make_image_folder(tmp_path / "photos"))
    config.data.on_device = True
    config.num_steps = 8
    config.steps_per_call = 1
    one_by_one = tmp_path / "one_by_one"
    trainer.train_and_evaluate(config, one_by_one)
    assert_run_outputs(one_by_one, config.num_steps)
    config.steps_per_call = 2  # fused steps draw the same batches
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    trainer.train_and_evaluate(config, straight)
    config.num_steps = 4
    trainer.train_and_evaluate(config, resumed)
    config.num_steps = 8
    trainer.train_and_evaluate(config, resumed)
    state_a, metrics_a = _final_state_and_metrics(one_by_one)
    for workdir in (straight, resumed):
        state_b, metrics_b = _final_state_and_metrics(workdir)
        assert [m["step"] for m in metrics_a] == [m["step"] for m in metrics_b]
        for a, b in zip(metrics_a, metrics_b):
            np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)],
                                       rtol=1e-4, atol=1e-5)
        chex.assert_trees_all_close(state_a, state_b, rtol=1e-4, atol=1e-5)


def test_resume_refuses_a_different_config(mixture_run):
    config, workdir, _ = mixture_run("ring,minimax,runlocal")
    config.game.loss_type = "hinge"
    with pytest.raises(builders.ConfigError, match="game.loss_type"):
        trainer.train_and_evaluate(config, workdir)  # refused before anything is written


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    config = load_config("mixture", "ring,wgan_gp,runlocal")
    config.game.gradient_penalty_weight = 0.0
    config.num_steps = 200
    config.checkpoint_every = 10
    config.optimizer.discriminator.name = "sgd"
    config.optimizer.discriminator.learning_rate = 1e30
    with pytest.raises(NonFiniteLossError, match=r"Step \d+: [dg]_loss is (nan|inf|-inf)") as err:
        trainer.train_and_evaluate(config, tmp_path)
    bad_step = int(str(err.value).split(":")[0].split()[-1])
    saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert all(s < bad_step for s in saved)
    if saved:  # the kept checkpoints hold finite parameters
        _, _, state = load_run(tmp_path)
        assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.teams["discriminator"].params))


def _run_main(args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "experiments.main", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.mark.parametrize("override,expected", [
    ("--config.game.no_such_key=1", "error: --config.game.no_such_key: the config has no key "
                                    "'no_such_key'. Its keys there: d_steps,"),
    ("--config.num_stepz=1", "error: --config.num_stepz: the config has no key 'num_stepz'. "
                             "Did you mean \"num_steps\""),
    ("--config.batch_size=many", "error: --config.batch_size=many: invalid literal"),
    ("--config.game.loss_type=wasserstien", "error: config.game.loss_type: 'wasserstien'"),
])
def test_bad_config_fails_before_compiling(tmp_path, override, expected):
    proc = _run_main(["--config=experiments/configs/mixture.py:ring,minimax,runlocal",
                      f"--workdir={tmp_path}", override])
    assert proc.returncode == 2
    assert proc.stderr.startswith(expected), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line: no traceback, no usage
    assert not (tmp_path / "checkpoints").exists()  # nothing was trained


def test_missing_dataset_error(tmp_path):
    config = load_config("dcgan_mnist")
    config.data.data_dir = str(tmp_path / "empty_tfds")
    with pytest.raises(ValueError, match="mnist") as err:
        trainer.train_and_evaluate(config, tmp_path / "run")
    assert "tfds build" in str(err.value)


# The rerun below changes num_steps, which a decaying learning rate depends on.
CONSTANT_RATES = ("--config.optimizer.generator.schedule=constant",
                  "--config.optimizer.discriminator.schedule=constant")


def test_sigterm_saves_a_checkpoint_and_the_run_continues(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    args = [sys.executable, "-m", "experiments.main",
            "--config=experiments/configs/mixture.py:ring,non_saturating,runlocal",
            f"--workdir={tmp_path}", "--config.num_steps=1000000",
            "--config.checkpoint_every=1000000", "--config.sample_every=1000000",
            "--config.progress_bar=False", *CONSTANT_RATES]
    proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    saved = [int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]
    assert len(saved) == 1 and saved[0] > 0, stderr[-2000:]
    resumed = _run_main(args[3:4] + [f"--workdir={tmp_path}", f"--config.num_steps={saved[0] + 20}",
                                      "--config.checkpoint_every=1000000",
                                      "--config.sample_every=1000000", "--config.progress_bar=False",
                                      *CONSTANT_RATES])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resumed from" in resumed.stdout
    assert read_metrics(tmp_path)[-1]["step"] == saved[0] + 20


def test_sample_cli(tmp_path, mixture_run):
    _, run_dir, _ = mixture_run("grid,non_saturating,runlocal")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = tmp_path / "samples.png"
    proc = subprocess.run([sys.executable, "-m", "jgan.sample", f"--workdir={run_dir}",
                           "--num=100", f"--out={out}"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Image.open(out).size[0] > 100


def test_sample_interpolation_strips(tmp_path, trained_run):
    _, run_dir, _ = trained_run("dcgan_mnist")
    grid = draw(run_dir, num=12, out=tmp_path / "interp.png", interpolate=True,
                interpolation_steps=4)
    # 3 strips of 4 images of 28 px with 1-px gaps.
    assert grid.shape[:2] == (3 * 29 + 1, 4 * 29 + 1)
