"""From a config to the static pieces of a run: networks, optimizers, the game.

Everything here is validated before anything is compiled, and errors name the config
key at fault.
"""
from __future__ import annotations

import dataclasses

import jax
import ml_collections
import optax

from jgan import precision
from jgan.core.game import Game
from jgan.core.stages import Stage
from jgan.core.steps import UPDATE_RULES, StepFn, make_step
from jgan.errors import ConfigError, require
from jgan.families import registry  # importing jgan.families registers every family
from jgan.families.gan_config import optimizer_updates_per_step
from jgan.families.sampling import GeneratorInputs
from jgan.models import resnet
from jgan.models.dcgan import SUPPORTED_RESOLUTIONS
from jgan.objectives import losses
from jgan.optimizers import build_optimizer, validate_optimizer
from jgan.saved_configs import KEYS_ADDED_LATER
from jgan.standing_statistics import standing_statistics

__all__ = ["ConfigError", "FAMILY_ONLY_KEYS", "build_family_evaluation", "build_game",
           "build_generator_inputs", "build_networks", "build_optimizer",
           "build_sample_grids", "build_sampling_state", "build_stage_step", "build_stages",
           "build_step",
           "optimizer_updates_per_step", "validate"]

MODEL_KINDS = ("mlp", "dcgan", "resnet")
DATA_KINDS = ("mixture", "tfds", "image_folder", "stacked_mnist", "translation",
              "attribute_digits")


# Keys outside the family sections that only some families read (`Family.reads`), with
# the families, as registered on import: any other family would ignore them, so a value
# other than the neutral one is an error there rather than a silent no-op (checked
# against the registry as it is then). Neutral values are base.py's.
FAMILY_ONLY_KEYS = registry.family_only_keys()
_NEUTRAL = {"game.r2_gamma": 0.0, "game.gradient_penalty_one_sided": False}


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks the values of a run's config (its keys and types are checked by
    ml_collections when overrides are parsed). Raises ConfigError naming the key."""
    family = registry.get_family(config.family)
    registry.check_sections(config)
    if not family.takes_pack_and_unroll:
        require(config.game.pack == 1 and config.game.unroll_steps == 0, "family",
                 f"the {family.name} family takes neither game.pack nor game.unroll_steps.")
    _check_family_only_keys(config, family.name)
    if family.generator_inputs is None:  # nothing to sample: no sample metrics either
        require(not config.eval.metrics and not config.eval.standing_stats, "eval.metrics",
                f"the {family.name} family draws no samples from noise, so eval.metrics "
                "and eval.standing_stats, which measure samples, must be empty / 0.")
    require(config.checkpoints_kept >= 0, "checkpoints_kept",
            f"the newest checkpoints to keep, >= 0 (0: all), got {config.checkpoints_kept}.")
    family.validate(config)
    _check_noise_distribution(config, family)
    translation = family.input_kind == "domain_pairs"
    require((config.data.kind == "translation") == translation, "data.kind",
            f"the {family.name} family reads "
            + ("two domains: data.kind must be 'translation'." if translation else
               f"one dataset, not the two domains of {config.data.kind!r}."))
    if config.model.kind == "resnet" and not translation:
        require(config.data.resolution in resnet.SUPPORTED_RESOLUTIONS, "data.resolution",
                 f"the ResNet supports {resnet.SUPPORTED_RESOLUTIONS}, got {config.data.resolution}.")
    require(config.data.resize in ("bicubic", "pad"), "data.resize",
             f"{config.data.resize!r} is not bicubic or pad.")
    require(config.data.kind in DATA_KINDS, "data.kind",
             f"{config.data.kind!r} is not one of {DATA_KINDS}.")
    require(config.model.kind in MODEL_KINDS, "model.kind",
             f"{config.model.kind!r} is not one of {MODEL_KINDS}.")
    require(config.game.loss_type in losses.LOSS_TYPES, "game.loss_type",
             f"{config.game.loss_type!r} is not one of {losses.LOSS_TYPES}.")
    require(config.game.update_rule in UPDATE_RULES, "game.update_rule",
             f"{config.game.update_rule!r} is not one of {UPDATE_RULES}.")
    require(config.game.d_steps >= 1, "game.d_steps", "must be >= 1.")
    require(config.game.update_rule == "alternating" or config.game.d_steps == 1,
             "game.d_steps", f"{config.game.update_rule} updates take exactly one "
             "discriminator step.")
    require(config.game.unroll_steps >= 0, "game.unroll_steps", "must be >= 0.")
    require(config.game.pack >= 1, "game.pack", "must be >= 1.")
    require(config.batch_size >= 1, "batch_size", "must be >= 1.")
    require(config.mesh.model >= 1, "mesh.model", "must be >= 1 (1: replicated state).")
    m = config.game.micro_batches
    require(m >= 1 and config.batch_size % m == 0, "game.micro_batches",
            f"{m} must be >= 1 and divide batch_size {config.batch_size}.")
    require(m == 1 or (config.game.update_rule != "extragradient"
                       and not config.game.unroll_steps), "game.micro_batches",
            "gradient accumulation takes the alternating, simultaneous and optimistic rules "
            "without unrolling.")
    require(config.mesh.min_shard_size >= 0, "mesh.min_shard_size", "must be >= 0.")
    require(config.batch_size % config.game.pack == 0, "game.pack",
             f"batch_size={config.batch_size} does not split into PacGAN packs of "
             f"{config.game.pack}.")
    require(config.num_steps >= 0, "num_steps", "must be >= 0.")
    require(config.max_train_seconds >= 0,
             "max_train_seconds",
             "must be >= 0 (0: no limit).")
    scale = config.data.mixture_scale
    require(scale > 0, "data.mixture_scale", f"must be > 0, got {scale}.")
    if config.data.kind == "stacked_mnist":
        require(config.data.channels == 3, "data.channels",
                 f"Stacked MNIST has 3 channels (one digit each), got {config.data.channels}.")
        require(config.data.resolution in (28, 32), "data.resolution",
                 f"Stacked MNIST runs at 28 or 32, got {config.data.resolution}.")
    if config.model.kind == "dcgan" and not (translation or family.own_networks):
        require(config.data.resolution in SUPPORTED_RESOLUTIONS, "data.resolution",
                 f"DCGAN supports {SUPPORTED_RESOLUTIONS}, got {config.data.resolution}.")
        require(config.model.normalization in ("batch", "layer", "none"),
                 "model.normalization", f"{config.model.normalization!r} is not batch, layer or none.")
    d_width = config.model.discriminator_width
    require(d_width >= 0, "model.discriminator_width", f"must be >= 0, got {d_width}.")
    require(d_width == 0 or (config.model.kind == "dcgan" and family.sets_discriminator_width),
             "model.discriminator_width", "sets the unconditional DCGAN discriminator's width "
             f"only; model.kind is {config.model.kind!r}, family {family.name!r}.")
    dense_hidden = config.model.dense_hidden
    require(dense_hidden >= 0, "model.dense_hidden", f"must be >= 0, got {dense_hidden}.")
    standing = config.get("eval", {}).get("standing_stats", 0)
    require(standing >= 0, "eval.standing_stats", f"must be >= 0, got {standing}.")
    require(standing == 0 or config.batch_size >= 2, "eval.standing_stats",
             f"needs batch_size >= 2 for batch statistics, got {config.batch_size}.")
    slope = config.model.leaky_slope
    require(0.0 <= slope < 1.0, "model.leaky_slope", f"must be in [0, 1), got {slope}.")
    require(slope == KEYS_ADDED_LATER["model.leaky_slope"] or config.model.kind == "dcgan",
             "model.leaky_slope", "sets the DCGAN discriminator's (and a Q head's) "
             f"slope only; model.kind is {config.model.kind!r}.")
    require(dense_hidden == 0 or config.model.kind == "dcgan", "model.dense_hidden",
             f"only the dcgan networks have a dense hidden layer; model.kind is "
             f"{config.model.kind!r}.")
    for team, opt in config.optimizer.items():
        validate_optimizer(opt, team)
    precision.validate_config(config)
    if config.game.ema_decay is not None:
        require(0.0 <= config.game.ema_decay < 1.0, "game.ema_decay", "must be in [0, 1) or None.")
    if config.get("eval") is not None and config.eval.metrics:
        from jgan.eval import suite
        require(config.eval.every >= 0, "eval.every", "must be >= 0 (0 = only at the end).")
        try:  # builds nothing heavy: checks names, counts and the classifier's path
            suite.Evaluator(suite.EvalSettings.from_config(config))
        except suite.EvalError as e:
            raise ConfigError(f"config.eval: {e}") from None


def _check_family_only_keys(config: ml_collections.ConfigDict, family: str) -> None:
    for key, readers in registry.family_only_keys().items():
        if family in readers:
            continue
        section, name = key.split(".")
        value, neutral = config[section][name], _NEUTRAL[key]
        if isinstance(value, (list, tuple)):  # a config.json gives lists for tuples
            value, neutral = tuple(value), tuple(neutral)
        if isinstance(value, ml_collections.ConfigDict):
            value = value.to_dict()
        require(value == neutral, key,
                 f"is read only by the {_join(readers)} famil"
                 f"{'y' if len(readers) == 1 else 'ies'}; family {family!r} would ignore "
                 f"{value!r} (leave it at {neutral!r}).")


def _check_noise_distribution(config: ml_collections.ConfigDict,
                              family: registry.Family) -> None:
    known = tuple(dict.fromkeys(d for name in registry.family_names()
                                for d in registry.get_family(name).noise_distributions))
    noise = config.model.noise_distribution
    require(noise in known, "model.noise_distribution", f"{noise!r} is not one of {known}.")
    readers = tuple(name for name in registry.family_names()
                    if noise in registry.get_family(name).noise_distributions)
    require(noise in family.noise_distributions, "model.noise_distribution",
             f"{noise!r} is supported by the {_join(readers)} famil"
             f"{'y' if len(readers) == 1 else 'ies'} only; family is {family.name!r}.")


def _join(names) -> str:
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def build_networks(config: ml_collections.ConfigDict):
    """(generator, discriminator) flax modules of the run's GAN family
    (`Family.build_networks`)."""
    family = registry.get_family(config.family)
    if family.build_networks is None:
        raise ConfigError(f"config.family: the {family.name} family has no generator and "
                          "discriminator pair.")
    return family.build_networks(config)


def build_generator_inputs(config: ml_collections.ConfigDict, *,
                           required: bool = False) -> GeneratorInputs | None:
    """What the run's generator takes (`jgan.families.sampling.GeneratorInputs`); None
    for a family that draws nothing from noise (`Family.generator_inputs` is None).

    Raises:
      ConfigError: `required` and the family draws nothing from noise.
    """
    family = registry.get_family(config.family)
    if family.generator_inputs is None:
        if required:
            raise ConfigError(f"config.family: the {family.name} family has no generator "
                              "to sample from (its runs' grids are in WORKDIR/samples).")
        return None
    return family.generator_inputs(config)


def build_sample_grids(config: ml_collections.ConfigDict, game: Game):
    """The family's own sample grids, `state -> {name: (images, columns)}`, or None for
    the generator's grid (`Family.sample_grids`)."""
    hook = registry.get_family(config.family).sample_grids
    return None if hook is None else hook(config, game)


def build_family_evaluation(config: ml_collections.ConfigDict, game: Game):
    """The family's own evaluation of a state, `state -> dict` for eval.json's
    "family_metrics", or None (`Family.evaluation`)."""
    hook = registry.get_family(config.family).evaluation
    return None if hook is None else hook(config, game)


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
    """The `Game` of a run: `config.family` picks the family, which builds it from the
    config; `game.ema_warmup` warms up the EMA of every team that keeps one;
    `config.precision` sets each network's compute dtype (`jgan.precision`).

    Raises:
      ConfigError: `precision.networks` names a network the game does not have.
    """
    game = registry.get_family(config.family).build_game(config)
    if config.game.ema_warmup:
        game = dataclasses.replace(game, teams={
            name: dataclasses.replace(team, ema_warmup=True) if team.ema_decay is not None
            else team for name, team in game.teams.items()})
    return precision.apply_config(config, game)


def build_stages(config: ml_collections.ConfigDict) -> tuple[Stage, ...]:
    """The stages of a run: the family's (`Family.build_stages`), or one stage named
    "train" of `build_game`'s game for `num_steps` steps with the run's update rule.

    Raises:
      ConfigError: the family's stages do not sum to `num_steps`.
    """
    family = registry.get_family(config.family)
    if family.build_stages is None:
        return (Stage(name="train", game=build_game(config), num_steps=max(config.num_steps, 1),
                      update_rule=config.game.update_rule,
                      repeats=family.step_repeats(config),
                      unroll_steps=config.game.unroll_steps,
                      micro_batches=config.game.micro_batches),)
    stages = tuple(dataclasses.replace(stage, micro_batches=config.game.micro_batches)
                   for stage in family.build_stages(config))
    _check_precision_names(config, stages)
    # Families build their stages' games themselves; the precision policy applies to
    # each, so that no family needs to know about it.
    stages = tuple(dataclasses.replace(stage, game=precision.apply_to_game(
        stage.game, precision.policies_from_config(config, stage.game.modules,
                                                   allow_unknown=True),
        precision.parse_loss_scale(config.precision.loss_scale))) for stage in stages)
    total = sum(stage.num_steps for stage in stages)
    require(total == config.num_steps, "num_steps",
            f"{config.num_steps} is not the {total} steps of the {family.name} family's "
            f"stages ({', '.join(f'{s.name}: {s.num_steps}' for s in stages)}).")
    return stages


def _check_precision_names(config: ml_collections.ConfigDict, stages) -> None:
    """`precision.networks` may name a network of any stage's game."""
    names = sorted({net for stage in stages for net in stage.game.modules})
    unknown = sorted(set(precision.parse_overrides(config.precision.networks)) - set(names))
    require(not unknown, "precision.networks",
            f"names {unknown}, which no stage's game has (their networks: {names}).")


def build_stage_step(stage: Stage, *, axis_name: str | None = None) -> StepFn:
    """`stage`'s step function (`make_step` with its update rule); not jitted."""
    return make_step(stage.game, update_rule=stage.update_rule, repeats=stage.repeats,
                     unroll_steps=stage.unroll_steps, axis_name=axis_name,
                     micro_batches=stage.micro_batches)


def build_step(config: ml_collections.ConfigDict, game: Game, *,
               axis_name: str | None = None) -> StepFn:
    """The run's step function: `game.update_rule`, the family's updates per step for
    each team (`Family.step_repeats`; a GAN's `game.d_steps`), `game.unroll_steps`;
    not jitted."""
    return make_step(game, update_rule=config.game.update_rule,
                     repeats=registry.get_family(config.family).step_repeats(config),
                     unroll_steps=config.game.unroll_steps, axis_name=axis_name,
                     micro_batches=config.game.micro_batches)
