"""Bidirectional GANs: BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017) and BigBiGAN
(Donahue & Simonyan 2019). An encoder E: x -> z joins the generator G: z -> x in one
team ("generator"); the discriminator ("discriminator") judges (x, z) pairs: the
encoder's (x, E(x)) against the generator's (G(z), z).

Networks (`config.bigan.*`):
  generator      `jgan.models.resnet.ResNetGenerator` (BigGAN-style: batch norm, spectral
                 norm with `generator_spectral_norm`), width `generator_width`.
  encoder        `jgan.models.residual_encoder.ResidualEncoder`, `encoder="revnet"` or
                 "resnet", stages `encoder_widths` of `encoder_blocks` blocks, an MLP head
                 `encoder_head_hidden`; `stochastic`: a Gaussian q(z | x) sampled with
                 the reparameterization trick, else z = E(x). It reads x resized
                 (bilinear) to `encoder_resolution` (0: the data's), which may be higher
                 than G's output.
  discriminator  `jgan.models.pair_discriminator.PairDiscriminator`: F (ResNet trunk of
                 `discriminator_width`), H (`latent_hidden`), J (`joint_hidden`), unary
                 heads theta_x / theta_z built when `unary_x` / `unary_z` is on.

Losses (`jgan.objectives.bidirectional`): with a unary term on, BigBiGAN's hinge losses
over the scores used (`game.loss_type` must be "hinge"); with both off, BiGAN's losses
in the game `game.loss_type`. Latents z ~ p(z): N(0, I) or U(-1, 1)^L
(`bigan.prior`). Both sides of a step's pairs go through D in one call. The encoder's
updates are its team optimizer's times `encoder_lr_multiplier` (for Adam, exactly a
separate learning rate). Alternating updates take `game.d_steps` discriminator updates
per step, each on its own slice of the batch (BigGAN's 2 D steps per G step).

Logged: `d_loss`, `g_loss` (the EG loss), the mean scores `score_<term>_encoder` /
`score_<term>_generator` of the terms used. Samples: G(z), and held-out images above
their reconstructions G(E(x)) (E's mean for a stochastic encoder). eval.json's
"family_metrics": the reconstructions' mean squared error per pixel.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgan.core.game import Game, Networks, Team
from jgan.errors import require
from jgan.families import encoder_decoder as ed
from jgan.families import representation
from jgan.families.network_names import DISCRIMINATOR, GENERATOR
from jgan.families.gan_config import gan_repeats, optimizer_updates_per_step
from jgan.families.registry import Family, register
from jgan.families.sampling import GeneratorInputs
from jgan.models.pair_discriminator import PairDiscriminator
from jgan.models.residual_encoder import BLOCKS, ResidualEncoder
from jgan.models.resnet import SUPPORTED_RESOLUTIONS, ResNetGenerator
from jgan.objectives import bidirectional
from jgan.optimizers import build_optimizer

FAMILY_NAME = "bigan"
ENCODER = "encoder"
PRIORS = ("gaussian", "uniform")
TERMS = ("x", "z", "xz")


def config_section() -> ml_collections.ConfigDict:
    """The family's section `config.bigan`, at its defaults (a small BigBiGAN)."""
    c = ml_collections.ConfigDict()
    c.latent_dim = 64
    c.prior = "gaussian"                 # gaussian | uniform (U(-1, 1))
    c.unary_x = True                     # BigBiGAN's unary terms; both off: BiGAN
    c.unary_z = True
    c.generator_width = 128
    c.generator_spectral_norm = True
    c.encoder = "revnet"                 # revnet | resnet
    c.encoder_widths = (32, 64, 128)
    c.encoder_blocks = 2                 # blocks per stage
    c.encoder_head_hidden = (256,)
    c.stochastic = True                  # reparameterized Gaussian encoder; False: z = E(x)
    c.encoder_resolution = 0             # 0: the data's resolution
    c.encoder_lr_multiplier = 1.0
    c.discriminator_width = 64
    c.latent_hidden = (256, 256)
    c.joint_hidden = (256, 256)
    c.eval_examples = 0                  # held-out images reconstructed in eval (0: all)
    c.eval_batch_size = 500
    return c


def _validate(config: ml_collections.ConfigDict) -> None:
    b, g = config.bigan, config.game
    require(config.data.kind == "tfds", "data.kind",
            f"the bigan family takes images, got {config.data.kind!r}.")
    require(config.data.resolution in SUPPORTED_RESOLUTIONS, "data.resolution",
            f"the ResNet generator makes {SUPPORTED_RESOLUTIONS} px, got {config.data.resolution}.")
    require(b.prior in PRIORS, "bigan.prior", f"{b.prior!r} is not one of {PRIORS}.")
    require(b.encoder in BLOCKS, "bigan.encoder", f"{b.encoder!r} is not one of {BLOCKS}.")
    require(b.latent_dim >= 1, "bigan.latent_dim", "must be >= 1.")
    scale = 2 ** (len(b.encoder_widths) - 1)
    resolution = b.encoder_resolution or config.data.resolution
    require(resolution % scale == 0, "bigan.encoder_resolution",
            f"the encoder's {len(b.encoder_widths)} stages halve it {len(b.encoder_widths) - 1} "
            f"times: needs a multiple of {scale}, got {resolution}.")
    require(b.encoder != "revnet" or all(w % 2 == 0 for w in b.encoder_widths),
            "bigan.encoder_widths", f"reversible blocks split channels in halves: needs even "
            f"widths, got {tuple(b.encoder_widths)}.")
    require(b.encoder_lr_multiplier > 0, "bigan.encoder_lr_multiplier", "must be > 0.")
    require(b.eval_examples >= 0 and b.eval_batch_size >= 1, "bigan.eval_examples",
            "eval_examples must be >= 0 (0: all) and eval_batch_size >= 1.")
    if b.unary_x or b.unary_z:
        require(g.loss_type == "hinge", "game.loss_type",
                f"BigBiGAN's unary terms come with its hinge losses: needs 'hinge' (or "
                f"bigan.unary_x = bigan.unary_z = False for BiGAN), got {g.loss_type!r}.")
    else:
        require(g.loss_type in bidirectional.BIGAN_LOSS_TYPES, "game.loss_type",
                f"BiGAN swaps the encoder's labels by negating scores: needs one of "
                f"{bidirectional.BIGAN_LOSS_TYPES}, got {g.loss_type!r}.")
    require(g.update_rule in ("alternating", "simultaneous"), "game.update_rule",
            f"the bigan family takes alternating or simultaneous updates, got {g.update_rule!r}.")
    require(g.gradient_penalty_weight == 0 and g.r1_gamma == 0, "game",
            "gradient_penalty_weight and r1_gamma act on a discriminator of images alone; "
            "the bigan family's judges pairs: leave them at 0.")
    wrong = sorted(set(config.optimizer) ^ {GENERATOR, DISCRIMINATOR})
    require(not wrong, f"optimizer.{wrong[0] if wrong else GENERATOR}",
            "the bigan family has teams 'discriminator' and 'generator' (G and E).")


def draw_prior(key: jax.Array, n: int, latent_dim: int, prior: str) -> jax.Array:
    """z `[n, latent_dim]` ~ N(0, I) ("gaussian") or U(-1, 1)^L ("uniform")."""
    if prior == "uniform":
        return jax.random.uniform(key, (n, latent_dim), minval=-1.0, maxval=1.0)
    return jax.random.normal(key, (n, latent_dim))


def networks(config: ml_collections.ConfigDict) -> dict:
    """`{"generator", "encoder", "discriminator"}` modules from `config.bigan`."""
    b, d = config.bigan, config.data
    return {
        GENERATOR: ResNetGenerator(width=b.generator_width, latent_dim=b.latent_dim,
                                   resolution=d.resolution, channels=d.channels,
                                   spectral_norm=b.generator_spectral_norm),
        ENCODER: ResidualEncoder(latent_dim=b.latent_dim, widths=tuple(b.encoder_widths),
                                 blocks_per_stage=b.encoder_blocks, block=b.encoder,
                                 stochastic=b.stochastic,
                                 head_hidden=tuple(b.encoder_head_hidden)),
        DISCRIMINATOR: PairDiscriminator(width=b.discriminator_width,
                                         latent_hidden=tuple(b.latent_hidden),
                                         joint_hidden=tuple(b.joint_hidden),
                                         unary_x=b.unary_x, unary_z=b.unary_z),
    }


def encoder_input(x: jax.Array, resolution: int) -> jax.Array:
    """Images `[B, R, R, C]` as the encoder reads them: resized (bilinear) to
    `resolution` when it is not 0 or R."""
    if not resolution or resolution == x.shape[1]:
        return x
    return jax.image.resize(x, (x.shape[0], resolution, resolution, x.shape[3]), "bilinear")


def encode(nets: Networks, x: jax.Array, key: jax.Array | None, config) -> jax.Array:
    """E(x) `[B, L]`: a reparameterized draw from q(z | x) for a stochastic encoder
    (its mean when `key` is None), the code itself for a deterministic one."""
    out = nets(ENCODER, encoder_input(x, config.bigan.encoder_resolution))
    if not config.bigan.stochastic:
        return out
    mean, log_var = out
    if key is None:
        return mean
    return mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)


def pair_scores(nets: Networks, batch, rng: jax.Array, config):
    """`(encoder pairs' scores, generator pairs' scores)`, `PairScores` of `[B]` each,
    from one discriminator call on [(x, E(x)); (G(z), z)]."""
    x = batch["image"]
    z_key, e_key = jax.random.split(rng)
    z = draw_prior(z_key, x.shape[0], config.bigan.latent_dim, config.bigan.prior)
    images = jnp.concatenate([x, nets(GENERATOR, z)])
    latents = jnp.concatenate([encode(nets, x, e_key, config), z])
    scores = nets(DISCRIMINATOR, images, latents)
    n = x.shape[0]
    return (bidirectional.PairScores(*(s[:n] for s in scores)),
            bidirectional.PairScores(*(s[n:] for s in scores)))


def _score_metrics(encoder_scores, generator_scores, used) -> dict:
    return {f"score_{t}_{side}": jnp.mean(getattr(scores, t))
            for t in used for side, scores in (("encoder", encoder_scores),
                                               ("generator", generator_scores))}


def bigan_game(config: ml_collections.ConfigDict) -> Game:
    """The two-team game of the module docstring."""
    b, loss_type = config.bigan, config.game.loss_type
    nets_ = networks(config)
    big = b.unary_x or b.unary_z
    used = [t for t, on in zip(TERMS, (b.unary_x, b.unary_z, True)) if on]
    unary = dict(unary_x=b.unary_x, unary_z=b.unary_z)

    def discriminator_loss(nets: Networks, batch, rng):
        e, g = pair_scores(nets, batch, rng, config)
        if big:
            loss = bidirectional.bigbigan_discriminator_loss(encoder_scores=e,
                                                             generator_scores=g, **unary)
        else:
            loss = bidirectional.bigan_discriminator_loss(
                encoder_logits=e.xz, generator_logits=g.xz, loss_type=loss_type)
        return loss, _score_metrics(e, g, used)

    def encoder_generator_loss(nets: Networks, batch, rng):
        e, g = pair_scores(nets, batch, rng, config)
        if big:
            return bidirectional.bigbigan_encoder_generator_loss(
                encoder_scores=e, generator_scores=g, **unary), {}
        return bidirectional.bigan_encoder_generator_loss(
            encoder_logits=e.xz, generator_logits=g.xz, loss_type=loss_type), {}

    def example_inputs(batch):
        x = batch["image"][:1]
        z = jnp.zeros((1, b.latent_dim), jnp.float32)
        return {GENERATOR: (z,), ENCODER: (encoder_input(x, b.encoder_resolution),),
                DISCRIMINATOR: (x, z)}

    eg_updates, d_updates = optimizer_updates_per_step(config.game)
    eg_optimizer = build_optimizer(config.optimizer[GENERATOR], config.num_steps * eg_updates)
    if b.encoder_lr_multiplier != 1.0:
        eg_optimizer = optax.chain(eg_optimizer,
                                   scale_network_updates(ENCODER, b.encoder_lr_multiplier))
    return Game(teams={
        DISCRIMINATOR: Team(networks={DISCRIMINATOR: nets_[DISCRIMINATOR]},
                            loss=discriminator_loss, metrics_prefix="d",
                            optimizer=build_optimizer(config.optimizer[DISCRIMINATOR],
                                                      config.num_steps * d_updates)),
        GENERATOR: Team(networks={GENERATOR: nets_[GENERATOR], ENCODER: nets_[ENCODER]},
                        loss=encoder_generator_loss, optimizer=eg_optimizer,
                        ema_decay=config.game.ema_decay, metrics_prefix="g"),
    }, example_inputs=example_inputs)


def scale_network_updates(network: str, factor: float) -> optax.GradientTransformation:
    """Multiplies the updates of one network of a team (`{network: params}`) by `factor`:
    after Adam, a learning rate `factor` times the team's for that network."""
    def scale(updates, params=None):
        del params
        return {**updates, network: jax.tree.map(lambda u: factor * u, updates[network])}
    return optax.stateless(scale)


def prior_inputs(config: ml_collections.ConfigDict) -> GeneratorInputs:
    """G's inputs: z from `bigan.prior`."""
    b = config.bigan
    draw = None if b.prior == "gaussian" else (
        lambda key, n: draw_prior(key, n, b.latent_dim, b.prior))
    return GeneratorInputs(family=FAMILY_NAME, latent_dim=b.latent_dim, draw_latent=draw)


def _reconstruct_fn(config, game: Game):
    """Jitted `(state, x) -> G(E(x))` with the sampling weights (EMA where kept), E's mean."""
    use_ema = config.game.ema_decay is not None

    @jax.jit
    def reconstruct(state, x):
        nets = game.bind(state, train=False, rng=jax.random.key(0), use_ema=use_ema)
        return {"images": nets(GENERATOR, encode(nets, x, None, config))}
    return reconstruct


def sample_grids(config: ml_collections.ConfigDict, game: Game):
    """`state -> {"samples", "reconstructions"}`: G(z) (`config.num_sample_images`, the
    key of every run's grid), and held-out images above G(E(x))."""
    sampler = prior_inputs(config)
    generate = sampler.jitted_generate(game, use_ema=config.game.ema_decay is not None)
    inputs, sample_columns = sampler.grid(jax.random.fold_in(jax.random.PRNGKey(config.seed), 2),
                                          config.num_sample_images)
    num, columns = ed.grid_sizes(config.num_sample_images)
    originals = ed.held_out_examples(config, num)
    reconstruct = _reconstruct_fn(config, game)

    def grids(state):
        samples = np.asarray(generate(state, inputs, jax.random.key(0)))
        images = np.asarray(reconstruct(state, jnp.asarray(originals))["images"])
        return {"samples": (samples, sample_columns),
                "reconstructions": ed.reconstruction_grid(originals, images, columns)}
    return grids


def evaluate_reconstructions(config: ml_collections.ConfigDict, game: Game):
    """`state -> dict`: `reconstruction_mse`, the mean squared error per pixel of G(E(x))
    (E's mean) over `bigan.eval_examples` held-out images, in [-1, 1] units; the linear
    probes and k-NN of E's average-pooled features, the classifier's label agreement
    and the reference metrics of G(E(x)) (`jgan.families.representation`)."""
    b = config.bigan
    reconstruct = _reconstruct_fn(config, game)
    represent = representation.for_game(
        config, game, batch_size=b.eval_batch_size,
        prepare=lambda x: encoder_input(x, b.encoder_resolution))

    def evaluate(state):
        x, labels = ed.labelled_examples(config, b.eval_examples,
                                         split=config.eval.reference_split)
        out = ed.batched(lambda i, chunk: reconstruct(state, chunk), x,
                         min(b.eval_batch_size, len(x)))
        mse = np.mean(np.square(out["images"].astype(np.float64) - x).reshape(len(x), -1), 1)
        return {"reconstruction_mse": float(np.mean(mse)), "num_examples": int(len(x)),
                "split": config.eval.reference_split,
                "losses": "bigbigan" if (b.unary_x or b.unary_z) else f"bigan ({config.game.loss_type})",
                "protocol": ("G(E(x)) with E's mean (stochastic encoders) for the first "
                             "num_examples images of the split; squared error per pixel in "
                             "[-1, 1] units."),
                **represent(state, x, labels, out["images"])}
    return evaluate


FAMILY = register(Family(
    name=FAMILY_NAME, build_game=bigan_game, generator_inputs=prior_inputs,
    section=config_section, validate=_validate, step_repeats=gan_repeats,
    sample_grids=sample_grids,
    evaluation=evaluate_reconstructions))
