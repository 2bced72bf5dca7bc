"""StarGAN (`jgan.families.stargan`): the classification loss and the mask vector that
hides unknown labels, the discriminator's two heads, and a run with the mask."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import load_config, require_shared_tfds
from jgan.errors import ConfigError
from jgan.families.stargan import _condition, classification_loss, known_labels
from jgan.models.resnet_translator import ResnetTranslator
from jgan.models.star_discriminator import StarDiscriminator
from jgan.train import builders, trainer


def test_the_classification_loss_is_the_summed_binary_cross_entropy():
    logits = jnp.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    labels = jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    p = jax.nn.sigmoid(logits)
    reference = -jnp.mean(jnp.sum(labels * jnp.log(p) + (1 - labels) * jnp.log(1 - p), -1))
    np.testing.assert_allclose(classification_loss(logits, labels, jnp.ones_like(labels)),
                               reference, rtol=1e-6)


def test_the_mask_hides_unknown_labels():
    logits = jax.random.normal(jax.random.key(0), (4, 5))
    labels = jnp.asarray(np.random.default_rng(0).integers(0, 2, (4, 5)), jnp.float32)
    known = jnp.asarray(known_labels(_mask_config(), 4))
    flipped = jnp.where(known > 0, labels, 1.0 - labels)   # change only unknown labels
    loss = classification_loss(logits, labels, known)
    np.testing.assert_allclose(classification_loss(logits, flipped, known), loss)
    grad = jax.grad(classification_loss)(logits, labels, known)
    assert float(jnp.abs(grad * (1 - known)).max()) == 0.0
    assert np.abs(np.asarray(grad))[np.asarray(known) > 0].min() > 0.0
    # What the generator reads does not change with an unknown label either.
    x = jnp.zeros((4, 8, 8, 3))
    np.testing.assert_array_equal(_condition(x, labels * known, known),
                                  _condition(x, flipped * known, known))


def _mask_config():
    return load_config("stargan", "mask,runlocal")


def test_examples_alternate_between_the_datasets_label_groups():
    np.testing.assert_array_equal(known_labels(_mask_config(), 3),
                                  [[1, 1, 1, 0, 0], [0, 0, 0, 1, 1], [1, 1, 1, 0, 0]])
    assert known_labels(load_config("stargan", "runlocal"), 2).min() == 1.0


def _translations_to_two_targets(padding):
    net = ResnetTranslator(out_channels=3, width=4, num_blocks=1, padding=padding)
    x = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3), minval=-1.0, maxval=1.0)
    ones = jnp.ones((2, 5))
    red, blue = jnp.eye(5)[jnp.array([0, 0])], jnp.eye(5)[jnp.array([2, 2])]
    params = net.init(jax.random.key(0), _condition(x, red, ones))
    translate = jax.jit(lambda labels: net.apply(params, _condition(x, labels, ones)))
    return translate(red), translate(blue)


def test_the_generator_reads_its_target_labels():
    # Constant label planes pass a reflection-padded convolution as constants, which
    # the instance norm after it subtracts: StarGAN's generator pads with zeros.
    to_red, to_blue = _translations_to_two_targets("zero")
    assert float(jnp.max(jnp.abs(to_red - to_blue))) > 1e-2
    blind_red, blind_blue = _translations_to_two_targets("reflect")
    np.testing.assert_allclose(blind_red, blind_blue, atol=1e-4)


def test_the_discriminator_has_a_patch_critic_and_an_attribute_head():
    d = StarDiscriminator(5, width=4, num_layers=4)
    x = jnp.zeros((3, 32, 32, 3))
    source, logits = d.apply(d.init(jax.random.key(0), x), x)
    assert source.shape == (3, 2, 2, 1) and logits.shape == (3, 5)


@pytest.mark.parametrize("groups,message", [("0,1;1,2", "distinct attribute indices"),
                                            ("0,7", "distinct attribute indices")])
def test_bad_label_groups_are_named(groups, message):
    config = _mask_config()
    config.stargan.label_groups = groups
    with pytest.raises(ConfigError, match=f"stargan.label_groups: .*{message}"):
        builders.validate(config)


def test_the_small_config_with_the_mask_trains_end_to_end(tmp_path):
    config = _mask_config()
    config.data.data_dir = require_shared_tfds()
    result = trainer.train_and_evaluate(config, tmp_path)
    family = result["family_metrics"]
    assert 0 <= family["target_attribute_accuracy"] <= 1 and family["num_examples"] == 16
    assert "d_cls" in result["final_metrics"] and "g_rec" in result["final_metrics"]
    assert [p.name for p in (tmp_path / "samples").iterdir()] != []
