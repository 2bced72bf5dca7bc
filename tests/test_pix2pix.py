"""pix2pix (`jgan.families.pix2pix`): the PatchGAN's receptive field, the U-Net's
skips and test-time dropout, the losses against their formulas, the config's checks
and an end-to-end run."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import load_config, require_shared_tfds
from jgan.errors import ConfigError, UsageError
from jgan.sample import translate
from jgan.models.patchgan import PatchGAN, receptive_field
from jgan.models.unet import UNet
from jgan.train import builders, trainer


@pytest.mark.parametrize("num_layers,side", [(1, 16), (2, 34), (3, 70)])
def test_one_patch_logit_sees_exactly_its_receptive_field(num_layers, side):
    """The gradient of one output logit (away from the borders) is non-zero exactly in a
    side x side window of the input."""
    assert receptive_field(num_layers) == side
    d = PatchGAN(width=8, num_layers=num_layers, norm="none")
    x = jax.random.normal(jax.random.key(1), (1, 128, 128, 2))
    variables = d.init(jax.random.key(0), x)
    logits = d.apply(variables, x)
    i, j = logits.shape[1] // 2, logits.shape[2] // 2
    grad = jax.jit(jax.grad(lambda x: d.apply(variables, x)[0, i, j, 0]))(x)
    seen = np.abs(np.asarray(grad[0])).sum(-1) > 0
    rows, cols = np.nonzero(seen)
    assert rows.max() - rows.min() + 1 == side and cols.max() - cols.min() + 1 == side
    assert seen[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()


def _unet(depth=5, **kwargs):
    net = UNet(out_channels=1, width=8, depth=depth, **kwargs)
    x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 1), minval=-1, maxval=1)
    variables = net.init({"params": jax.random.key(1), "dropout": jax.random.key(2)}, x)
    return net, variables, x


def test_unet_skips_join_mirrored_resolutions():
    net, variables, x = _unet()
    out, state = net.apply(variables, x, rngs={"dropout": jax.random.key(3)},
                           mutable=["intermediates"])
    assert out.shape == x.shape and float(jnp.abs(out).max()) <= 1.0
    joins = np.array(state["intermediates"]["joins"])   # (decoder j, encoder i, sides)
    np.testing.assert_array_equal(joins[:, 0], np.arange(4))
    np.testing.assert_array_equal(joins[:, 1], np.arange(4)[::-1])  # innermost first
    np.testing.assert_array_equal(joins[:, 2], joins[:, 3])         # same resolution
    np.testing.assert_array_equal(joins[:, 2], [2, 4, 8, 16])       # 32 px / 2^(i + 1)


def test_unet_dropout_is_its_noise_at_test_time_too():
    net, variables, x = _unet()
    a = net.apply(variables, x, rngs={"dropout": jax.random.key(5)})
    b = net.apply(variables, x, rngs={"dropout": jax.random.key(5)})
    c = net.apply(variables, x, rngs={"dropout": jax.random.key(6)})
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    still = UNet(out_channels=1, width=8, depth=5, dropout=0.0)
    np.testing.assert_array_equal(still.apply(variables, x), still.apply(variables, x))


def test_a_resolution_the_unet_cannot_halve_is_refused():
    with pytest.raises(ValueError, match="multiples of 32"):
        UNet(out_channels=1, width=4, depth=5).init(
            {"params": jax.random.key(0), "dropout": jax.random.key(0)}, jnp.zeros((1, 28, 28, 1)))


def _game_state_batch(gan_weight=1.0):
    config = load_config("pix2pix", "edges2fashion,runlocal")
    config.pix2pix.gan_weight = gan_weight
    game = builders.build_game(config)
    rng = np.random.default_rng(0)
    batch = {k: jnp.asarray(rng.uniform(-1, 1, (4, 32, 32, 1)), jnp.float32)
             for k in ("image_a", "image_b")}
    return config, game, game.init(jax.random.key(0), batch), batch


def test_the_losses_are_the_papers():
    config, game, state, batch = _game_state_batch()
    rng = jax.random.key(7)
    x, y = batch["image_a"], batch["image_b"]

    def losses_and_reference(state):
        nets = game.bind(state, train=True, rng=rng)
        g_loss, g_metrics = game.teams["generator"].loss(nets, batch, rng)
        nets = game.bind(state, train=True, rng=rng)
        d_loss, _ = game.teams["discriminator"].loss(nets, batch, rng)
        # The same draws by hand: the first network call of each evaluation is G.
        nets = game.bind(state, train=True, rng=rng)
        fake = nets("generator", x)
        fake_logits = nets("discriminator", jnp.concatenate([x, fake], -1))
        real_logits = nets("discriminator", jnp.concatenate([x, y], -1))
        g_ref = (jnp.mean(jax.nn.softplus(-fake_logits))
                 + config.pix2pix.l1_weight * jnp.mean(jnp.abs(y - fake)))
        d_ref = 0.5 * (jnp.mean(jax.nn.softplus(-real_logits))
                       + jnp.mean(jax.nn.softplus(fake_logits)))
        return g_loss, g_ref, d_loss, d_ref, g_metrics["g_l1"], jnp.mean(jnp.abs(y - fake))

    g_loss, g_ref, d_loss, d_ref, l1, l1_ref = jax.jit(losses_and_reference)(state)
    np.testing.assert_allclose(g_loss, g_ref, rtol=1e-5)
    np.testing.assert_allclose(l1, l1_ref, rtol=1e-6)
    # D's passes: real pair first in the loss, fake first here; batch statistics are
    # per call, so the order does not matter.
    np.testing.assert_allclose(d_loss, d_ref, rtol=1e-5)


def test_without_the_gan_term_the_generator_ignores_the_discriminator():
    _, game, state, batch = _game_state_batch(gan_weight=0.0)
    rng = jax.random.key(1)

    def g_loss(d_params):
        point = state.replace_team("discriminator", state.teams["discriminator"].replace(
            params=d_params))
        return game.teams["generator"].loss(game.bind(point, train=True, rng=rng), batch, rng)[0]
    grads = jax.grad(g_loss)(state.teams["discriminator"].params)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("key,value,message", [
    ("data.name", "mnist2textured", "pix2pix learns from pairs"),
    ("data.resolution", 28, "needs a multiple of 32, got 28"),
    ("pix2pix.norm", "layer", "'layer' is not one of"),
])
def test_config_errors_name_the_key(key, value, message):
    config = load_config("pix2pix", "edges2fashion,runlocal")
    section, name = key.split(".")
    config[section][name] = value
    with pytest.raises(ConfigError, match=f"{key}: .*{message}"):
        builders.validate(config)


def test_a_gan_family_refuses_two_domains():
    config = load_config("dcgan_mnist")
    config.data.kind = "translation"
    with pytest.raises(ConfigError, match="data.kind: the gan family reads one dataset"):
        builders.validate(config)


def test_the_small_config_trains_end_to_end(tmp_path):
    config = load_config("pix2pix", "edges2fashion,runlocal")
    config.data.data_dir = require_shared_tfds()
    result = trainer.train_and_evaluate(config, tmp_path)
    family = result["family_metrics"]
    assert family["num_examples"] == 16 and 0 < family["test_l1"] < 2
    assert family["receptive_field"] == 16
    assert json.loads((tmp_path / "eval.json").read_text())["family_metrics"] == family
    grid = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert grid == ["translations_step_0000002.png", "translations_step_0000004.png"]
    # jgan.sample --input=test: inputs above outputs (pix2pix has no way back).
    image = translate(tmp_path, source="test", out=tmp_path / "t.png", num=4)
    assert image.shape[:2] == (2 * 33 + 1, 4 * 33 + 1)
    with pytest.raises(UsageError, match="translates A to B only"):
        translate(tmp_path, source="test", out=tmp_path / "u.png", direction="b2a")
