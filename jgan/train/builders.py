"""From a config to the static pieces of a run: networks, optimizers, the game.

Everything here is validated before anything is compiled, and errors name the config
key at fault.
"""
from __future__ import annotations

import dataclasses

import jax
import ml_collections
import optax

from jgan.objectives import constraints, losses
from jgan.augmentations import StyleAugmentation
from jgan.families import acgan_game, adversarial_game, conditional_game, infogan_game
from jgan.families.adversarial import DISCRIMINATOR, GENERATOR
from jgan.families.infogan import NOISE_DISTRIBUTIONS, Q_TEAMS, InfoGANCodes
from jgan.families.sampling import FAMILIES, GeneratorInputs
from jgan.core.game import Game
from jgan.errors import ConfigError
from jgan.saved_configs import KEYS_ADDED_LATER
from jgan.models import resnet
from jgan.models.conditioning import (AuxiliaryClassifierDiscriminator,
                                      LabelConditionedDiscriminator, LabelConditionedGenerator)
from jgan.models.dcgan import SUPPORTED_RESOLUTIONS, DCGANDiscriminator, DCGANGenerator
from jgan.models.mlp import MLPDiscriminator, MLPGenerator
from jgan.standing_statistics import standing_statistics
from jgan.core.steps import UPDATE_RULES, StepFn, make_step

MODEL_KINDS = ("mlp", "dcgan", "resnet")
DATA_KINDS = ("mixture", "tfds", "image_folder", "stacked_mnist")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
SCHEDULES = ("constant", "linear_decay")


# Keys that only some families read, with the families: any other family would ignore
# them, so a value other than the neutral one is an error there rather than a silent
# no-op. Neutral values are KEYS_ADDED_LATER's or, for the older keys, base.py's.
FAMILY_ONLY_KEYS = {
    "game.fake_labels": ("conditional",),
    "game.class_loss_weight": ("acgan",),
    "game.fake_class_loss": ("acgan",),
    "game.info_weight": ("infogan",),
    "game.info_start_step": ("infogan",),
    "game.info_ramp_steps": ("infogan",),
    "game.info_augmented_weight": ("infogan",),
    "game.info_augmentation": ("infogan",),
    "game.continuous_weight": ("infogan",),
    "game.info_in_discriminator": ("infogan",),
    "game.q_team": ("infogan",),
    "model.q_batch_norm": ("infogan",),
    "model.categorical_codes": ("infogan",),
    "model.continuous_codes": ("infogan",),
    "game.r2_gamma": ("gan", "conditional", "acgan"),
    "game.gradient_penalty_one_sided": ("gan", "conditional"),
}
_NEUTRAL = {**KEYS_ADDED_LATER, "game.r2_gamma": 0.0, "game.gradient_penalty_one_sided": False}


def _require(cond: bool, key: str, message: str):
    if not cond:
        raise ConfigError(f"config.{key}: {message}")


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks the values of a run's config (its keys and types are checked by
    ml_collections when overrides are parsed). Raises ConfigError naming the key."""
    family = config.family
    _require(family in FAMILIES, "family", f"{family!r} is not one of {FAMILIES}.")
    if family != "gan":
        _require(config.game.pack == 1 and config.game.unroll_steps == 0, "family",
                 f"the {family} family takes neither game.pack nor game.unroll_steps.")
    _check_family_only_keys(config, family)
    if family in ("conditional", "acgan"):
        _require(config.model.num_classes >= 2, "model.num_classes", "must be >= 2.")
    if family == "infogan":
        _require(config.model.continuous_codes >= 0, "model.continuous_codes", "must be >= 0.")
        _require(all(k >= 2 for k in config.model.categorical_codes), "model.categorical_codes",
                 "every categorical code needs >= 2 values.")
        q_team = config.game.q_team
        _require(q_team in Q_TEAMS, "game.q_team", f"{q_team!r} is not one of {Q_TEAMS}.")
        _require(q_team == "generator" or config.game.info_in_discriminator,
                 "game.q_team", "'discriminator' needs game.info_in_discriminator=True (D's "
                 "loss is the only one that would train Q's head).")
        start = config.game.info_start_step
        _require(start >= 0, "game.info_start_step", f"must be >= 0, got {start}.")
        _require(start < config.num_steps, "game.info_start_step",
                 f"{start} is not before num_steps={config.num_steps}: the codes would "
                 "never count.")
        ramp = config.game.info_ramp_steps
        _require(ramp >= 0, "game.info_ramp_steps", f"must be >= 0, got {ramp}.")
        _check_info_augmentation(config)
    noise = config.model.noise_distribution
    _require(noise in NOISE_DISTRIBUTIONS, "model.noise_distribution",
             f"{noise!r} is not one of {NOISE_DISTRIBUTIONS}.")
    _require(noise == "normal" or family == "infogan", "model.noise_distribution",
             f"{noise!r} is supported by the infogan family only; family is {family!r}.")
    if config.model.kind == "resnet":
        _require(config.data.resolution in resnet.SUPPORTED_RESOLUTIONS, "data.resolution",
                 f"the ResNet supports {resnet.SUPPORTED_RESOLUTIONS}, got {config.data.resolution}.")
    _require(config.data.resize in ("bicubic", "pad"), "data.resize",
             f"{config.data.resize!r} is not bicubic or pad.")
    _require(config.data.kind in DATA_KINDS, "data.kind",
             f"{config.data.kind!r} is not one of {DATA_KINDS}.")
    _require(config.model.kind in MODEL_KINDS, "model.kind",
             f"{config.model.kind!r} is not one of {MODEL_KINDS}.")
    _require(config.game.loss_type in losses.LOSS_TYPES, "game.loss_type",
             f"{config.game.loss_type!r} is not one of {losses.LOSS_TYPES}.")
    _require(config.game.update_rule in UPDATE_RULES, "game.update_rule",
             f"{config.game.update_rule!r} is not one of {UPDATE_RULES}.")
    _require(config.game.d_steps >= 1, "game.d_steps", "must be >= 1.")
    _require(config.game.update_rule == "alternating" or config.game.d_steps == 1,
             "game.d_steps", f"{config.game.update_rule} updates take exactly one "
             "discriminator step.")
    _require(config.game.unroll_steps >= 0, "game.unroll_steps", "must be >= 0.")
    _require(config.game.pack >= 1, "game.pack", "must be >= 1.")
    _require(config.batch_size >= 1, "batch_size", "must be >= 1.")
    _require(config.batch_size % config.game.pack == 0, "game.pack",
             f"batch_size={config.batch_size} does not split into PacGAN packs of "
             f"{config.game.pack}.")
    _require(config.num_steps >= 0, "num_steps", "must be >= 0.")
    _require(config.max_train_seconds >= 0,
             "max_train_seconds",
             "must be >= 0 (0: no limit).")
    scale = config.data.mixture_scale
    _require(scale > 0, "data.mixture_scale", f"must be > 0, got {scale}.")
    if config.data.kind == "stacked_mnist":
        _require(config.data.channels == 3, "data.channels",
                 f"Stacked MNIST has 3 channels (one digit each), got {config.data.channels}.")
        _require(config.data.resolution in (28, 32), "data.resolution",
                 f"Stacked MNIST runs at 28 or 32, got {config.data.resolution}.")
    if config.model.kind == "dcgan":
        _require(config.data.resolution in SUPPORTED_RESOLUTIONS, "data.resolution",
                 f"DCGAN supports {SUPPORTED_RESOLUTIONS}, got {config.data.resolution}.")
        _require(config.model.normalization in ("batch", "layer", "none"),
                 "model.normalization", f"{config.model.normalization!r} is not batch, layer or none.")
    d_width = config.model.discriminator_width
    _require(d_width >= 0, "model.discriminator_width", f"must be >= 0, got {d_width}.")
    _require(d_width == 0 or (config.model.kind == "dcgan" and config.family == "gan"),
             "model.discriminator_width", "sets the unconditional DCGAN discriminator's width "
             f"only; model.kind is {config.model.kind!r}, family {config.family!r}.")
    dense_hidden = config.model.dense_hidden
    _require(dense_hidden >= 0, "model.dense_hidden", f"must be >= 0, got {dense_hidden}.")
    standing = config.get("eval", {}).get("standing_stats", 0)
    _require(standing >= 0, "eval.standing_stats", f"must be >= 0, got {standing}.")
    _require(standing == 0 or config.batch_size >= 2, "eval.standing_stats",
             f"needs batch_size >= 2 for batch statistics, got {config.batch_size}.")
    slope = _leaky_slope(config)
    _require(0.0 <= slope < 1.0, "model.leaky_slope", f"must be in [0, 1), got {slope}.")
    _require(slope == KEYS_ADDED_LATER["model.leaky_slope"] or config.model.kind == "dcgan",
             "model.leaky_slope", "sets the DCGAN discriminator's (and InfoGAN's Q's) "
             f"slope only; model.kind is {config.model.kind!r}.")
    _require(dense_hidden == 0 or config.model.kind == "dcgan", "model.dense_hidden",
             f"only the dcgan networks have a dense hidden layer; model.kind is "
             f"{config.model.kind!r}.")
    for team in ("generator", "discriminator"):
        opt = config.optimizer[team]
        _require(opt.name in OPTIMIZERS, f"optimizer.{team}.name",
                 f"{opt.name!r} is not one of {OPTIMIZERS}.")
        _require(opt.learning_rate > 0, f"optimizer.{team}.learning_rate", "must be > 0.")
        _require(opt.schedule in SCHEDULES, f"optimizer.{team}.schedule",
                 f"{opt.schedule!r} is not one of {SCHEDULES}.")
        _require(opt.clip_weights >= 0, f"optimizer.{team}.clip_weights", "must be >= 0.")
    if config.game.ema_decay is not None:
        _require(0.0 <= config.game.ema_decay < 1.0, "game.ema_decay", "must be in [0, 1) or None.")
    _require(not config.game.ema_warmup
             or config.game.ema_decay is not None,
             "game.ema_warmup", "warms up the EMA's decay, so it needs game.ema_decay set.")
    if config.get("eval") is not None and config.eval.metrics:
        from jgan.eval import suite
        _require(config.eval.every >= 0, "eval.every", "must be >= 0 (0 = only at the end).")
        try:  # builds nothing heavy: checks names, counts and the classifier's path
            suite.Evaluator(suite.EvalSettings.from_config(config))
        except suite.EvalError as e:
            raise ConfigError(f"config.eval: {e}") from None


def _check_family_only_keys(config: ml_collections.ConfigDict, family: str) -> None:
    for key, readers in FAMILY_ONLY_KEYS.items():
        if family in readers:
            continue
        section, name = key.split(".")
        value, neutral = config[section][name], _NEUTRAL[key]
        if isinstance(value, (list, tuple)):  # a config.json gives lists for tuples
            value, neutral = tuple(value), tuple(neutral)
        if isinstance(value, ml_collections.ConfigDict):
            value = value.to_dict()
        _require(value == neutral, key,
                 f"is read only by the {_join(readers)} famil"
                 f"{'y' if len(readers) == 1 else 'ies'}; family {family!r} would ignore "
                 f"{value!r} (leave it at {neutral!r}).")


def _check_info_augmentation(config: ml_collections.ConfigDict) -> None:
    weight = config.game.info_augmented_weight
    _require(weight >= 0, "game.info_augmented_weight", f"must be >= 0, got {weight}.")
    _require(not weight or config.model.categorical_codes, "game.info_augmented_weight",
             "needs a categorical code (model.categorical_codes is empty).")
    ranges = info_augmentation_ranges(config)
    default = KEYS_ADDED_LATER["game.info_augmentation"]
    _require(set(ranges) == set(default), "game.info_augmentation",
             f"takes the keys {sorted(default)}, got {sorted(ranges)}.")
    _require(weight > 0 or ranges == default, "game.info_augmentation",
             f"is read only when game.info_augmented_weight > 0; it is 0, so {ranges} "
             f"would be ignored (leave it at {default}).")
    try:
        StyleAugmentation(**ranges)
    except ValueError as e:
        raise ConfigError(f"config.game.info_augmentation: {e}") from None


def info_augmentation_ranges(config: ml_collections.ConfigDict) -> dict:
    """`game.info_augmentation` as a dict (the defaults for a run saved without it)."""
    ranges = config.game.info_augmentation
    if isinstance(ranges, ml_collections.ConfigDict):
        ranges = ranges.to_dict()
    return {k: float(v) for k, v in ranges.items()}


def _join(names) -> str:
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def optimizer_updates_per_step(game: ml_collections.ConfigDict) -> tuple[int, int]:
    """(generator, discriminator) optimizer updates per training step of `game.update_rule`:
    extragradient counts its extrapolation, alternating its `d_steps`."""
    if game.update_rule == "extragradient":
        return 2, 2
    return 1, game.d_steps if game.update_rule == "alternating" else 1


def build_optimizer(opt: ml_collections.ConfigDict, num_steps: int, *,
                    optimistic: bool = False) -> optax.GradientTransformation:
    """optax optimizer from `{name, learning_rate, schedule, b1, b2, clip_weights}`.

    `schedule`: "constant", or "linear_decay" from `learning_rate` to 0 over the last
    half of `num_steps` (the number of updates this optimizer makes: a team's optimizer
    counts its own updates).
    `optimistic`: the optimistic variant for `update_rule="optimistic"` (Daskalakis et al.
    2018), u_t -> 2 u_t - u_{t-1} on the optimizer's update u: `optax.
    optimistic_gradient_descent` for sgd (OGD), `optax.optimistic_adam_v2` without
    Nesterov for adam (the paper's Optimistic Adam), the same on RMSProp's scaling.
    Each team has its own optimizer, so two learning rates (TTUR, Heusel et al. 2017)
    are `optimizer.generator.learning_rate` and `optimizer.discriminator.learning_rate`.
    """
    lr = opt.learning_rate
    if opt.schedule == "linear_decay":
        half = max(num_steps // 2, 1)
        lr = optax.join_schedules([optax.constant_schedule(opt.learning_rate),
                                   optax.linear_schedule(opt.learning_rate, 0.0, half)], [half])
    if optimistic:
        if opt.name == "adam":
            tx = optax.optimistic_adam_v2(lr, alpha=1.0, beta=1.0, b1=opt.b1, b2=opt.b2,
                                          nesterov=False)
        elif opt.name == "rmsprop":
            tx = optax.chain(optax.scale_by_rms(), optax.scale_by_optimistic_gradient(),
                             optax.scale_by_learning_rate(lr))
        else:
            tx = optax.optimistic_gradient_descent(lr)
    elif opt.name == "adam":
        tx = optax.adam(lr, b1=opt.b1, b2=opt.b2)
    elif opt.name == "rmsprop":
        tx = optax.rmsprop(lr)
    else:
        tx = optax.sgd(lr)
    if opt.clip_weights:
        tx = optax.chain(tx, constraints.clip_weights(opt.clip_weights))
    return tx


def _unconditional_networks(config: ml_collections.ConfigDict, latent_dim: int):
    m = config.model
    if m.kind == "mlp":
        d_hidden = tuple(m.discriminator_hidden) or tuple(m.hidden)
        return (MLPGenerator(hidden=tuple(m.hidden), output_dim=2),
                MLPDiscriminator(hidden=d_hidden, spectral_norm=m.spectral_norm))
    res = config.data.resolution
    if m.kind == "resnet":
        return (resnet.ResNetGenerator(width=2 * m.width, latent_dim=latent_dim, resolution=res,
                                       channels=config.data.channels),
                resnet.ResNetDiscriminator(width=m.width, spectral_norm=m.spectral_norm))
    dense_hidden = m.dense_hidden
    d_width = m.discriminator_width or m.width
    return (DCGANGenerator(resolution=res, channels=config.data.channels, width=m.width,
                           dense_hidden=dense_hidden),
            DCGANDiscriminator(resolution=res, width=d_width, normalization=m.normalization,
                               spectral_norm=m.spectral_norm, dense_hidden=dense_hidden,
                               leaky_slope=_leaky_slope(config)))


def _leaky_slope(config: ml_collections.ConfigDict) -> float:
    return config.model.leaky_slope


def build_networks(config: ml_collections.ConfigDict):
    """(generator, discriminator) flax modules for `config.model` and `config.family`.

    gan / infogan: the unconditional networks (InfoGAN's G reads z and the codes).
    conditional: ResNets with conditional batch norm in G and a projection D; MLP and
      DCGAN networks with the one-hot label concatenated to G's z and D's input (cGAN).
    acgan: G as for conditional; D's trunk with a source and a class head.
    ResNet widths: D `model.width`, G twice that (SNGAN's 128 / 256).
    """
    family = config.family
    m = config.model
    k = m.num_classes
    if family in ("conditional", "acgan") and m.kind == "resnet":
        gen = resnet.ResNetGenerator(num_classes=k, width=2 * m.width, latent_dim=m.latent_dim,
                                     resolution=config.data.resolution,
                                     channels=config.data.channels)
        disc = resnet.ResNetDiscriminator(num_classes=k if family == "conditional" else None,
                                          width=m.width, spectral_norm=m.spectral_norm)
    else:
        gen, disc = _unconditional_networks(config, m.latent_dim)
        if family in ("conditional", "acgan"):
            gen = LabelConditionedGenerator(generator=gen, num_classes=k)
            if family == "conditional":
                disc = LabelConditionedDiscriminator(discriminator=disc, num_classes=k)
    if family == "acgan":
        disc = AuxiliaryClassifierDiscriminator(trunk=disc, num_classes=k,
                                                spectral_norm=m.spectral_norm)
    return gen, disc


def infogan_codes(config: ml_collections.ConfigDict) -> InfoGANCodes:
    """InfoGAN's code layout: `model.latent_dim` noise drawn from
    `model.noise_distribution`, `model.categorical_codes`, `model.continuous_codes`."""
    m = config.model
    return InfoGANCodes(noise_dim=m.latent_dim, categorical=tuple(m.categorical_codes),
                        continuous=m.continuous_codes,
                        noise=m.noise_distribution)


def build_generator_inputs(config: ml_collections.ConfigDict) -> GeneratorInputs:
    """What the run's generator takes (`jgan.families.sampling.GeneratorInputs`)."""
    family = config.family
    return GeneratorInputs(family=family, latent_dim=config.model.latent_dim,
                           num_classes=config.model.num_classes,
                           codes=infogan_codes(config) if family == "infogan" else None)


def build_sampling_state(config: ml_collections.ConfigDict, game: Game,
                         sampler: GeneratorInputs, *, use_ema: bool | None = None):
    """`state -> state` that the run samples and evaluates from (jitted when it computes).

    With `eval.standing_stats = K > 0`, the generator's batch-norm averages are
    replaced by standing statistics over K training-size batches of its own inputs
    (drawn from `fold_in(PRNGKey(config.seed), 6)`, the same in the trainer, `jgan.sample`
    and `jgan.evaluate`), for the weights it samples with: EMA when the run keeps them
    and `use_ema` is not False (`jgan.standing_statistics`). With 0 (the default) the
    state is used as it is.
    """
    num_batches = config.get("eval", {}).get("standing_stats", 0)
    if not num_batches:
        return lambda state: state
    if use_ema is None:
        use_ema = config.game.ema_decay is not None
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 6)
    return jax.jit(lambda state: standing_statistics(
        game, state, sampler, rng, num_batches=num_batches, batch_size=config.batch_size,
        use_ema=use_ema and bool(state.ema)))


def build_game(config: ml_collections.ConfigDict) -> Game:
    """The `Game` of a run: `config.family` picks the family, the rest its settings."""
    game = _family_game(config)
    if config.game.ema_warmup:
        generator = dataclasses.replace(game.teams[GENERATOR], ema_warmup=True)
        game = dataclasses.replace(game, teams={**game.teams, GENERATOR: generator})
    return game


def build_step(config: ml_collections.ConfigDict, game: Game, *,
               axis_name: str | None = None) -> StepFn:
    """The run's step function: `game.update_rule`, `game.d_steps` discriminator updates
    per step (alternating), `game.unroll_steps`; not jitted."""
    return make_step(game, update_rule=config.game.update_rule,
                     repeats={DISCRIMINATOR: config.game.d_steps},
                     unroll_steps=config.game.unroll_steps, axis_name=axis_name)


def _family_game(config: ml_collections.ConfigDict) -> Game:
    generator, discriminator = build_networks(config)
    g = config.game
    family = config.family
    g_updates, d_updates = optimizer_updates_per_step(g)
    optimistic = g.update_rule == "optimistic"
    optimizers = dict(
        generator_optimizer=build_optimizer(config.optimizer.generator,
                                            config.num_steps * g_updates, optimistic=optimistic),
        discriminator_optimizer=build_optimizer(config.optimizer.discriminator,
                                                config.num_steps * d_updates,
                                                optimistic=optimistic))
    common = dict(generator=generator, discriminator=discriminator, loss_type=g.loss_type,
                  gradient_penalty_weight=g.gradient_penalty_weight, r1_gamma=g.r1_gamma,
                  ema_decay=g.ema_decay, **optimizers)
    if family == "infogan":
        return infogan_game(codes=infogan_codes(config), info_weight=g.info_weight,
                            info_start_step=g.info_start_step,
                            info_ramp_steps=g.info_ramp_steps,
                            continuous_weight=g.continuous_weight,
                            info_in_discriminator=g.info_in_discriminator,
                            q_team=g.q_team,
                            q_batch_norm=config.model.q_batch_norm,
                            q_leaky_slope=_leaky_slope(config),
                            augmented_weight=g.info_augmented_weight,
                            augmentation=StyleAugmentation(**info_augmentation_ranges(config)),
                            **common)
    common["r2_gamma"] = g.r2_gamma
    if family == "acgan":
        return acgan_game(latent_dim=config.model.latent_dim,
                          num_classes=config.model.num_classes,
                          class_loss_weight=g.class_loss_weight,
                          fake_class_loss=g.fake_class_loss,
                          **common)
    common.update(gradient_penalty_one_sided=g.gradient_penalty_one_sided)
    if family == "conditional":
        return conditional_game(latent_dim=config.model.latent_dim,
                                num_classes=config.model.num_classes,
                                fake_labels=g.fake_labels, **common)
    return adversarial_game(latent_dim=config.model.latent_dim,
                            pack=g.pack, **common)
