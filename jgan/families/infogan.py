"""InfoGAN (Chen et al. 2016): latent codes the generator must keep recoverable.

G's input is [z, onehot(c_1), ..., onehot(c_n), c_cont]: noise z ~ N(0, I) (or
Uniform(-1, 1), as InfoGAN's released code draws it), categorical
codes c_i ~ Uniform{0..K_i - 1} and continuous codes c_cont ~ Uniform(-1, 1)^k. An
auxiliary network Q reads the discriminator's trunk features of G's output and predicts
the codes; both players' losses add lambda times the codes' negative log-likelihood
under Q (`jgan.objectives.auxiliary_losses.infogan_information_loss`, the bound L_I of eq. 4).

Teams: Q's head (network "q_head") is on the generator's team by default, the paper's
min over G and Q of V - lambda L_I, updated with G by the information loss; the trunk it
reads is the discriminator's, which the discriminator team updates with its GAN loss plus
the same information term (the original code's choice), so the shared features serve
both. `q_team="discriminator"` puts the head on the discriminator's team instead, as the
released code does (its Q variables live in D's scope and train with D's optimizer, at
D's learning rate, on D's loss + lambda L_I); G's loss still carries lambda L_I.

Augmented information term (`augmented_weight` > 0, not in the paper): Q must also
recover the categorical codes from T(G(z, c)), T a random style transformation
(`jgan.augmentations.StyleAugmentation`). Its NLL bounds I(c; T(x)) <= I(c; x) (data
processing) the way L_I bounds I(c; x), so it rewards only the information about c that
survives T: a code that splits one digit by slant or stroke width loses it, a code that
names the digit keeps it. On MNIST this removes the 4/9 merges the paper's objective
settles into on most seeds (docs/conditional.md).
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import ml_collections

from jgan.augmentations import StyleAugmentation
from jgan.core.game import Game, Networks
from jgan.errors import ConfigError, require
from jgan.families.adversarial import DISCRIMINATOR, GENERATOR, discriminator_metrics, gan_game
from jgan.families.network_names import Q_HEAD
from jgan.families.networks_from_config import unconditional_networks
from jgan.families.penalty_terms import PenaltySettings, add_penalties
from jgan.families.gan_config import gan_family
from jgan.families.registry import register
from jgan.families.sampling import GeneratorInputs
from jgan.objectives import auxiliary_losses, losses
NOISE_DISTRIBUTIONS = ("normal", "uniform")
Q_TEAMS = ("generator", "discriminator")


@dataclasses.dataclass(frozen=True)
class InfoGANCodes:
    """The generator's input layout.

    Attributes:
      noise_dim: size of the incompressible noise z (62 in InfoGAN's MNIST model).
      categorical: K_i of each categorical code ((10,) for MNIST's digit code).
      continuous: number of continuous codes, each Uniform(-1, 1) (2 for MNIST).
      noise: distribution of z, "normal" (N(0, I)) or "uniform" (Uniform(-1, 1)^d, the
        `Uniform(62)` of InfoGAN's released MNIST code: z's variance is 1/3, so the codes'
        one-hot and continuous inputs weigh relatively more in G's first layer).
    """
    noise_dim: int = 62
    categorical: tuple[int, ...] = (10,)
    continuous: int = 2
    noise: str = "normal"

    def __post_init__(self):
        if self.noise not in NOISE_DISTRIBUTIONS:
            raise ValueError(f"noise must be one of {NOISE_DISTRIBUTIONS}, got {self.noise!r}.")

    @property
    def input_dim(self) -> int:
        """Size of G's input: noise_dim + sum K_i + continuous."""
        return self.noise_dim + sum(self.categorical) + self.continuous

    def sample(self, rng: jax.Array, batch_size: int) -> dict[str, jax.Array]:
        """`{"noise": [B, noise_dim], "categorical": [B, n] int32, "continuous": [B, k]}`."""
        n_rng, c_rng, k_rng = jax.random.split(rng, 3)
        cat = [jax.random.randint(jax.random.fold_in(c_rng, i), (batch_size,), 0, k, jnp.int32)
               for i, k in enumerate(self.categorical)]
        return {"noise": self.sample_noise(n_rng, batch_size),
                "categorical": (jnp.stack(cat, axis=-1) if cat
                                else jnp.zeros((batch_size, 0), jnp.int32)),
                "continuous": jax.random.uniform(k_rng, (batch_size, self.continuous),
                                                 jnp.float32, -1.0, 1.0)}

    def sample_noise(self, rng: jax.Array, *batch_shape: int) -> jax.Array:
        """z of shape `[*batch_shape, noise_dim]` from the `noise` distribution."""
        shape = (*batch_shape, self.noise_dim)
        if self.noise == "uniform":
            return jax.random.uniform(rng, shape, jnp.float32, -1.0, 1.0)
        return jax.random.normal(rng, shape, jnp.float32)

    def generator_input(self, codes: dict[str, jax.Array]) -> jax.Array:
        """`[B, input_dim]`: [noise, onehot(c_1), ..., onehot(c_n), continuous]."""
        parts = [codes["noise"].astype(jnp.float32)]
        parts += [jax.nn.one_hot(codes["categorical"][:, i], k, dtype=jnp.float32)
                  for i, k in enumerate(self.categorical)]
        parts.append(codes["continuous"].astype(jnp.float32))
        return jnp.concatenate(parts, axis=-1)


class QHead(nn.Module):
    """Q's head on the discriminator's features: `h [B, F]` -> the codes' posterior.

    Returns `{"categorical": tuple of [B, K_i] logits, "continuous_mean": [B, k],
    "continuous_log_std": [B, k] or None}` (None: fixed unit variance, InfoGAN's choice).

    Attributes:
      codes: the code layout.
      hidden: width of the hidden layer (128 in InfoGAN's MNIST Q).
      learn_std: predict the continuous codes' log standard deviations too.
      batch_norm: batch-normalize the hidden layer, as InfoGAN's released MNIST Q does
        (FC128-BN-lReLU); its statistics are a mutable collection of Q's team.
      leaky_slope: the hidden layer's LeakyReLU slope for negative inputs (0.01 in the
        released code).
    """
    codes: InfoGANCodes
    hidden: int = 128
    learn_std: bool = False
    batch_norm: bool = False
    leaky_slope: float = 0.2

    @nn.compact
    def __call__(self, h: jax.Array, *, train: bool = False) -> dict:
        x = nn.Dense(self.hidden, use_bias=not self.batch_norm,
                     name="hidden")(h.reshape(h.shape[0], -1))
        if self.batch_norm:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             name="hidden_bn")(x)
        x = nn.leaky_relu(x, self.leaky_slope)
        cats = tuple(nn.Dense(k, name=f"categorical{i}")(x)
                     for i, k in enumerate(self.codes.categorical))
        k = self.codes.continuous
        mean = nn.Dense(k, name="continuous_mean")(x) if k else jnp.zeros((h.shape[0], 0))
        log_std = nn.Dense(k, name="continuous_log_std")(x) if (k and self.learn_std) else None
        return {"categorical": cats, "continuous_mean": mean, "continuous_log_std": log_std}


def information_loss(q: dict, codes: dict, *, continuous_weight: float) -> jax.Array:
    """The codes' negative log-likelihood under Q's output `q` (see `QHead`)."""
    return auxiliary_losses.infogan_information_loss(
        categorical_logits=q["categorical"], categorical_codes=codes["categorical"],
        continuous_mean=q["continuous_mean"], continuous_codes=codes["continuous"],
        continuous_log_std=q["continuous_log_std"], continuous_weight=continuous_weight)


def infogan_game(*, generator: nn.Module, discriminator: nn.Module, codes: InfoGANCodes,
                 generator_optimizer: optax.GradientTransformation,
                 discriminator_optimizer: optax.GradientTransformation,
                 loss_type: str = "non_saturating", info_weight: float = 1.0,
                 info_start_step: int = 0, info_ramp_steps: int = 0,
                 continuous_weight: float = 1.0, q_hidden: int = 128,
                 learn_std: bool = False, q_batch_norm: bool = False,
                 q_leaky_slope: float = 0.2, info_in_discriminator: bool = True,
                 q_team: str = "generator", gradient_penalty_weight: float = 0.0,
                 r1_gamma: float = 0.0,
                 augmentation: StyleAugmentation | None = None,
                 augmented_weight: float = 0.0,
                 ema_decay: float | None = None, data_key: str = "image") -> Game:
    """A `Game` for InfoGAN.

    Discriminator loss: `losses.discriminator_loss(loss_type)` + info_weight * L_info
      (if `info_in_discriminator`, reaching only D's trunk) + penalties.
    Generator loss: `losses.generator_loss(loss_type)` + info_weight * L_info, where
      L_info = `information_loss(Q(D_features(G(codes))), codes)`.
    With `augmented_weight` w > 0, L_info gains w * sum_i CE(Q_i(D_features(T(G(codes)))),
      c_i): the categorical codes' NLL on a randomly transformed copy T of each sample
      (`augmentation`), so that a code is worth the most when it names what the
      transformations keep (the digit), not what they change (slant, size, stroke).

    Args:
      generator: module `[B, codes.input_dim] -> x [B, ...]` (an unconditional one).
      discriminator: module `x -> logits [B]` that returns its trunk's features
        `[B, F]` when called with `features=True` and `(logits, features)` with
        `with_features=True` (every jgan discriminator).
      codes: the latent code layout.
      generator_optimizer: optax transformation of G and Q's head together.
      discriminator_optimizer: optax transformation of D.
      loss_type: one of `jgan.objectives.losses.LOSS_TYPES`.
      info_weight: lambda (1 for categorical codes in the paper).
      info_start_step, info_ramp_steps: lambda at step t (`GameState.step`) is
        info_weight * clip((t - start + 1) / ramp, 0, 1), or, with ramp 0, 0 before
        the start step and info_weight from it on: the codes count only once G draws
        digits from the GAN loss alone, and, with a ramp, come in gradually. Both 0
        (the paper) use info_weight from the first step.
      continuous_weight: extra weight on the continuous codes' term.
      q_hidden, learn_std, q_batch_norm, q_leaky_slope: see `QHead` (`hidden`,
        `learn_std`, `batch_norm`, `leaky_slope`).
      info_in_discriminator: add lambda * L_info to D's loss too (required when
        `q_team="discriminator"`: D's loss is then the only one that trains Q's head).
      q_team: the team that owns and updates Q's head, "generator" or "discriminator".
      gradient_penalty_weight, r1_gamma: see `penalty_terms.PenaltySettings`.
      augmentation: the random transformations T (default `StyleAugmentation()`), used
        only when `augmented_weight` > 0.
      augmented_weight: w above; 0 (the paper) leaves L_info as it is.
      ema_decay: decay of the generator team's EMA weights (G, and Q when it is on that
        team), or None.
      data_key: key of the real data in a batch.
    Returns:
      The game; Q's head is the network "q_head" of team `q_team`.
    """
    losses.check_loss_type(loss_type)
    if q_team not in Q_TEAMS:
        raise ValueError(f"q_team must be one of {Q_TEAMS}, got {q_team!r}.")
    if q_team == "discriminator" and not info_in_discriminator:
        raise ValueError("q_team='discriminator' needs info_in_discriminator=True: D's loss "
                         "is the only one that would train Q's head.")
    if not codes.categorical and not codes.continuous:
        raise ValueError("InfoGAN needs at least one categorical or continuous code.")
    if info_start_step < 0 or info_ramp_steps < 0:
        raise ValueError("info_start_step and info_ramp_steps must be >= 0, got "
                         f"{info_start_step} and {info_ramp_steps}.")
    if augmented_weight < 0:
        raise ValueError(f"augmented_weight must be >= 0, got {augmented_weight}.")
    if augmented_weight and not codes.categorical:
        raise ValueError("augmented_weight > 0 needs a categorical code: the augmented term "
                         "is the categorical codes' NLL on transformed samples.")
    augmentation = augmentation or StyleAugmentation()
    if any(k < 2 for k in codes.categorical):
        raise ValueError(f"categorical codes need >= 2 values, got {codes.categorical}.")
    penalty_settings = PenaltySettings(gradient_penalty_weight=gradient_penalty_weight,
                                       r1_gamma=r1_gamma)
    q_head = QHead(codes=codes, hidden=q_hidden, learn_std=learn_std, batch_norm=q_batch_norm,
                   leaky_slope=q_leaky_slope)

    def real_data(batch):
        if data_key not in batch:
            raise KeyError(f"The batch has no {data_key!r}; it has {sorted(batch)}.")
        return batch[data_key]

    def fakes(nets: Networks, rng, n):
        c = codes.sample(rng, n)
        return c, nets(GENERATOR, codes.generator_input(c))

    def judged_with_info(nets: Networks, fake, c, rng):
        # One pass of D gives both the logit and the trunk features Q reads, so D's
        # trunk is differentiated once for the GAN and information terms together.
        fake_logits, h = nets(DISCRIMINATOR, fake, with_features=True)
        q = nets(Q_HEAD, h)
        info = information_loss(q, c, continuous_weight=continuous_weight)
        metrics = {"info_loss": info}
        if augmented_weight:
            # The transformed copies must not move D's or Q's batch statistics: those
            # describe G's samples as D judges them.
            h_aug = nets(DISCRIMINATOR, augmentation(rng, fake), features=True,
                         update_collections=False)
            q_aug = nets(Q_HEAD, h_aug, update_collections=False)
            augmented = auxiliary_losses.infogan_information_loss(
                categorical_logits=q_aug["categorical"], categorical_codes=c["categorical"])
            info += augmented_weight * augmented
            metrics["augmented_info_loss"] = augmented
        if codes.categorical:
            metrics["q_code_acc"] = jnp.mean(
                (jnp.argmax(q["categorical"][0], -1) == c["categorical"][:, 0]).astype(jnp.float32))
        return fake_logits, info, metrics

    def weight_now(nets: Networks):
        if not info_start_step and not info_ramp_steps:
            return info_weight
        progress = (nets.step - info_start_step + 1).astype(jnp.float32) / max(info_ramp_steps, 1)
        return info_weight * jnp.clip(progress, 0.0, 1.0)

    def discriminator_loss(nets: Networks, batch, rng):
        real = real_data(batch)
        # The paper's game keeps its random streams; the augmented term draws a third.
        keys = jax.random.split(rng, 3 if augmented_weight else 2)
        fake_rng, gp_rng = keys[0], keys[1]
        augment_rng = keys[2] if augmented_weight else None
        c, fake = fakes(nets, fake_rng, real.shape[0])
        real_logits = nets(DISCRIMINATOR, real)
        fake_logits, info, info_metrics = judged_with_info(nets, fake, c, augment_rng)
        loss = losses.discriminator_loss(real_logits=real_logits, fake_logits=fake_logits,
                                         loss_type=loss_type)
        if info_in_discriminator:
            loss += weight_now(nets) * info
        metrics = {**discriminator_metrics(real_logits, fake_logits, loss_type=loss_type),
                   "d_info_loss": info_metrics["info_loss"]}
        critic = lambda x: nets(DISCRIMINATOR, x, update_collections=False)
        return add_penalties(loss, metrics, critic=critic, real=real, fake=fake, rng=gp_rng,
                             settings=penalty_settings)

    def generator_loss(nets: Networks, batch, rng):
        fake_rng, augment_rng = jax.random.split(rng) if augmented_weight else (rng, None)
        c, fake = fakes(nets, fake_rng, real_data(batch).shape[0])
        fake_logits, info, metrics = judged_with_info(nets, fake, c, augment_rng)
        loss = losses.generator_loss(fake_logits=fake_logits, loss_type=loss_type)
        return loss + weight_now(nets) * info, metrics

    def example_inputs(batch):
        x = jnp.zeros((1,) + real_data(batch).shape[1:], jnp.float32)
        features = jax.eval_shape(
            lambda x: discriminator.init_with_output(jax.random.PRNGKey(0), x, features=True)[0], x)
        return {GENERATOR: (jnp.zeros((1, codes.input_dim), jnp.float32),),
                DISCRIMINATOR: (x,), Q_HEAD: (jnp.zeros(features.shape, jnp.float32),)}

    generator_team, discriminator_team = {GENERATOR: generator}, {DISCRIMINATOR: discriminator}
    (generator_team if q_team == "generator" else discriminator_team)[Q_HEAD] = q_head
    return gan_game(generator_team=generator_team, discriminator_team=discriminator_team,
                    generator_loss=generator_loss, discriminator_loss=discriminator_loss,
                    generator_optimizer=generator_optimizer,
                    discriminator_optimizer=discriminator_optimizer,
                    example_inputs=example_inputs, ema_decay=ema_decay)


def config_section() -> ml_collections.ConfigDict:
    """The family's config section `config.infogan`, at its defaults (the paper's MNIST
    codes and game)."""
    c = ml_collections.ConfigDict()
    c.categorical_codes = (10,)     # values of each categorical code
    c.continuous_codes = 2          # Uniform(-1, 1) codes
    c.q_batch_norm = False          # batch norm in Q's hidden layer
    c.info_weight = 1.0             # lambda of the information loss
    c.info_start_step = 0           # lambda is 0 before this step,
    c.info_ramp_steps = 0           # then rises linearly over this many steps
    c.continuous_weight = 1.0       # extra weight of the continuous codes
    c.info_augmented_weight = 0.0   # weight of the categorical NLL on style-transformed
    #   samples; 0 is the paper's game. The transformations' ranges
    #   (jgan.augmentations.StyleAugmentation; read only when the weight is > 0):
    c.info_augmentation = ml_collections.ConfigDict(StyleAugmentation().ranges())
    c.info_in_discriminator = True  # lambda * L_info in D's loss too (its trunk)
    c.q_team = "generator"          # team of Q's head; "discriminator" as the released code
    return c


def codes_from_config(config: ml_collections.ConfigDict) -> InfoGANCodes:
    """InfoGAN's code layout: `model.latent_dim` noise drawn from
    `model.noise_distribution`, `infogan.categorical_codes`, `infogan.continuous_codes`."""
    m, i = config.model, config.infogan
    return InfoGANCodes(noise_dim=m.latent_dim, categorical=tuple(i.categorical_codes),
                        continuous=i.continuous_codes, noise=m.noise_distribution)


def info_augmentation_ranges(config: ml_collections.ConfigDict) -> dict:
    """`infogan.info_augmentation` as a dict of floats."""
    ranges = config.infogan.info_augmentation
    if isinstance(ranges, ml_collections.ConfigDict):
        ranges = ranges.to_dict()
    return {k: float(v) for k, v in ranges.items()}


def _validate(config: ml_collections.ConfigDict) -> None:
    i = config.infogan
    require(i.continuous_codes >= 0, "infogan.continuous_codes", "must be >= 0.")
    require(all(k >= 2 for k in i.categorical_codes), "infogan.categorical_codes",
            "every categorical code needs >= 2 values.")
    require(i.q_team in Q_TEAMS, "infogan.q_team", f"{i.q_team!r} is not one of {Q_TEAMS}.")
    require(i.q_team == "generator" or i.info_in_discriminator, "infogan.q_team",
            "'discriminator' needs infogan.info_in_discriminator=True (D's loss is the only "
            "one that would train Q's head).")
    require(i.info_start_step >= 0, "infogan.info_start_step",
            f"must be >= 0, got {i.info_start_step}.")
    require(i.info_start_step < config.num_steps, "infogan.info_start_step",
            f"{i.info_start_step} is not before num_steps={config.num_steps}: the codes "
            "would never count.")
    require(i.info_ramp_steps >= 0, "infogan.info_ramp_steps",
            f"must be >= 0, got {i.info_ramp_steps}.")
    _validate_augmentation(config)


def _validate_augmentation(config: ml_collections.ConfigDict) -> None:
    weight = config.infogan.info_augmented_weight
    require(weight >= 0, "infogan.info_augmented_weight", f"must be >= 0, got {weight}.")
    require(not weight or config.infogan.categorical_codes, "infogan.info_augmented_weight",
            "needs a categorical code (infogan.categorical_codes is empty).")
    ranges = info_augmentation_ranges(config)
    default = StyleAugmentation().ranges()
    require(set(ranges) == set(default), "infogan.info_augmentation",
            f"takes the keys {sorted(default)}, got {sorted(ranges)}.")
    require(weight > 0 or ranges == default, "infogan.info_augmentation",
            f"is read only when infogan.info_augmented_weight > 0; it is 0, so {ranges} "
            f"would be ignored (leave it at {default}).")
    try:
        StyleAugmentation(**ranges)
    except ValueError as e:
        raise ConfigError(f"config.infogan.info_augmentation: {e}") from None


def _game_from_config(config: ml_collections.ConfigDict, **common) -> Game:
    i = config.infogan
    return infogan_game(codes=codes_from_config(config), info_weight=i.info_weight,
                        info_start_step=i.info_start_step, info_ramp_steps=i.info_ramp_steps,
                        continuous_weight=i.continuous_weight,
                        info_in_discriminator=i.info_in_discriminator, q_team=i.q_team,
                        q_batch_norm=i.q_batch_norm,
                        q_leaky_slope=config.model.leaky_slope,
                        augmented_weight=i.info_augmented_weight,
                        augmentation=StyleAugmentation(**info_augmentation_ranges(config)),
                        **common)


FAMILY = register(gan_family(
    name="infogan", build_networks=unconditional_networks, build_game=_game_from_config,
    generator_inputs=lambda config: GeneratorInputs(
        family="infogan", latent_dim=config.model.latent_dim,
        num_classes=config.model.num_classes, codes=codes_from_config(config)),
    section=config_section, validate=_validate, noise_distributions=NOISE_DISTRIBUTIONS))
