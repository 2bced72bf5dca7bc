"""CycleGAN (`jgan.families.cyclegan`): the image pool, the generators' losses against
their formulas, the ResNet translator, and a run that resumes exactly, pools included."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from helpers import load_config, require_shared_tfds
from jgan.errors import ConfigError
from jgan.families.image_pool import empty_pool, query_pool
from jgan.models.resnet_translator import ResnetTranslator
from jgan.runs.load import load_run
from jgan.sample import translate
from jgan.train import builders, trainer


def _numbered(start, n):
    """n images of 2x2x1 pixels, image k filled with the value start + k."""
    return jnp.broadcast_to(jnp.arange(start, start + n, dtype=jnp.float32)[:, None, None, None],
                            (n, 2, 2, 1))


def test_a_filling_pool_shows_and_stores_each_new_image():
    pool = empty_pool(5, (2, 2, 1))
    shown, pool = jax.jit(query_pool)(pool, _numbered(1, 3), jax.random.key(0))
    np.testing.assert_array_equal(shown, _numbered(1, 3))
    assert int(pool["count"]) == 3
    np.testing.assert_array_equal(pool["images"][:3], _numbered(1, 3))


def test_a_full_pool_shows_a_stored_image_half_the_time_and_keeps_the_new_one():
    pool = empty_pool(4, (2, 2, 1))
    _, pool = query_pool(pool, _numbered(1, 4), jax.random.key(0))   # full: 1..4
    new = _numbered(100, 2000)
    shown, after = jax.jit(query_pool)(pool, new, jax.random.key(1))
    swapped = np.asarray(shown[:, 0, 0, 0] != new[:, 0, 0, 0])
    # Binomial(2000, 1/2): 5 standard deviations are 0.056.
    assert abs(swapped.mean() - 0.5) < 0.056, swapped.mean()
    # Every image shown instead of a new one was in the pool, and the pool now holds
    # the last images that went in.
    seen = set(np.asarray(pool["images"][:, 0, 0, 0]).tolist()) | set(range(100, 2100))
    assert set(np.asarray(shown[:, 0, 0, 0])[swapped].tolist()) <= seen
    assert int(after["count"]) == 4
    assert set(np.asarray(after["images"][:, 0, 0, 0]).tolist()) <= seen


def test_the_pool_holds_no_gradient():
    pool = empty_pool(2, (2, 2, 1))
    grad = jax.grad(lambda x: jnp.sum(query_pool(pool, x, jax.random.key(0))[0]))(
        _numbered(0, 3))
    assert float(jnp.abs(grad).max()) == 0.0


def test_the_translator_keeps_the_image_size_and_refuses_what_it_cannot_halve():
    net = ResnetTranslator(out_channels=3, width=4, num_blocks=2)
    x = jnp.zeros((2, 28, 28, 1))
    out = net.apply(net.init(jax.random.key(0), x), x)
    assert out.shape == (2, 28, 28, 3)
    with pytest.raises(ValueError, match="multiples of 4"):
        net.init(jax.random.key(0), jnp.zeros((1, 30, 30, 1)))


def test_the_generators_loss_is_the_papers():
    config = load_config("cyclegan", "mnist2textured,runlocal")
    game = builders.build_game(config)
    rng = np.random.default_rng(0)
    batch = {k: jnp.asarray(rng.uniform(-1, 1, (4, 28, 28, 3)), jnp.float32)
             for k in ("image_a", "image_b")}
    state = game.init(jax.random.key(0), batch)
    key = jax.random.key(3)
    a, b = batch["image_a"], batch["image_b"]

    def loss_and_reference(state):
        loss, _ = game.teams["generator"].loss(game.bind(state, train=True, rng=key), batch, key)
        nets = game.bind(state, train=True, rng=key)
        g, f = (lambda x: nets("generator_a2b", x)), (lambda x: nets("generator_b2a", x))
        lsq = lambda logits: 0.5 * jnp.mean((logits - 1.0) ** 2)  # noqa: E731
        mae = lambda x, y: jnp.mean(jnp.abs(x - y))                # noqa: E731
        reference = (lsq(nets("discriminator_b", g(a))) + lsq(nets("discriminator_a", f(b)))
                     + 10.0 * (mae(f(g(a)), a) + mae(g(f(b)), b))
                     + 0.5 * 10.0 * (mae(g(b), b) + mae(f(a), a)))
        return loss, reference

    loss, reference = jax.jit(loss_and_reference)(state)
    np.testing.assert_allclose(loss, reference, rtol=1e-5)


def test_a_pool_size_of_zero_is_refused():
    config = load_config("cyclegan", "mnist2textured,runlocal")
    config.cyclegan.pool_size = 0
    with pytest.raises(ConfigError, match="cyclegan.pool_size: must be >= 1"):
        builders.validate(config)


def test_a_run_resumed_halfway_continues_exactly_pools_included(tmp_path):
    data_dir = require_shared_tfds()
    config = load_config("cyclegan", "mnist2textured,runlocal")
    config.data.data_dir = data_dir
    for o in config.optimizer.values():
        o.schedule = "constant"   # the rerun changes num_steps, which a decay depends on
    result = trainer.train_and_evaluate(config, tmp_path / "straight")
    assert set(result["family_metrics"]) >= {"cycle_l1_a", "cycle_l1_b"}
    config.num_steps = 2
    trainer.train_and_evaluate(config, tmp_path / "resumed")
    config.num_steps = 4
    trainer.train_and_evaluate(config, tmp_path / "resumed")
    straight, resumed = load_run(tmp_path / "straight")[-1], load_run(tmp_path / "resumed")[-1]
    assert int(resumed.extras["pool_a"]["count"]) == 12  # 8 fakes a step, full at step 2
    chex.assert_trees_all_equal(jax.device_get(resumed.extras), jax.device_get(straight.extras))
    chex.assert_trees_all_close(jax.device_get(resumed.teams), jax.device_get(straight.teams),
                                rtol=1e-6, atol=1e-7)
    # jgan.sample --input: a folder of images, resized as the run's data, above their
    # translations and the translations back.
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 30, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
    grid = translate(tmp_path / "straight", source=str(folder), out=tmp_path / "t.png",
                     num=3, direction="b2a")
    assert grid.shape[:2] == (3 * 29 + 1, 3 * 29 + 1) and (tmp_path / "t.png").exists()
    samples = sorted(p.name for p in (tmp_path / "straight" / "samples").iterdir())
    assert samples == ["a2b_step_0000002.png", "a2b_step_0000004.png",
                       "b2a_step_0000002.png", "b2a_step_0000004.png"]
