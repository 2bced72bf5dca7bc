"""Style-based generators: StyleGAN (Karras et al. 2019, "A Style-Based Generator
Architecture for GANs") and StyleGAN2 (Karras et al. 2020, "Analyzing and Improving
the Image Quality of StyleGAN"), trained as stylegan2-ada-pytorch's `StyleGAN2Loss`
without its lazy schedule.

Networks (`stylegan.*`): the generator is `jgan.models.style_generator.StyleGenerator`
(mapping network z -> w at learning-rate multiplier 0.01, ws broadcast to every layer,
a "skip" synthesis network with per-pixel noise and StyleGAN2's weight
(de)modulation or StyleGAN's AdaIN, `stylegan.modulation`). The discriminator is
ProGAN's (`jgan.models.progressive.ProgressiveDiscriminator`) at its top level with
alpha = 1: equalized learning rate, leaky ReLU, 2x average-pool blocks down to 4x4
and minibatch standard deviation, as StyleGAN's discriminator (StyleGAN2's is the
same network with residual blocks). It takes any power of two, unlike the ResNet
discriminator (28, 32, 64 and 128 px only, spectral norm, no minibatch stddev).

Losses, with l_r = D(x), l_f = D(G(z)) (StyleGAN's non-saturating logistic loss):

  L_D = E softplus(l_f) + E softplus(-l_r) + r1_gamma / 2 E ||grad_x D(x)||^2   (R1 on reals)
  L_G = E softplus(-l_f)

R1 is computed every step (the reference's lazy regularization, every 16 minibatches
at 16 gamma, is a cost saving that changes nothing in expectation); there is no path
length regularization.

Small data sets: `stylegan.augment` (`jgan.families.discriminator_augmentation`)
augments every image D sees, reals and fakes in both losses (DiffAugment, or ADA's
tuned probability in `extras["augment"]`); R1 is then taken on the augmented reals, the
images D is trained on. Off by default.

Style mixing regularization (StyleGAN, section 3.1): every fake of both losses is
mixed, with probability `style_mixing_prob` per example, with the ws of a second z
from a crossover layer drawn uniformly in [1, num_ws) for that example
(`mixing_cutoffs`; the reference draws one crossover and one coin per minibatch, the
same distribution for each example). Noise is "random" in training, from the "noise"
rng stream (`rngs={"noise": key}`, drawn from the loss's key).

The moving average of w that truncation pulls toward is state, not a parameter: the
game keeps it in `GameState.extras["w_avg"]` (zeros at init, as the reference's buffer;
checkpointed and resumed with the rest of the state). The generator's loss updates it
with `update_w_avg` (decay `w_avg_decay`) from the batch's own ws, unmixed and
untruncated (the reference updates it in every mapping pass, the discriminator's
included; here only in G's), through `Networks.update_extras`. The EMA generator is
`game.ema_decay`'s; it shares the tracked w_avg (the reference copies the buffer).

Sampling: `StyleGenerator.__call__` defaults to random noise; the game's generator is
`StyleGAN`, the same module whose `__call__(z, w_avg=None, *, truncation_psi=1.0, ...)`
draws with the constant noise images, so `game.apply(state, "generator", z)` is a
deterministic, untruncated G(z). Truncation needs the state's w_avg, which a module
cannot read: the family's `GeneratorInputs` is `StyleInputs`, whose `generate(nets,
inputs)` (what the trainer's samples, the evaluation's metrics, standing statistics
and `jgan.sample` all call, with `nets` bound to the state) passes
`nets.extras["w_avg"]` and `stylegan.truncation_psi`. The family's sample grids
(`sample_grids`) add a truncation sweep (psi 1, 0.7, 0.5, 0 in columns, a z per row)
and a style-mixing grid (coarse styles from the rows' z, fine ones from the columns').
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan.core.game import Game, Networks
from jgan.errors import require
from jgan.families.adversarial import discriminator_metrics, gan_game, sample_latent
from jgan.families.discriminator_augmentation import (Augmenter, augment_section,
                                                      validate_section)
from jgan.families.network_names import DISCRIMINATOR, GENERATOR
from jgan.families.progan import AtLevel
from jgan.families.registry import Family, register
from jgan.families.sampling import GeneratorInputs
from jgan.models.progressive import ProgressiveDiscriminator
from jgan.models.style_generator import (MODULATIONS, StyleGenerator, mix_styles,
                                         update_w_avg)
from jgan.objectives import losses, penalties
from jgan.optimizers import build_optimizer

TEAMS = (DISCRIMINATOR, GENERATOR)
LOSS_TYPE = "non_saturating"
TRUNCATION_SWEEP = (1.0, 0.7, 0.5, 0.0)


def config_section() -> ml_collections.ConfigDict:
    """The family's section `config.stylegan`, at its defaults (CPU-sized widths; the
    papers' in the comments)."""
    c = ml_collections.ConfigDict()
    c.latent_dim = 128              # z; the papers: 512
    c.w_dim = 128                   # w; the papers: 512
    c.mapping_layers = 8            # the papers: 8 (stylegan2-ada's small-data configs: 2)
    c.mapping_lr_multiplier = 0.01  # the papers'
    # G: resolution r has min(channel_base // r, channel_max) channels (reference 32768, 512).
    c.channel_base = 2048
    c.channel_max = 128
    c.modulation = "demodulation"   # StyleGAN2's weight demodulation | "adain" (StyleGAN)
    c.style_mixing_prob = 0.9       # the papers'
    # R1 weight gamma (L_D += gamma / 2 E||grad D(x)||^2): 10 at 1024 px (StyleGAN2);
    # stylegan2-ada-pytorch's 32-px `cifar` config uses 0.01 (its heuristic for other
    # sizes: 0.0002 * resolution^2 / batch_size).
    c.r1_gamma = 0.01
    c.w_avg_decay = 0.995           # the reference's w_avg_beta
    c.truncation_psi = 1.0          # samples and evaluation: w_avg + psi (w - w_avg)
    # D (ProGAN's): level l at 2^(l+2) px has min(d_channel_base / 2^(l+1), d_channel_max)
    # channels, i.e. min(2 d_channel_base / r, d_channel_max) at r px: G's widths when
    # d_channel_base = channel_base / 2.
    c.d_channel_base = 1024
    c.d_channel_max = 128
    c.mbstd_group_size = 4          # minibatch standard deviation; 0 or 1: off
    c.augment = augment_section()   # DiffAugment / ADA for small data sets: off
    return c


def _power_of_two(r) -> bool:
    return isinstance(r, int) and r >= 4 and 2 ** int(round(math.log2(r))) == r


def _validate(config: ml_collections.ConfigDict) -> None:
    s, r = config.stylegan, config.data.resolution
    require(config.data.kind != "mixture", "data.kind",
            "the stylegan family generates images; 2-D mixtures have none.")
    require(_power_of_two(r), "data.resolution",
            f"the synthesis network doubles 4x4 up to a power of two, got {r}.")
    require(s.latent_dim >= 1 and s.w_dim >= 1, "stylegan.latent_dim",
            f"latent_dim ({s.latent_dim}) and w_dim ({s.w_dim}) must be >= 1.")
    require(s.mapping_layers >= 1, "stylegan.mapping_layers", f"must be >= 1, got "
            f"{s.mapping_layers}.")
    require(s.mapping_lr_multiplier > 0, "stylegan.mapping_lr_multiplier",
            f"must be > 0, got {s.mapping_lr_multiplier}.")
    require(s.channel_base >= 1 and s.channel_max >= 1
            and min(s.channel_base // r, s.channel_max) >= 1, "stylegan.channel_base",
            f"channel_base // resolution ({s.channel_base} // {r}) and channel_max "
            f"({s.channel_max}) must be >= 1.")
    require(s.d_channel_base >= 1 and s.d_channel_max >= 1
            and min(int(2 * s.d_channel_base / r), s.d_channel_max) >= 1,
            "stylegan.d_channel_base", f"2 d_channel_base / resolution (2 x "
            f"{s.d_channel_base} / {r}) and d_channel_max ({s.d_channel_max}) must be >= 1.")
    require(s.modulation in MODULATIONS, "stylegan.modulation",
            f"{s.modulation!r} is not one of {MODULATIONS}.")
    require(0.0 <= s.style_mixing_prob <= 1.0, "stylegan.style_mixing_prob",
            f"must be in [0, 1], got {s.style_mixing_prob}.")
    require(s.r1_gamma >= 0, "stylegan.r1_gamma", f"must be >= 0, got {s.r1_gamma}.")
    require(0.0 <= s.w_avg_decay <= 1.0, "stylegan.w_avg_decay",
            f"must be in [0, 1], got {s.w_avg_decay}.")
    require(math.isfinite(s.truncation_psi), "stylegan.truncation_psi",
            f"must be a finite number (1: no truncation), got {s.truncation_psi}.")
    group = min(s.mbstd_group_size, config.batch_size)
    require(s.mbstd_group_size <= 1 or config.batch_size % group == 0,
            "stylegan.mbstd_group_size",
            f"{s.mbstd_group_size} must divide batch_size {config.batch_size}.")
    validate_section(s.augment, "stylegan.augment")
    require(sorted(config.optimizer) == sorted(TEAMS), "optimizer",
            f"stylegan has teams {TEAMS}; the config's optimizer sections are "
            f"{sorted(config.optimizer)}.")
    require(config.game.loss_type == LOSS_TYPE, "game.loss_type",
            f"stylegan's loss is the non-saturating logistic loss: set {LOSS_TYPE!r}, "
            f"got {config.game.loss_type!r}.")
    require(config.game.gradient_penalty_weight == 0 and config.game.r1_gamma == 0,
            "game.r1_gamma", "stylegan's penalty is stylegan.r1_gamma; leave "
            "game.r1_gamma and game.gradient_penalty_weight at 0.")


class StyleGAN(StyleGenerator):
    """`StyleGenerator` as the family's generator (same parameters).

    `__call__(z, w_avg=None, *, truncation_psi=1.0, mix_z=None, mix_cutoff=None,
    noise_mode="const")`: images for sampling, with the constant noise images and
    truncation toward `w_avg` (needed when psi is not the Python number 1; a psi array
    broadcasts against ws `[B, num_ws, w_dim]`, e.g. `[B, 1, 1]` for one psi per sample).
    `training_mapping` and `training_forward` are the losses' paths.
    """

    def __call__(self, z: jax.Array, w_avg: jax.Array | None = None, *, truncation_psi=1.0,
                 mix_z: jax.Array | None = None, mix_cutoff=None,
                 noise_mode: str = "const") -> jax.Array:
        ws = self.mapping(z, truncation_psi=truncation_psi, w_avg=w_avg, mix_z=mix_z,
                          mix_cutoff=mix_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)

    def training_mapping(self, z: jax.Array, mix_z: jax.Array | None = None,
                         mix_cutoff=None) -> tuple[jax.Array, jax.Array]:
        """`(mixed ws, ws)`, both `[B, num_ws, w_dim]`, untruncated: z's ws with layers
        `>= mix_cutoff` (`[B]` or a scalar) taken from mix_z's (`mix_styles`), and z's
        own ws (for `update_w_avg`). Without mix_z, both are z's ws."""
        ws = self.mapping(z)
        if mix_z is None:
            return ws, ws
        return mix_styles(ws, self.mapping(mix_z), mix_cutoff), ws

    def training_forward(self, z: jax.Array, mix_z: jax.Array | None = None,
                         mix_cutoff=None) -> tuple[jax.Array, jax.Array]:
        """`(images of the mixed ws with random noise, z's own ws)`; random noise needs
        the "noise" rng."""
        mixed, ws = self.training_mapping(z, mix_z, mix_cutoff)
        return self.synthesis(mixed, noise_mode="random"), ws


def build_networks(config: ml_collections.ConfigDict) -> tuple[StyleGAN, AtLevel]:
    """(generator, discriminator): `StyleGAN` and ProGAN's discriminator at its top
    level (alpha = 1 by default: the full-resolution network)."""
    s, d = config.stylegan, config.data
    generator = StyleGAN(latent_dim=s.latent_dim, w_dim=s.w_dim, resolution=d.resolution,
                         img_channels=d.channels, channel_base=s.channel_base,
                         channel_max=s.channel_max, mapping_layers=s.mapping_layers,
                         mapping_lr_multiplier=s.mapping_lr_multiplier,
                         modulation=s.modulation)
    top = int(round(math.log2(d.resolution))) - 2
    discriminator = AtLevel(ProgressiveDiscriminator(
        resolution=d.resolution, channels=d.channels, channel_base=s.d_channel_base,
        max_channels=s.d_channel_max, mbstd_group_size=s.mbstd_group_size), top)
    return generator, discriminator


def mixing_cutoffs(rng: jax.Array, batch_size: int, num_ws: int, prob: float) -> jax.Array:
    """Style mixing's crossover layer per example, `[B]` int32: with probability `prob`
    uniform in [1, num_ws) (layers >= it take the second z's ws), else num_ws (no layer
    mixed)."""
    coin_rng, layer_rng = jax.random.split(rng)
    layer = jax.random.randint(layer_rng, (batch_size,), 1, num_ws, jnp.int32)
    mixed = jax.random.uniform(coin_rng, (batch_size,)) < prob
    return jnp.where(mixed, layer, jnp.int32(num_ws))


def draw_inputs(rng: jax.Array, batch_size: int, *, latent_dim: int, num_ws: int,
                mixing_prob: float) -> dict:
    """A loss's generator inputs: `z`, `mix_z` and `cutoff` (None without style mixing,
    `mixing_prob = 0`) and the `noise` key."""
    z_rng, mix_rng, cut_rng, noise_rng = jax.random.split(rng, 4)
    out = {"z": sample_latent(z_rng, batch_size, latent_dim), "mix_z": None,
           "cutoff": None, "noise": noise_rng}
    if mixing_prob > 0 and num_ws > 1:
        out["mix_z"] = sample_latent(mix_rng, batch_size, latent_dim)
        out["cutoff"] = mixing_cutoffs(cut_rng, batch_size, num_ws, mixing_prob)
    return out


def _fakes(nets: Networks, inputs: dict) -> tuple[jax.Array, jax.Array]:
    return nets(GENERATOR, inputs["z"], inputs["mix_z"], inputs["cutoff"],
                method="training_forward", rngs={"noise": inputs["noise"]})


def stylegan_game(config: ml_collections.ConfigDict) -> Game:
    """The two-team game of the module docstring (discriminator first); metrics
    `d_loss` (with R1), `d_r1`, D's mean outputs and accuracies, `g_loss`, `g_mixed`
    (the fraction of G's batch that was style-mixed) and `g_w_avg_norm`."""
    s = config.stylegan
    generator, discriminator = build_networks(config)
    # Read now: the losses must not see later changes to `config`.
    r1_gamma, w_avg_decay = float(s.r1_gamma), float(s.w_avg_decay)
    latent_dim, w_dim, num_ws = s.latent_dim, s.w_dim, generator.num_ws
    draw = functools.partial(draw_inputs, latent_dim=latent_dim, num_ws=num_ws,
                             mixing_prob=float(s.style_mixing_prob))
    augment = Augmenter(s.augment, batch_size=config.batch_size)

    def d_loss(nets: Networks, batch, rng):
        real = batch["image"]
        fake, _ = _fakes(nets, draw(rng, real.shape[0]))
        real = augment(nets, real, jax.random.fold_in(rng, 1))
        fake = augment(nets, fake, jax.random.fold_in(rng, 2))
        real_logits, fake_logits = nets(DISCRIMINATOR, real), nets(DISCRIMINATOR, fake)
        loss = losses.discriminator_loss(real_logits=real_logits, fake_logits=fake_logits,
                                         loss_type=LOSS_TYPE)
        metrics = {**discriminator_metrics(real_logits, fake_logits, loss_type=LOSS_TYPE),
                   **augment.observe(nets, real_logits)}
        if r1_gamma:
            r1 = penalties.r1_penalty(
                lambda x: nets(DISCRIMINATOR, x, update_collections=False), real=real)
            loss = loss + 0.5 * r1_gamma * r1
            metrics["d_r1"] = r1
        return loss, metrics

    def g_loss(nets: Networks, batch, rng):
        inputs = draw(rng, batch["image"].shape[0])
        fake, ws = _fakes(nets, inputs)
        fake = augment(nets, fake, jax.random.fold_in(rng, 1))
        w_avg = update_w_avg(nets.extras["w_avg"], ws, w_avg_decay)
        nets.update_extras(w_avg=w_avg)
        mixed = (jnp.zeros(()) if inputs["cutoff"] is None
                 else jnp.mean((inputs["cutoff"] < num_ws).astype(jnp.float32)))
        return (losses.generator_loss(fake_logits=nets(DISCRIMINATOR, fake),
                                      loss_type=LOSS_TYPE),
                {"g_mixed": mixed, "g_w_avg_norm": jnp.linalg.norm(w_avg)})

    def example_inputs(batch):
        image = jnp.zeros((1, *batch["image"].shape[1:]), jnp.float32)
        return {GENERATOR: (jnp.zeros((1, latent_dim), jnp.float32),),
                DISCRIMINATOR: (image,)}

    def init_extras(batch):
        del batch
        return {"w_avg": jnp.zeros((w_dim,), jnp.float32), **augment.init_extras()}

    game = gan_game(generator_team={GENERATOR: generator},
                    discriminator_team={DISCRIMINATOR: discriminator},
                    generator_loss=g_loss, discriminator_loss=d_loss,
                    generator_optimizer=build_optimizer(config.optimizer[GENERATOR],
                                                        config.num_steps),
                    discriminator_optimizer=build_optimizer(config.optimizer[DISCRIMINATOR],
                                                            config.num_steps),
                    example_inputs=example_inputs, ema_decay=config.game.ema_decay)
    return dataclasses.replace(game, init_extras=init_extras)


def _clip(x: jax.Array) -> jax.Array:
    # The synthesis network's output is linear (the reference's): clip to the data's range.
    return jnp.clip(x, -1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class StyleInputs(GeneratorInputs):
    """The family's `GeneratorInputs`: z alone, with `generate` drawing G(z) truncated
    toward the state's tracked w (`nets.extras["w_avg"]`) by `truncation_psi`, with the
    constant noise images. `dataclasses.replace(sampler, truncation_psi=psi)` draws at
    another psi."""
    truncation_psi: float = 1.0

    def generate(self, nets: Networks, inputs: dict) -> jax.Array:
        out = nets(self.network, inputs["z"], nets.extras["w_avg"],
                   truncation_psi=self.truncation_psi)
        return out if self.to_data is None else self.to_data(out)


def generator_inputs(config: ml_collections.ConfigDict) -> StyleInputs:
    return StyleInputs(family="stylegan", latent_dim=config.stylegan.latent_dim,
                       to_data=_clip, truncation_psi=float(config.stylegan.truncation_psi))


def grid_size(num_images: int) -> int:
    """Rows (and columns) of the style-mixing grid: about sqrt(num_sample_images), 2 to 6."""
    return int(np.clip(math.isqrt(max(num_images, 1)), 2, 6))


def sample_grids(config: ml_collections.ConfigDict, game: Game):
    """`state -> {"samples", "truncation", "style_mixing"}`, each `(images, columns)`,
    with the sampling weights (EMA where kept), the constant noise images and fixed
    latents (from `config.seed`):

    * samples: `num_sample_images` draws at `stylegan.truncation_psi`, a square grid;
    * truncation: a row per z (num_sample_images // 4 of them, 1 to 8), columns psi =
      1, 0.7, 0.5, 0 toward the tracked w_avg (psi 0 is the average w's image);
    * style_mixing: k x k mixes (k = `grid_size`) under a header row and column: the
      top row shows the column sources B_j, the left column the row sources A_i, and
      cell (i, j) takes the coarse layers' ws [0, num_ws // 2) from A_i and the fine
      ones from B_j (StyleGAN's figure 3), at `stylegan.truncation_psi`.
    """
    s, n = config.stylegan, config.num_sample_images
    use_ema = config.game.ema_decay is not None
    num_ws = game.modules[GENERATOR].num_ws
    sampler = generator_inputs(config)
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 7)
    keys = jax.random.split(key, 3)
    z = sample_latent(keys[0], n, s.latent_dim)
    rows = int(np.clip(n // len(TRUNCATION_SWEEP), 1, 8))
    sweep_z = jnp.repeat(sample_latent(keys[1], rows, s.latent_dim), len(TRUNCATION_SWEEP), 0)
    psi = jnp.tile(jnp.asarray(TRUNCATION_SWEEP, jnp.float32), rows)[:, None, None]
    k = grid_size(n)
    sources = sample_latent(keys[2], 2 * k, s.latent_dim)
    a, b = sources[:k], sources[k:]
    # A (k + 1) x (k + 1) layout: [corner, B_0 .. B_k-1] then [A_i, mix(A_i, B_j) ...].
    zs, mix_zs, cuts = [a[0]], [a[0]], [num_ws]
    for j in range(k):
        zs.append(b[j]), mix_zs.append(b[j]), cuts.append(num_ws)
    for i in range(k):
        zs.append(a[i]), mix_zs.append(a[i]), cuts.append(num_ws)
        for j in range(k):
            zs.append(a[i]), mix_zs.append(b[j]), cuts.append(num_ws // 2)
    grid_z, grid_mix_z = jnp.stack(zs), jnp.stack(mix_zs)
    cutoff = jnp.asarray(cuts, jnp.int32)

    @jax.jit
    def draw(state):
        nets = game.bind(state, train=False, rng=jax.random.PRNGKey(0), use_ema=use_ema)
        w_avg = nets.extras["w_avg"]
        samples = sampler.generate(nets, {"z": z})
        truncated = nets(GENERATOR, sweep_z, w_avg, truncation_psi=psi)
        mixed = nets(GENERATOR, grid_z, w_avg, truncation_psi=sampler.truncation_psi,
                     mix_z=grid_mix_z, mix_cutoff=cutoff)
        mixed = mixed.at[0].set(-1.0)   # the empty corner
        return samples, _clip(truncated), _clip(mixed)

    def grids(state):
        samples, truncated, mixed = draw(state)
        return {"samples": (samples, int(np.ceil(np.sqrt(n)))),
                "truncation": (truncated, len(TRUNCATION_SWEEP)),
                "style_mixing": (mixed, k + 1)}
    return grids


FAMILY = register(Family(
    name="stylegan", build_game=stylegan_game, generator_inputs=generator_inputs,
    section=config_section, validate=_validate, sample_grids=sample_grids,
    build_networks=build_networks, own_networks=True))
