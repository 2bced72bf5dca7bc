"""Augmenting what D sees (`jgan.families.discriminator_augmentation`): off is the
identity, ADA's probability moves by its step every `ada_interval` steps in the
direction of its heuristic and lives in the state's extras, both families apply it
in both losses, and bad settings are named."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import diff_augment
from jgan.core.game import Networks
from jgan.errors import ConfigError
from jgan.families.discriminator_augmentation import Augmenter, augment_section
from jgan.families.network_names import DISCRIMINATOR, GENERATOR
from jgan.models.progressive import ProgressiveDiscriminator
from jgan.runs.load import load_run
from jgan.train import builders, trainer
from tests.helpers import load_config, require_shared_tfds


def _section(**values):
    section = augment_section()
    section.update(values)
    return section


def _nets(step: int, augmenter: Augmenter) -> Networks:
    return Networks({}, {}, {}, train=True, rng=jax.random.PRNGKey(0),
                    step=jnp.int32(step), extras=augmenter.init_extras())


def test_off_is_the_identity_and_declares_no_extras():
    augmenter = Augmenter(_section(), batch_size=4)
    images = jax.random.uniform(jax.random.PRNGKey(1), (4, 8, 8, 3), minval=-1, maxval=1)
    nets = _nets(0, augmenter)
    assert augmenter.init_extras() == {}
    assert augmenter(nets, images, jax.random.PRNGKey(2)) is images
    assert augmenter.observe(nets, jnp.ones((4, 1))) == {}


def test_a_fixed_policy_is_diff_augment_at_that_probability():
    augmenter = Augmenter(_section(policy="translation,cutout", probability=0.5),
                          batch_size=4)
    images = jax.random.uniform(jax.random.PRNGKey(1), (16, 8, 8, 3), minval=-1, maxval=1)
    key = jax.random.PRNGKey(3)
    got = jax.jit(lambda x: augmenter(_nets(0, augmenter), x, key))(images)
    want = diff_augment.diff_augment(key, images, policy="translation,cutout",
                                     probability=0.5)
    np.testing.assert_array_equal(got, want)
    assert augmenter.init_extras() == {}


@pytest.mark.parametrize("sign,direction", [(1.0, 1), (-1.0, -1)])
def test_ada_moves_p_by_its_step_every_interval_toward_the_heuristic(sign, direction):
    interval, batch, speed = 3, 4, 120
    augmenter = Augmenter(_section(policy="color", ada=True, probability=0.5,
                                   ada_interval=interval, ada_speed_images=speed),
                          batch_size=batch)

    @jax.jit
    def observe(state, step):
        nets = Networks({}, {}, {}, train=True, rng=jax.random.PRNGKey(0),
                        step=step, extras={"augment": state})
        metrics = augmenter.observe(nets, sign * jnp.ones((batch, 1)))
        return nets.updated_extras()["augment"], metrics

    state = augmenter.init_extras()["augment"]
    probabilities = []
    for step in range(2 * interval):
        state, metrics = observe(state, jnp.int32(step))
        probabilities.append(float(state.probability))
    # r_t = +1 (every real logit positive) > 0.6 raises p; -1 lowers it, at steps 2, 5.
    move = direction * batch * interval / speed
    np.testing.assert_allclose(probabilities, [0.5, 0.5, 0.5 + move, 0.5 + move,
                                               0.5 + move, 0.5 + 2 * move], atol=1e-6)
    assert int(state.count) == 0 and float(metrics["ada_rt"]) == sign


@pytest.mark.parametrize("key,value,message", [
    ("policy", "colour", "Unknown DiffAugment policy"),
    ("probability", 1.5, "in \\[0, 1\\]"),
    ("ada", True, "set a policy too"),
])
def test_bad_settings_are_named(key, value, message):
    config = load_config("stylegan")
    config.stylegan.augment[key] = value
    with pytest.raises(ConfigError, match=f"stylegan.augment.{key}: .*{message}"):
        builders.validate(config)


@pytest.mark.parametrize("family", ["progan", "stylegan"])
def test_both_losses_see_augmented_images(family):
    config = load_config(family)
    config[family].augment.policy = "cutout"   # zeroes a quarter of every image
    builders.validate(config)
    game = builders.build_stages(config)[-1].game
    r = config.data.resolution
    batch = {"image": jnp.ones((8, r, r, config.data.channels)),
             "label": jnp.zeros((8,), jnp.int32)}
    state = game.init(jax.random.PRNGKey(0), batch)
    seen = []

    def record_discriminator_inputs(next_fun, args, kwargs, context):
        if (context.method_name == "__call__"
                and isinstance(context.module, ProgressiveDiscriminator)):
            seen.append(args[0])
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record_discriminator_inputs):
        for team in (DISCRIMINATOR, GENERATOR):
            game.teams[team].loss(game.bind(state, train=True, rng=jax.random.PRNGKey(1)),
                                  batch, jax.random.PRNGKey(2))
    # Cutout zeroes an (R/2 x R/2) rectangle clipped at the borders: between 1/16 and
    # 1/4 of each image, in D's reals (all ones before), D's fakes and G's fakes (the
    # calls between are the penalty's).
    for x in (seen[0], seen[1], seen[-1]):
        zeros = np.mean(np.asarray(x) == 0.0, axis=(1, 2, 3))
        assert np.all(zeros >= 1 / 16) and np.all(zeros <= 0.25 + 1e-6), zeros


def test_an_ada_run_keeps_p_in_its_state(tmp_path):
    config = load_config("stylegan")
    config.data.data_dir = require_shared_tfds()
    augment = config.stylegan.augment
    augment.policy, augment.ada, augment.probability = "color,translation", True, 0.5
    augment.ada_interval, augment.ada_speed_images = 1, 80   # p moves 0.1 per step
    result = trainer.train_and_evaluate(config, tmp_path)
    _, _, state = load_run(tmp_path)
    # r_t is a multiple of 1/8 (8 logits a step), never the 0.6 target: p moves by
    # +-0.1 at every step, so after 4 steps it is 0.5 + 0.1 k with k even.
    k = (float(state.extras["augment"].probability) - 0.5) / 0.1
    assert abs(k - round(k)) < 1e-4 and round(k) in (-4, -2, 0, 2, 4)
    assert config.num_steps == 4 and int(state.extras["augment"].count) == 0
    assert {"augment_p", "ada_rt"} <= set(result["final_metrics"])
