"""Claims 4-6 machinery: several seeds of a mixture GAN at once (jgan.dynamics.mode_collapse).

References: the trainer (`experiments.main`'s `train_and_evaluate`) run for the same
seed, whose checkpointed generator must give the same samples; single-seed runs, which
a multi-seed run must reproduce seed by seed; and `mode_statistics` on the samples.
"""
from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from experiments.dynamics import discriminator_accuracy, loss_vs_quality
from experiments.dynamics import mode_collapse as experiment
from jgan.data.mixtures import mixture_of
from jgan.dynamics.mode_collapse import summarize_seeds, train_seeds
from jgan.eval.modes import mode_statistics
from jgan.families.adversarial import GENERATOR
from jgan.train import builders, trainer
from jgan.runs import load_run
from tests.helpers import load_config


def tiny(arg: str, num_steps: int = 20):
    config = load_config("mixture", f"{arg},runlocal")
    config.num_steps = num_steps
    config.game.ema_decay = 0.9
    config.progress_bar = False
    return config


def test_a_seed_is_the_run_the_trainer_trains_with_that_seed(tmp_path):
    config = tiny("ring,non_saturating")
    config.seed = 3
    trainer.train_and_evaluate(config, tmp_path)
    _, game, state = load_run(tmp_path)
    runs = train_seeds(config, [3], eval_every=config.num_steps, num_eval_samples=500)
    z = jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(3), 3), (500, 2))
    key = jax.random.fold_in(jax.random.PRNGKey(3), 2)
    expected = game.bind(state, train=False, rng=key, use_ema=True)(GENERATOR, z)
    np.testing.assert_allclose(runs.samples[0], expected, rtol=1e-4, atol=1e-4)
    assert runs.steps.tolist() == [config.num_steps]


def test_seeds_run_together_equal_seeds_run_alone():
    config = tiny("grid,pacgan", num_steps=12)
    together = train_seeds(config, [0, 1], eval_every=4, num_eval_samples=300)
    alone = train_seeds(config, [1], eval_every=4, num_eval_samples=300)
    np.testing.assert_allclose(together.samples[1], alone.samples[0], rtol=1e-4, atol=1e-4)
    for name, values in alone.metrics.items():
        np.testing.assert_allclose(together.metrics[name][1], values[0], rtol=1e-3, atol=1e-5,
                                   err_msg=name)
    assert not np.allclose(together.samples[0], together.samples[1])  # seeds differ


@pytest.mark.parametrize("game", ["minimax", "wgan_gp", "hinge_sn", "unrolled"])
def test_trajectories_have_one_column_per_measurement_and_match_the_protocol(game):
    config = tiny(f"ring,{game}", num_steps=12)
    runs = train_seeds(config, [0, 1, 2], eval_every=4, num_eval_samples=400)
    assert runs.steps.tolist() == [4, 8, 12]
    assert runs.modes.shape == runs.high_quality.shape == runs.kl_to_uniform.shape == (3, 3)
    assert runs.samples.shape == (3, 400, 2)
    for name in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "d_grad_norm", "g_grad_norm"):
        assert runs.metrics[name].shape == (3, 3), name
        assert np.all(np.isfinite(runs.metrics[name])), name
    mixture = mixture_of(config)  # hinge_sn's config scales the ring by 10
    for seed_index, samples in enumerate(runs.samples):
        stats = mode_statistics(samples, mixture.means, mixture.std)
        assert stats == runs.final[seed_index]
        assert runs.modes[seed_index, -1] == stats["modes"]
        assert runs.high_quality[seed_index, -1] == stats["high_quality"]


def test_summarize_gives_mean_and_population_std_over_seeds():
    config = tiny("ring,non_saturating", num_steps=4)
    runs = train_seeds(config, [0, 1], eval_every=4, num_eval_samples=50)
    fake_final = [dict(s) for s in runs.final]
    fake_final[0].update(modes=8, high_quality=0.9)
    fake_final[1].update(modes=6, high_quality=0.5)
    summary = summarize_seeds(runs._replace(final=fake_final))
    assert summary["modes_mean"] == 7.0 and summary["modes_std"] == 1.0
    np.testing.assert_allclose([summary["high_quality_mean"], summary["high_quality_std"]],
                               [0.7, 0.2])
    assert summary["per_seed"] == [(0, 8, 0.9), (1, 6, 0.5)]


def test_bad_arguments_are_named():
    config = tiny("ring,non_saturating", num_steps=10)
    with pytest.raises(ValueError, match="eval_every=3 must divide num_steps=10"):
        train_seeds(config, [0], eval_every=3)
    with pytest.raises(ValueError, match="at least one seed"):
        train_seeds(config, [], eval_every=5)
    config.data.kind = "tfds"
    with pytest.raises(builders.ConfigError, match="data.kind"):
        train_seeds(config, [0], eval_every=5)


def test_overrides_reach_every_cell_and_unknown_keys_are_named():
    config = experiment.cell_config("grid", "pacgan", ["num_steps=123",
                                                       "optimizer.generator.learning_rate=1e-3",
                                                       "model.hidden=[16,16]"])
    assert config.num_steps == 123 and config.game.pack == 4
    assert config.optimizer.generator.learning_rate == 1e-3
    assert config.model.hidden == (16, 16)
    with pytest.raises(KeyError, match="optimizer.generator.lr"):
        experiment.cell_config("grid", "pacgan", ["optimizer.generator.lr=1"])


def test_experiment_writes_table_figures_and_trajectories(tmp_path, capsys):
    results = tmp_path / "results.json"
    experiment.main(["--mixtures=ring", "--games=non_saturating,pacgan", "--seeds=0,1",
                     "--eval_every=4", "--runlocal", "--set=num_steps=8",
                     f"--out_dir={tmp_path}", f"--results={results}"])
    out = capsys.readouterr().out
    assert "| ring | pacgan |" in out and "| ring | non_saturating |" in out
    assert (tmp_path / "mode_collapse_ring.png").stat().st_size > 0
    assert (tmp_path / "mode_collapse_ring_dynamics.png").stat().st_size > 0
    record = json.loads(results.read_text())["ring"]["pacgan"]
    assert record["steps"] == [4, 8] and np.asarray(record["modes"]).shape == (2, 2)
    assert record["config"]["game"]["pack"] == 4
    assert set(record["loss_vs_quality"]) >= {"g_loss_first", "spearman_g_loss_high_quality"}
    assert "Spearman(G loss, high quality)" in out


def test_a_dominating_discriminator_is_more_accurate_than_a_stable_one(tmp_path, capsys):
    results = tmp_path / "results.json"
    discriminator_accuracy.main([
        "--mixture=ring", "--seeds=0,1", "--num_steps=200", "--eval_every=50", "--runlocal",
        "--set=optimizer.generator.learning_rate=1e-3",
        "--set=optimizer.discriminator.learning_rate=1e-3",
        f"--out={tmp_path / 'accuracy.png'}", f"--results={results}"])
    record = json.loads(results.read_text())
    assert record["dominating"]["config"]["game"]["d_steps"] == 5
    assert record["dominating"]["config"]["optimizer"]["discriminator"]["learning_rate"] == 5e-3
    assert record["stable"]["config"]["game"]["d_steps"] == 1
    assert (record["dominating"]["accuracy_second_half"]
            > record["stable"]["accuracy_second_half"] + 0.05)
    assert (tmp_path / "accuracy.png").stat().st_size > 0
    assert "dominating" in capsys.readouterr().out


def test_loss_vs_quality_pairs_losses_with_the_logged_metric(tmp_path, capsys):
    rows = [{"step": s, "g_loss": 1.0 + s / 100, "d_loss": 1.2} for s in range(10, 110, 10)]
    rows += [{"step": s, "eval/classifier_fd": 100.0 / s} for s in range(20, 120, 20)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    loss_vs_quality.main([f"--workdir={tmp_path}", f"--out={tmp_path / 'f.png'}"])
    out = capsys.readouterr().out
    # G loss rises while the distance falls: a rank correlation of exactly -1.
    assert "over 5 evaluations: -1.000" in out
    assert (tmp_path / "f.png").stat().st_size > 0
    with pytest.raises(KeyError, match="eval/fid"):
        loss_vs_quality.main([f"--workdir={tmp_path}", "--metric=eval/fid",
                              f"--out={tmp_path / 'g.png'}"])
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        loss_vs_quality.main([f"--workdir={tmp_path / 'missing'}"])


def test_loss_quality_summary_averages_over_seeds():
    record = {"metrics": {"g_loss": [[1.0, 2.0, 3.0], [1.0, 0.5, 0.2]]},
              "high_quality": [[0.1, 0.5, 0.9], [0.2, 0.4, 0.6]]}
    q = experiment.loss_quality_summary(record)
    # Seed 0's loss rises with quality (rho = +1), seed 1's falls (rho = -1).
    assert q["spearman_g_loss_high_quality"] == 0.0
    assert (q["g_loss_first"], q["g_loss_last"]) == (1.0, 1.6)
    np.testing.assert_allclose([q["high_quality_first"], q["high_quality_last"]], [0.15, 0.75])


def test_unrolled_second_order_script_splits_the_gradient():
    """k = 0 has no second-order part and its direct part is the plain gradient; one
    unrolled Adam step adds a nonzero second-order part."""
    from experiments.dynamics.unrolled_second_order import gradient_term_norms, main
    rows = gradient_term_norms(1e-3, [0, 1], [0, 3])
    assert [(r["step"], r["k"]) for r in rows] == [(0, 0), (0, 1), (3, 0), (3, 1)]
    for r in rows:
        if r["k"] == 0:
            assert r["second_order"] == 0.0
            np.testing.assert_allclose(r["direct"], r["plain"], rtol=1e-6)
        else:
            assert r["second_order"] > 0.0
    main(["--d_lr=1e-3", "--ks=1", "--at=0"])


def test_the_lab_recipe_pins_what_its_figures_were_measured_with():
    lab = lambda game: experiment.cell_config("grid", game, experiment.lab_recipe(game))
    shipped = lambda game: experiment.cell_config("grid", game, experiment.RECIPES["config"](game))
    unrolled, hinge = lab("unrolled"), lab("hinge_sn")
    assert unrolled.game.unroll_steps == 5 and unrolled.optimizer.discriminator.learning_rate == 1e-3
    assert hinge.data.mixture_scale == 1.0 and not hinge.game.ema_warmup
    assert lab("pacgan").num_steps == 10_000
    # The configs as shipped: the recipe with each game's own fixes.
    assert shipped("unrolled").game.unroll_steps == 1
    assert shipped("unrolled").optimizer.discriminator.learning_rate == 1e-4
    assert shipped("hinge_sn").data.mixture_scale == 10.0 and shipped("hinge_sn").game.ema_warmup
    assert shipped("pacgan").num_steps == 100_000
    assert shipped("minimax").to_dict() == {**lab("minimax").to_dict(),
                                            "game": {**lab("minimax").game.to_dict(),
                                                     "ema_warmup": True}}
