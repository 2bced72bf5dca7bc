"""Config validation, optimizer building and the image-grid writer."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs import dcgan_mnist, mixture, wgan_gp_mnist
from jgan.families import registry
from jgan.train import builders, writers
from jgan.train.samples import weights_title


@pytest.mark.parametrize("key,value,message", [
    ("data.kind", "video", "config.data.kind"),
    ("model.kind", "transformer", "config.model.kind"),
    ("game.loss_type", "wgan", "config.game.loss_type"),
    ("game.update_rule", "sometimes", "config.game.update_rule"),
    ("game.d_steps", 0, "config.game.d_steps"),
    ("data.resolution", 48, "config.data.resolution"),
    ("optimizer.discriminator.name", "lion", "config.optimizer.discriminator.name"),
    ("optimizer.generator.learning_rate", -1.0, "config.optimizer.generator.learning_rate"),
    ("optimizer.generator.schedule", "cosine", "config.optimizer.generator.schedule"),
    ("model.dense_hidden", -1, "config.model.dense_hidden"),
    ("max_train_seconds", -5.0, "config.max_train_seconds"),
    ("model.noise_distribution", "laplace", "config.model.noise_distribution"),
    # Only InfoGAN's codes draw uniform noise; elsewhere the key would be ignored.
    ("model.noise_distribution", "uniform", "config.model.noise_distribution"),
    ("eval.standing_stats", -1, "config.eval.standing_stats"),
    ("model.leaky_slope", -0.1, "config.model.leaky_slope"),
])
def test_validate_names_the_bad_key(key, value, message):
    config = dcgan_mnist.get_config("runlocal")
    node = config
    *path, leaf = key.split(".")
    for p in path:
        node = node[p]
    node[leaf] = value
    with pytest.raises(builders.ConfigError, match=message.replace(".", r"\.")):
        builders.validate(config)


def test_simultaneous_with_several_d_steps_is_rejected():
    config = wgan_gp_mnist.get_config()
    config.game.update_rule = "simultaneous"
    with pytest.raises(builders.ConfigError, match="game.d_steps"):
        builders.validate(config)


def _shipped_configs():
    from experiments.configs import (conditional, dcgan_fashion_mnist, dcgan_stacked_mnist,
                                     image_folder, sngan_mnist)
    for family, dataset, small in itertools.product(conditional.FAMILIES, conditional.DATASETS,
                                                    ("", ",runlocal")):
        config = conditional.get_config(f"{family},{dataset}{small}")
        if not small:  # the full variants score with a classifier the user passes in
            config.eval.metrics = ""
        yield f"conditional.py:{family},{dataset}{small}", config
    for dataset, small in itertools.product(conditional.DATASETS, ("", ",runlocal")):
        config = conditional.get_config(f"infogan,{dataset},augmented{small}")
        assert config.infogan.info_augmented_weight == 1.0
        if not small:
            config.eval.metrics = ""
        yield f"conditional.py:infogan,{dataset},augmented{small}", config
    for ring_or_grid, game, small in itertools.product(("ring", "grid"), mixture.GAMES,
                                                       ("", ",runlocal")):
        yield f"mixture.py:{ring_or_grid},{game}{small}", mixture.get_config(
            f"{ring_or_grid},{game}{small}")
    for module in (dcgan_mnist, dcgan_fashion_mnist, dcgan_stacked_mnist, image_folder,
                   sngan_mnist, wgan_gp_mnist):
        for small in ("", "runlocal"):
            yield f"{module.__name__}:{small}", module.get_config(small)


def test_every_shipped_config_validates():
    names = []
    for name, config in _shipped_configs():
        builders.validate(config)
        names.append(name)
    assert len(names) == 76, names


_FAMILY_CONFIGS = {"gan": ("dcgan_mnist", "runlocal"),
                   "conditional": ("conditional", "cgan,mnist,runlocal"),
                   "acgan": ("conditional", "acgan,mnist,runlocal"),
                   "infogan": ("conditional", "infogan,mnist,runlocal")}
_NON_NEUTRAL = {"game.r2_gamma": 1.0, "game.gradient_penalty_one_sided": True}
# A value other than the default for every key of every family's section.
_SECTION_VALUES = {"conditional.fake_labels": "real", "acgan.class_loss_weight": 0.5,
                   "acgan.fake_class_loss": False, "infogan.info_weight": 0.5,
                   "infogan.info_start_step": 1, "infogan.info_ramp_steps": 10,
                   "infogan.info_augmented_weight": 1.0,
                   "infogan.info_augmentation": {"max_rotation": 30.0, "max_shear": 0.3,
                                                 "max_scale": 0.1, "max_shift": 2.0,
                                                 "max_stroke": 0.5},
                   "infogan.continuous_weight": 0.1, "infogan.info_in_discriminator": False,
                   "infogan.q_team": "discriminator", "infogan.q_batch_norm": True,
                   "infogan.categorical_codes": (5,), "infogan.continuous_codes": 0}


def _family_config(family):
    import importlib
    module, arg = _FAMILY_CONFIGS[family]
    return importlib.import_module(f"experiments.configs.{module}").get_config(arg)


@pytest.mark.parametrize("key", sorted(builders.FAMILY_ONLY_KEYS))
def test_family_only_keys_are_errors_in_families_that_ignore_them(key):
    assert set(_NON_NEUTRAL) == set(builders.FAMILY_ONLY_KEYS)
    section, name = key.split(".")
    readers = builders.FAMILY_ONLY_KEYS[key]
    for family in _FAMILY_CONFIGS:
        config = _family_config(family)
        config[section][name] = _NON_NEUTRAL[key]
        if family in readers:
            builders.validate(config)
            builders.build_game(config)
        else:
            with pytest.raises(builders.ConfigError,
                               match=rf"config\.{section}\.{name}: is read only by .*"
                                     rf"family '{family}' would ignore"):
                builders.validate(config)


def test_each_family_section_holds_its_keys_and_no_other_family_reads_it():
    sections = {family: registry.get_family(family).section for family in _FAMILY_CONFIGS}
    keys = {f"{family}.{key}" for family, section in sections.items() if section
            for key in section().keys()}
    assert keys == set(_SECTION_VALUES)
    for key, value in _SECTION_VALUES.items():
        family, name = key.split(".")
        config = _family_config(family)
        config[family][name] = value
        if key == "infogan.info_augmentation":   # read only with a positive weight
            config.infogan.info_augmented_weight = 1.0
        builders.validate(config)
        builders.build_game(config)
    for family, other in itertools.permutations(_FAMILY_CONFIGS, 2):
        if sections[other] is None:
            continue
        config = _family_config(family)
        config[other] = sections[other]()
        with pytest.raises(builders.ConfigError, match=rf"config\.{other}: is the {other} "
                                                       rf"family's section; family '{family}'"):
            builders.validate(config)


def test_a_missing_section_or_a_stray_key_in_it_is_named():
    config = _family_config("acgan")
    del config["acgan"]
    with pytest.raises(builders.ConfigError, match=r"config\.acgan: missing; the acgan family"):
        builders.validate(config)
    config = _family_config("infogan")
    with config.ignore_type():
        config.infogan.info_wieght = 2.0
    with pytest.raises(builders.ConfigError, match=r"config\.infogan\.info_wieght: not a key "
                                                   r"of the infogan family"):
        builders.validate(config)


def test_info_augmentation_ranges_are_checked_and_reach_the_game(monkeypatch):
    import dataclasses

    from jgan.augmentations import StyleAugmentation
    config = _family_config("infogan")
    defaults = {f.name: f.default for f in dataclasses.fields(StyleAugmentation)
                if f.name != "fill_value"}
    assert StyleAugmentation().ranges() == defaults
    assert config.infogan.info_augmentation.to_dict() == defaults
    # Frozen there: the values that reproduce runs saved before the key existed.
    assert builders.KEYS_ADDED_LATER["game.info_augmentation"] == defaults
    config.infogan.info_augmentation.max_rotation = 25.0
    with pytest.raises(builders.ConfigError, match=r"config\.infogan\.info_augmentation: is read "
                                                   r"only when infogan\.info_augmented_weight > 0"):
        builders.validate(config)
    config.infogan.info_augmented_weight = 2.0
    builders.validate(config)
    built = []
    from jgan.families import infogan
    monkeypatch.setattr(infogan, "StyleAugmentation",
                        lambda **ranges: built.append(ranges) or StyleAugmentation(**ranges))
    builders.build_game(config)
    assert built == [{**defaults, "max_rotation": 25.0}]
    config.infogan.info_augmentation.max_scale = 1.5
    with pytest.raises(builders.ConfigError,
                       match=r"config\.infogan\.info_augmentation: max_scale must be < 1"):
        builders.validate(config)
    config.infogan.info_augmentation.max_scale = 0.1
    config.infogan.info_augmented_weight = -1.0
    with pytest.raises(builders.ConfigError, match=r"config\.infogan\.info_augmented_weight: must be >= 0"):
        builders.validate(config)
    config.infogan.info_augmented_weight = 1.0
    config.infogan.categorical_codes = ()
    with pytest.raises(builders.ConfigError, match=r"info_augmented_weight: needs a categorical"):
        builders.validate(config)


def test_linear_decay_schedule_and_weight_clipping():
    config = mixture.get_config("ring,minimax")
    opt = config.optimizer.discriminator
    opt.name, opt.learning_rate, opt.schedule, opt.clip_weights = "sgd", 1.0, "linear_decay", 0.5
    tx = builders.build_optimizer(opt, num_steps=10)
    params = {"w": jnp.zeros(())}
    state = tx.init(params)
    steps = []
    for _ in range(10):
        updates, state = tx.update({"w": jnp.array(-0.01)}, state, params)
        steps.append(float(updates["w"]))
        params = optax.apply_updates(params, updates)
    # constant for the first half, then linearly to 0; sgd moves by lr * 0.01.
    np.testing.assert_allclose(steps[:5], 0.01, rtol=1e-6)
    np.testing.assert_allclose(steps[5:], [0.01 * (1 - i / 5) for i in range(5)], rtol=1e-5, atol=1e-9)
    big = tx.update({"w": jnp.array(-100.0)}, state, params)[0]
    assert float(optax.apply_updates(params, big)["w"]) <= 0.5


def test_image_grid_layout():
    images = np.stack([np.full((2, 3, 1), v, np.float32) for v in (-1.0, 0.0, 1.0)])
    grid = writers.image_grid(images, columns=2)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1) and grid.dtype == np.uint8
    assert grid[1, 1, 0] == 0 and grid[1, 5, 0] == 128 and grid[4, 1, 0] == 255
    assert grid[0].max() == 0  # gaps are black


def test_mlp_discriminator_widths_default_to_the_generators_and_can_differ():
    from experiments.configs import mixture

    config = mixture.get_config("grid,pacgan,runlocal")
    generator, discriminator = builders.build_networks(config)
    assert generator.hidden == discriminator.hidden == (32, 32)
    config.model.discriminator_hidden = (64, 48, 16)
    generator, discriminator = builders.build_networks(config)
    assert generator.hidden == (32, 32) and discriminator.hidden == (64, 48, 16)
    params = builders.build_game(config).init(
        jax.random.PRNGKey(0), {"image": jnp.zeros((config.batch_size, 2))}).teams["discriminator"].params
    kernels = [v["kernel"].shape for _, v in sorted(params["discriminator"]["discriminator"].items())]
    assert kernels == [(8, 64), (64, 48), (48, 16), (16, 1)]  # packs of 4 points: 8 inputs


def test_infogan_networks_have_the_papers_dense_layers():
    from experiments.configs import conditional

    config = conditional.get_config("infogan,mnist,runlocal")
    assert config.model.dense_hidden == 1024
    config.model.dense_hidden = 24
    game = builders.build_game(config)
    state = game.init(jax.random.PRNGKey(0), {"image": jnp.zeros((2, 28, 28, 1))})
    g = state.teams["generator"].params["generator"]
    d = state.teams["discriminator"].params["discriminator"]
    # G: [z, codes] (62 + 10 + 2) -> FC 24 -> the 7x7 projection; D: conv trunk -> FC 24.
    assert g["hidden"]["kernel"].shape == (74, 24)
    assert g["project"]["kernel"].shape[0] == 24
    assert d["hidden"]["kernel"].shape == (7 * 7 * 2 * config.model.width, 24)
    assert d["logit"]["kernel"].shape == (24, 1)
    # Q's head reads the dense layer's features.
    assert state.teams["generator"].params["q_head"]["hidden"]["kernel"].shape[0] == 24
    config.model.kind = "mlp"
    with pytest.raises(builders.ConfigError, match=r"model\.dense_hidden"):
        builders.validate(config)


def test_infogan_config_reaches_the_information_term_in_ds_loss():
    from experiments.configs import conditional
    from jgan.core.step_parts import team_gradients

    config = conditional.get_config("infogan,mnist,runlocal")
    config.infogan.info_weight = 0.5
    batch = {"image": jax.random.uniform(jax.random.PRNGKey(2), (4, 28, 28, 1), minval=-1.0)}
    d_loss = {}
    for with_info in (True, False):
        config.infogan.info_in_discriminator = with_info
        game = builders.build_game(config)
        state = game.init(jax.random.PRNGKey(0), batch)
        loss, _, _, metrics, _ = jax.jit(lambda s: team_gradients(
            game, s, batch, jax.random.PRNGKey(1), team="discriminator", axis_name=None))(state)
        d_loss[with_info] = float(loss)
    # The same fakes either way: the difference is lambda times Q's NLL of their codes.
    np.testing.assert_allclose(d_loss[True] - d_loss[False],
                               0.5 * float(metrics["d_info_loss"]), rtol=1e-4)


def test_infogan_q_team_config_key():
    from experiments.configs import conditional

    config = conditional.get_config("infogan,mnist,runlocal")
    config.infogan.q_team = "discriminator"
    builders.validate(config)
    batch = {"image": jnp.zeros((4, 28, 28, 1))}
    state = builders.build_game(config).init(jax.random.PRNGKey(0), batch)
    assert "q_head" in state.teams["discriminator"].params and "q_head" not in state.teams["generator"].params
    assert "batch_stats" not in state.teams["discriminator"].collections["q_head"]
    config.infogan.q_batch_norm = True
    state = builders.build_game(config).init(jax.random.PRNGKey(0), batch)
    assert "hidden_bn" in state.teams["discriminator"].collections["q_head"]["batch_stats"]
    config.infogan.info_in_discriminator = False
    with pytest.raises(builders.ConfigError, match=r"infogan\.q_team"):
        builders.validate(config)
    config.infogan.info_in_discriminator = True
    config.infogan.q_team = "both"
    with pytest.raises(builders.ConfigError, match=r"infogan\.q_team"):
        builders.validate(config)


def test_dcgan_discriminator_width_is_set_apart_from_the_generators():
    config = dcgan_mnist.get_config("runlocal")
    config.model.discriminator_width = 3
    generator, discriminator = builders.build_networks(config)
    assert (generator.width, discriminator.width) == (config.model.width, 3)
    state = builders.build_game(config).init(jax.random.PRNGKey(0),
                                             {"image": jnp.zeros((2, 28, 28, 1))})
    d = state.teams["discriminator"].params["discriminator"]
    assert d["conv0"]["kernel"].shape == (4, 4, 1, 3) and d["conv1"]["kernel"].shape[-1] == 6
    config.model.kind = "resnet"
    with pytest.raises(builders.ConfigError, match=r"model\.discriminator_width"):
        builders.validate(config)


def test_leaky_slope_config_key_reaches_discriminator_and_q_head():
    from experiments.configs import conditional

    config = conditional.get_config("infogan,mnist,runlocal")
    assert builders.build_networks(config)[1].leaky_slope == 0.2
    config.model.leaky_slope = 0.01
    builders.validate(config)
    assert builders.build_networks(config)[1].leaky_slope == 0.01
    game = builders.build_game(config)
    assert game.teams["generator"].networks["q_head"].leaky_slope == 0.01
    config.model.leaky_slope = 1.0
    with pytest.raises(builders.ConfigError, match=r"model\.leaky_slope"):
        builders.validate(config)
    resnet = conditional.get_config("projection,mnist,runlocal")
    resnet.model.leaky_slope = 0.1
    with pytest.raises(builders.ConfigError, match=r"model\.leaky_slope"):
        builders.validate(resnet)


def test_ema_warmup_is_the_default_for_every_team_with_an_ema():
    config = dcgan_mnist.get_config("runlocal")
    assert config.game.ema_warmup and config.game.ema_decay == 0.999
    assert builders.build_game(config).teams["generator"].ema_warmup
    assert not builders.build_game(config).teams["discriminator"].ema_warmup  # keeps no EMA
    config.game.ema_decay = None   # warm-up of no average: nothing to warm up, no error
    builders.validate(config)
    assert not any(team.ema_warmup for team in builders.build_game(config).teams.values())
    config.game.ema_decay = 0.999
    config.game.ema_warmup = False
    assert not builders.build_game(config).teams["generator"].ema_warmup


def test_infogan_info_start_step_config_key():
    from experiments.configs import conditional

    config = conditional.get_config("infogan,mnist,runlocal")
    config.infogan.info_start_step = config.num_steps - 1
    builders.validate(config)
    for bad in (-1, config.num_steps):
        config.infogan.info_start_step = bad
        with pytest.raises(builders.ConfigError, match=r"infogan\.info_start_step"):
            builders.validate(config)
    config.infogan.info_start_step = 0
    config.infogan.info_ramp_steps = -1
    with pytest.raises(builders.ConfigError, match=r"infogan\.info_ramp_steps"):
        builders.validate(config)


def _red_pixels(rgb: np.ndarray) -> int:
    rgb = rgb.astype(int)
    return int(np.sum((rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)))


def test_scatter_draws_few_samples_above_the_mode_markers(tmp_path):
    # One sample on each mode: drawn above its marker, it covers part of the red cross.
    means = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
    bare = writers.scatter_plot(np.zeros((0, 2)), means, tmp_path / "bare.png")
    covered = writers.scatter_plot(means, means, tmp_path / "covered.png")
    assert _red_pixels(covered) < _red_pixels(bare) - 8


def test_sample_grid_titles_say_which_weights_drew_them():
    config = dcgan_mnist.get_config("runlocal")
    assert weights_title(config) == "EMA weights (decay 0.999, with warm-up)"
    assert weights_title(config, use_ema=False) == "raw weights"
    config.game.ema_warmup = False  # a run saved before warm-up was the default
    assert weights_title(config) == "EMA weights (decay 0.999, no warm-up)"
    config.game.ema_decay = None
    assert weights_title(config) == "raw weights"


@pytest.mark.parametrize("channels,columns", [(1, 8), (3, 2)])
def test_titled_grid_keeps_the_grid_below_a_band_of_text(channels, columns):
    images = np.random.default_rng(0).uniform(-1, 1, (columns * columns, 28, 28, channels))
    grid = writers.image_grid(images, columns=columns)
    out = writers.titled(grid, ["step 300", "raw weights"])
    band = out.shape[0] - grid.shape[0]
    assert out.shape[1:] == grid.shape[1:] and 0 < band < 29  # shorter than a grid row
    np.testing.assert_array_equal(out[band:], grid)
    assert out[:band].max() > 200  # the text is drawn (antialiased)
    # Parts that do not fit side by side go on lines of their own: a taller band.
    assert band > 15 if columns == 2 else band <= 15
