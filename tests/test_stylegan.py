"""The style-based generator family (`jgan.families.stylegan`): R1, style mixing, the
tracked w_avg (updated by G's loss, checkpointed, fed to truncation at sampling time),
the sample grids, and exact resume."""
from __future__ import annotations

import dataclasses
import functools
import json
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jgan.checkpoints import RunCheckpoints
from jgan.errors import ConfigError
from jgan.families import stylegan
from jgan.families.network_names import DISCRIMINATOR, GENERATOR
from jgan.models.style_generator import broadcast_ws
from jgan.runs.load import load_run
from jgan.train import builders, trainer
from tests.helpers import load_config, require_shared_tfds

KILLED_AT = 3   # runlocal: 4 steps, a checkpoint every step


def _batch(config, n=8, seed=0):
    r, c = config.data.resolution, config.data.channels
    image = jax.random.uniform(jax.random.PRNGKey(seed), (n, r, r, c), minval=-1, maxval=1)
    return {"image": image, "label": jnp.zeros((n,), jnp.int32)}


def test_r1_is_half_gamma_times_the_mean_squared_input_gradient_on_reals():
    gamma = 3.0
    config = load_config("stylegan")
    config.stylegan.modulation = "adain"      # StyleGAN's layers, as a side check
    config.stylegan.mbstd_group_size = 0      # each logit depends on its own image only
    config.stylegan.r1_gamma = gamma
    builders.validate(config)
    game = builders.build_game(config)
    batch = _batch(config)
    state = game.init(jax.random.PRNGKey(0), batch)
    rng = jax.random.PRNGKey(5)
    num_ws = game.modules[GENERATOR].num_ws

    @jax.jit
    def d_loss_and_logistic_part(state, batch):
        loss = game.teams[DISCRIMINATOR].loss(game.bind(state, train=True, rng=rng), batch, rng)
        # The same fakes, drawn outside the loss: the logistic loss without R1.
        inputs = stylegan.draw_inputs(rng, len(batch["image"]),
                                      latent_dim=config.stylegan.latent_dim, num_ws=num_ws,
                                      mixing_prob=config.stylegan.style_mixing_prob)
        fake, _ = game.apply(state, GENERATOR, inputs["z"], inputs["mix_z"], inputs["cutoff"],
                             method="training_forward", rngs={"noise": inputs["noise"]})
        logistic = (jnp.mean(jax.nn.softplus(game.apply(state, DISCRIMINATOR, fake)))
                    + jnp.mean(jax.nn.softplus(-game.apply(state, DISCRIMINATOR, batch["image"]))))
        return loss, logistic

    (loss, metrics), logistic = d_loss_and_logistic_part(state, batch)

    def logit(x):  # one image [H, W, C] -> its logit
        return game.apply(state, DISCRIMINATOR, x[None])[0]
    grads = jax.jit(jax.vmap(jax.grad(logit)))(batch["image"])
    expected = np.mean(np.sum(np.square(np.asarray(grads)).reshape(len(grads), -1), -1))
    assert expected > 0
    np.testing.assert_allclose(float(metrics["d_r1"]), expected, rtol=1e-5)
    np.testing.assert_allclose(float(loss - logistic), gamma / 2 * expected, rtol=1e-4)


def test_style_mixing_prob_0_leaves_ws_and_prob_1_mixes_every_example():
    config = load_config("stylegan")
    generator, _ = stylegan.build_networks(config)
    num_ws, n, latent_dim = generator.num_ws, 256, config.stylegan.latent_dim
    assert num_ws == 4
    variables = jax.jit(functools.partial(generator.init, method="training_mapping"))(
        jax.random.PRNGKey(0), jnp.zeros((1, latent_dim)))
    training_mapping = functools.partial(generator.apply, variables, method="training_mapping")
    draw_inputs = functools.partial(stylegan.draw_inputs, batch_size=n, latent_dim=latent_dim,
                                    num_ws=num_ws)
    rng = jax.random.PRNGKey(1)

    unmixed = draw_inputs(rng, mixing_prob=0.0)
    assert unmixed["mix_z"] is None and unmixed["cutoff"] is None

    @jax.jit
    def mix(rng):
        inputs = draw_inputs(rng, mixing_prob=1.0)
        mixed, ws = training_mapping(inputs["z"], inputs["mix_z"], inputs["cutoff"])
        other = generator.apply(variables, inputs["mix_z"], method="mapping")
        none = stylegan.mixing_cutoffs(rng, n, num_ws, 0.0)   # prob 0 with a second z
        kept, _ = training_mapping(inputs["z"], inputs["mix_z"], none)
        return mixed, ws, other, inputs["cutoff"], kept, none, training_mapping(inputs["z"])

    mixed, ws, other, cutoff, kept, none, (alone, _) = jax.device_get(mix(rng))
    np.testing.assert_array_equal(none, num_ws)
    np.testing.assert_array_equal(kept, ws)
    np.testing.assert_array_equal(alone, ws)
    assert cutoff.min() >= 1 and cutoff.max() < num_ws
    assert set(cutoff.tolist()) == set(range(1, num_ws))   # every crossover is drawn
    layer = np.arange(num_ws)[None, :, None]
    np.testing.assert_array_equal(mixed, np.where(layer < cutoff[:, None, None], ws, other))
    assert np.all(np.any(mixed != ws, axis=(1, 2)))          # every example is mixed
    np.testing.assert_array_equal(ws, np.broadcast_to(ws[:, :1], ws.shape))
    half = jax.jit(stylegan.mixing_cutoffs, static_argnums=(1, 2, 3))(rng, 4096, num_ws, 0.5)
    assert abs(np.mean(np.asarray(half) < num_ws) - 0.5) < 0.03


def test_the_generator_loss_moves_w_avg_toward_the_batch_mean_of_ws():
    config = load_config("stylegan")
    decay = config.stylegan.w_avg_decay
    game = builders.build_game(config)
    batch = _batch(config)
    state = game.init(jax.random.PRNGKey(0), batch)
    assert set(state.extras) == {"w_avg"}
    np.testing.assert_array_equal(state.extras["w_avg"], 0.0)
    start = jnp.linspace(-1.0, 1.0, config.stylegan.w_dim)
    state = state.replace(extras={"w_avg": start})
    rng = jax.random.PRNGKey(3)

    @jax.jit
    def updated(state):
        out = {}
        for team in (GENERATOR, DISCRIMINATOR):
            nets = game.bind(state, train=True, rng=rng)
            game.teams[team].loss(nets, batch, rng)
            out[team] = nets.updated_extras()
        return out

    got = updated(state)
    assert got[DISCRIMINATOR] == {}   # only G's loss tracks w
    z = stylegan.draw_inputs(rng, 8, latent_dim=config.stylegan.latent_dim,
                             num_ws=game.modules[GENERATOR].num_ws,
                             mixing_prob=config.stylegan.style_mixing_prob)["z"]
    ws = game.apply(state, GENERATOR, z, method="mapping")
    batch_mean = jnp.mean(ws[:, 0], axis=0)
    np.testing.assert_allclose(got[GENERATOR]["w_avg"],
                               start + (1 - decay) * (batch_mean - start), rtol=1e-5, atol=1e-7)


def test_the_config_checks_name_their_key():
    builders.validate(load_config("stylegan", "fashion_mnist"))
    builders.validate(load_config("stylegan", "folder"))
    for key, value, match in [
            ("stylegan.modulation", "spade", r"stylegan\.modulation"),
            ("stylegan.style_mixing_prob", 1.5, r"stylegan\.style_mixing_prob"),
            ("stylegan.r1_gamma", -1.0, r"stylegan\.r1_gamma"),
            ("stylegan.w_avg_decay", 1.5, r"stylegan\.w_avg_decay"),
            ("stylegan.mbstd_group_size", 3, r"stylegan\.mbstd_group_size"),
            ("stylegan.mapping_layers", 0, r"stylegan\.mapping_layers"),
            ("data.resolution", 12, r"data\.resolution"),
            ("game.loss_type", "hinge", r"game\.loss_type"),
            ("game.r1_gamma", 1.0, r"game\.r1_gamma")]:
        config = load_config("stylegan")
        section, name = key.split(".")
        config[section][name] = value
        with pytest.raises(ConfigError, match=match):
            builders.validate(config)
    with pytest.raises(ValueError, match="stylegan.py takes"):
        load_config("stylegan", "cifar10")


class _Killed(Exception):
    """Stands for SIGKILL right after a checkpoint."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The runlocal run (8 px, 4 steps) straight through, and killed right after its
    checkpoint at step KILLED_AT, then rerun."""
    config = load_config("stylegan")
    config.data.data_dir = require_shared_tfds()
    config.checkpoint_every = 1
    root = tmp_path_factory.mktemp("stylegan")
    trainer.train_and_evaluate(config, root / "straight")
    save = RunCheckpoints.save

    def save_then_die(self, step, *args, **kwargs):
        save(self, step, *args, **kwargs)
        if step == KILLED_AT:
            self.close()
            raise _Killed
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(RunCheckpoints, "save", save_then_die)
        with pytest.raises(_Killed):
            trainer.train_and_evaluate(config, root / "resumed")
    shutil.copytree(root / "resumed", root / "killed")
    trainer.train_and_evaluate(config, root / "resumed")
    return root


def test_a_killed_run_resumes_exactly_w_avg_included(runs):
    _, _, killed = load_run(runs / "killed")
    assert int(killed.step) == KILLED_AT
    straight, resumed = load_run(runs / "straight")[-1], load_run(runs / "resumed")[-1]
    assert int(resumed.step) == int(straight.step) == 4
    w_avg = np.asarray(straight.extras["w_avg"])
    assert np.all(np.isfinite(w_avg)) and np.linalg.norm(w_avg) > 0
    assert not np.array_equal(np.asarray(killed.extras["w_avg"]), w_avg)
    chex.assert_trees_all_close(jax.device_get((resumed.teams, resumed.ema, resumed.extras)),
                                jax.device_get((straight.teams, straight.ema, straight.extras)),
                                rtol=1e-6, atol=1e-7)


def test_the_runlocal_run_trains_and_writes_the_family_grids(runs):
    out = runs / "straight"
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    logged = {k for m in lines for k in m}
    assert {"d_loss", "d_r1", "g_loss", "g_mixed", "g_w_avg_norm"} <= logged
    assert (out / "eval.json").is_file()
    sizes = {p.name: Image.open(p).size for p in (out / "samples").iterdir()}
    names = [f"{prefix}step_{s:07d}.png" for s in (2, 4)
             for prefix in ("", "truncation_", "style_mixing_")]
    assert sorted(sizes) == sorted(names)
    # runlocal: 4 samples (2 x 2), one z across psi 1, 0.7, 0.5, 0, and 3 x 3 mixing cells.
    assert sizes["step_0000004.png"] == (2 * 9 + 1, 2 * 9 + 1)
    assert sizes["truncation_step_0000004.png"] == (4 * 9 + 1, 9 + 1)
    assert sizes["style_mixing_step_0000004.png"] == (3 * 9 + 1, 3 * 9 + 1)


def test_sampling_truncates_toward_the_tracked_w_avg(runs):
    config, game, state = load_run(runs / "straight")
    sampler = builders.build_generator_inputs(config)
    assert isinstance(sampler, stylegan.StyleInputs) and sampler.truncation_psi == 1.0
    nets = game.bind(state, train=False, rng=jax.random.PRNGKey(0), use_ema=True)
    z = jax.random.normal(jax.random.PRNGKey(1), (3, config.stylegan.latent_dim))
    # psi 0: every z gives w_avg's image (constant noise), from the EMA generator.
    at_mean = np.asarray(dataclasses.replace(sampler, truncation_psi=0.0).generate(nets, {"z": z}))
    ws = broadcast_ws(state.extras["w_avg"][None], game.modules[GENERATOR].num_ws)
    expected = np.clip(game.apply(state, GENERATOR, ws, use_ema=True, method="synthesis",
                                  noise_mode="const"), -1, 1)[0]
    for image in at_mean:
        np.testing.assert_allclose(image, expected, rtol=1e-5, atol=1e-6)
    # psi 1: plain G(z), as game.apply draws it; the same images twice (constant noise).
    plain = np.asarray(sampler.generate(nets, {"z": z}))
    np.testing.assert_allclose(plain, np.clip(game.apply(state, GENERATOR, z, use_ema=True),
                                              -1, 1), rtol=1e-5, atol=1e-6)
    assert not np.allclose(plain[0], plain[1])


def test_jgan_sample_draws_at_a_truncation_and_writes_the_family_grids(runs, tmp_path):
    from jgan import sample
    from jgan.errors import UsageError
    workdir = runs / "straight"
    at_mean = sample.draw(workdir, num=4, out=tmp_path / "psi0.png", truncation=0.0)
    # psi 0: every cell is w_avg's image.
    cells = at_mean[1:, 1:].reshape(2, 9, 2, 9, -1)[:, :8, :, :8]
    np.testing.assert_array_equal(cells[0, :, 0], cells[1, :, 1])
    paths = sample.family_grids(workdir, out=tmp_path / "g.png", truncation=0.5)
    assert sorted(p.name for p in paths) == ["g.png", "g_style_mixing.png", "g_truncation.png"]
    assert all(p.is_file() for p in paths)
    from jgan.families.sampling import GeneratorInputs
    with pytest.raises(UsageError, match="--truncation: the gan family"):
        sample.with_truncation(GeneratorInputs(family="gan", latent_dim=4), 0.5, "gan")
