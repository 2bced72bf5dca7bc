"""VAE-GAN (Larsen, Sonderby, Larochelle and Winther 2016, "Autoencoding beyond pixels
using a learned similarity metric"): a VAE whose reconstruction error is measured in a
hidden layer of a GAN discriminator, and whose decoder is also the GAN's generator.

Networks: the VAE's encoder q(z | x) = N(mean, diag exp(log_var)) and decoder
(`config.vaegan`'s network keys, as the VAE's; images tanh(decoder(z))), and a DCGAN
discriminator (`discriminator_width`, `discriminator_normalization`) whose flattened
convolutional trunk is Dis_l. With x a batch, z ~ q(z | x) (reparameterized),
x~ = Dec(z) its reconstructions and x_p = Dec(z_p), z_p ~ N(0, I), the paper's terms
(Sec. 2, Algorithm 1), each a mean over the batch:

  L_prior  = KL(q(z | x) || N(0, I))
  L_llike  = 1/2 ||Dis_l(x) - Dis_l(x~)||^2   (-log N(Dis_l(x); Dis_l(x~), I) + const)
  L_GAN    = log D(x) + log(1 - D(x~)) + log(1 - D(x_p)),   D = sigmoid(logit)

and three teams, each minimizing its own loss (the paper's three updates):

  encoder        L_prior + L_llike
  decoder        gamma L_llike - L_GAN          (`vaegan.gamma`); with
                 game.loss_type="non_saturating" the decoder's GAN term is
                 -log D(x~) - log D(x_p) instead of log(1 - D(.)), as is usual
  discriminator  -L_GAN

D sees x, x~ and x_p in one call (3B examples); the likelihood reads the same pass.
The paper computes all three gradients at one point: game.update_rule="simultaneous"
(the config's), or "alternating" in the teams' order.

Logged: `encoder_loss`, `decoder_loss`, `discriminator_loss`, `kl`, `feature_llike`
(L_llike), `gan_value` (L_GAN). Grids: prior samples, held-out images above their
reconstructions (posterior means), and interpolations between the codes of held-out
pairs. eval.json: the reconstructions' squared error per pixel.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan.core.game import Game, Networks, Team
from jgan.errors import require
from jgan.families import encoder_decoder as ed
from jgan.families import representation
from jgan.families.network_names import DISCRIMINATOR
from jgan.families.registry import Family, register
from jgan.families.sampling import GeneratorInputs
from jgan.models.dcgan import DCGANDiscriminator
from jgan.objectives.variational import gaussian_kl, reparameterize
from jgan.optimizers import build_optimizer

FAMILY_NAME = "vaegan"
TEAMS = (ed.ENCODER, ed.DECODER, DISCRIMINATOR)
GAN_LOSS_TYPES = ("minimax", "non_saturating")


def config_section() -> ml_collections.ConfigDict:
    """The family's section `config.vaegan`, at its defaults."""
    c = ml_collections.ConfigDict()
    c.gamma = 1.0                          # weight of L_llike in the decoder's loss
    c.discriminator_width = 32
    c.discriminator_normalization = "layer"  # layer | none | batch (see the module doc)
    c.interpolation_steps = 8
    ed.add_network_keys(c)
    return c


def _validate(config: ml_collections.ConfigDict) -> None:
    v = config.vaegan
    ed.validate_networks(config, FAMILY_NAME, ("tfds",), teams=TEAMS)
    require(v.network != "mlp", "vaegan.network",
            "the decoder makes images for a convolutional discriminator: needs conv, resnet "
            "or revnet (the encoder; the decoder is conv).")
    require(v.gamma >= 0, "vaegan.gamma", f"must be >= 0, got {v.gamma}.")
    require(v.discriminator_normalization in ("layer", "none", "batch"),
            "vaegan.discriminator_normalization",
            f"{v.discriminator_normalization!r} is not one of layer, none, batch.")
    require(v.interpolation_steps >= 2, "vaegan.interpolation_steps", "must be >= 2.")
    require(config.game.loss_type in GAN_LOSS_TYPES, "game.loss_type",
            f"VAE-GAN's L_GAN is a log-likelihood game: needs one of {GAN_LOSS_TYPES}, got "
            f"{config.game.loss_type!r}.")
    require(config.game.update_rule in ("alternating", "simultaneous"), "game.update_rule",
            f"the vaegan family takes alternating or simultaneous updates, got "
            f"{config.game.update_rule!r}.")


def vaegan_terms(nets: Networks, x: jax.Array, rng: jax.Array) -> dict:
    """The paper's terms for images x `[B, R, R, C]` (module docstring), each a scalar:
    `kl`, `llike`, and the logits `real`, `reconstructed`, `prior` `[B]`."""
    z_key, prior_key = jax.random.split(rng)
    mean, log_var = nets(ed.ENCODER, x)
    z = reparameterize(z_key, mean=mean, log_var=log_var)
    z_p = jax.random.normal(prior_key, mean.shape)
    n = x.shape[0]
    decoded = jnp.tanh(ed.decode(nets, jnp.concatenate([z, z_p]), x.shape[1:]))
    logits, features = nets(DISCRIMINATOR, jnp.concatenate([x, decoded]), with_features=True)
    features = features.reshape(3 * n, -1)
    llike = 0.5 * jnp.mean(jnp.sum(jnp.square(features[:n] - features[n:2 * n]), axis=-1))
    return {"kl": jnp.mean(gaussian_kl(mean=mean, log_var=log_var)), "llike": llike,
            "real": logits[:n], "reconstructed": logits[n:2 * n], "prior": logits[2 * n:]}


def gan_value(terms: dict) -> jax.Array:
    """L_GAN = mean log D(x) + mean log(1 - D(x~)) + mean log(1 - D(x_p))."""
    return (jnp.mean(jax.nn.log_sigmoid(terms["real"]))
            + jnp.mean(jax.nn.log_sigmoid(-terms["reconstructed"]))
            + jnp.mean(jax.nn.log_sigmoid(-terms["prior"])))


def decoder_gan_term(terms: dict, loss_type: str) -> jax.Array:
    """The decoder's GAN term: -L_GAN's fake part, log(1 - D(x~)) + log(1 - D(x_p))
    (minimax), or -log D(x~) - log D(x_p) (non_saturating)."""
    if loss_type == "minimax":
        return (jnp.mean(jax.nn.log_sigmoid(-terms["reconstructed"]))
                + jnp.mean(jax.nn.log_sigmoid(-terms["prior"])))
    return -(jnp.mean(jax.nn.log_sigmoid(terms["reconstructed"]))
             + jnp.mean(jax.nn.log_sigmoid(terms["prior"])))


def vaegan_game(config: ml_collections.ConfigDict) -> Game:
    """The three-team game of the module docstring."""
    v, loss_type = config.vaegan, config.game.loss_type
    encoder, decoder = ed.build_networks(config, FAMILY_NAME, variational=True)
    discriminator = DCGANDiscriminator(resolution=config.data.resolution,
                                       width=v.discriminator_width,
                                       normalization=v.discriminator_normalization)

    def metrics(terms):
        return {"kl": terms["kl"], "feature_llike": terms["llike"], "gan_value": gan_value(terms)}

    def encoder_loss(nets, batch, rng):
        terms = vaegan_terms(nets, batch["image"], rng)
        return terms["kl"] + terms["llike"], metrics(terms)

    def decoder_loss(nets, batch, rng):
        terms = vaegan_terms(nets, batch["image"], rng)
        return v.gamma * terms["llike"] + decoder_gan_term(terms, loss_type), {}

    def discriminator_loss(nets, batch, rng):
        return -gan_value(vaegan_terms(nets, batch["image"], rng)), {}

    def example_inputs(batch):
        x = batch["image"][:1]
        return {ed.ENCODER: (x,), ed.DECODER: (jnp.zeros((1, v.latent_dim), jnp.float32),),
                DISCRIMINATOR: (x,)}

    def team(name, network, loss, ema=False):
        return Team(networks={name: network}, loss=loss,
                    optimizer=build_optimizer(config.optimizer[name], config.num_steps),
                    ema_decay=config.game.ema_decay if ema else None)

    return Game(teams={ed.ENCODER: team(ed.ENCODER, encoder, encoder_loss, ema=True),
                       ed.DECODER: team(ed.DECODER, decoder, decoder_loss, ema=True),
                       DISCRIMINATOR: team(DISCRIMINATOR, discriminator, discriminator_loss)},
                example_inputs=example_inputs)


def prior_inputs(config: ml_collections.ConfigDict) -> GeneratorInputs:
    """The decoder as the run's generator: z ~ N(0, I) -> tanh(Dec(z))."""
    shape = ed.data_shape(config)
    return GeneratorInputs(family=FAMILY_NAME, latent_dim=config.vaegan.latent_dim,
                           network=ed.DECODER,
                           to_data=lambda out: jnp.tanh(out.reshape((out.shape[0],) + shape)))


def _codes_fn(config, game: Game):
    """Jitted `(state, x) -> {"mean"}`: posterior means (sampling weights)."""
    use_ema = config.game.ema_decay is not None

    @jax.jit
    def codes(state, x):
        nets = game.bind(state, train=False, rng=jax.random.key(0), use_ema=use_ema)
        return {"mean": nets(ed.ENCODER, x)[0]}
    return codes


def sample_grids(config: ml_collections.ConfigDict, game: Game):
    """`state -> {"samples", "reconstructions", "interpolations"}`: decoded prior draws;
    held-out images above Dec(mean); rows of `interpolation_steps` decodings on the
    straight line between the posterior means of held-out images 2i and 2i + 1."""
    v = config.vaegan
    sampler = prior_inputs(config)
    use_ema = config.game.ema_decay is not None
    generate = sampler.jitted_generate(game, use_ema=use_ema)
    inputs, sample_columns = sampler.grid(
        jax.random.fold_in(jax.random.PRNGKey(config.seed), 2), config.num_sample_images)
    num, columns = ed.grid_sizes(config.num_sample_images)
    rows = max(1, columns // 2)
    originals = ed.held_out_examples(config, max(num, 2 * rows))
    codes = _codes_fn(config, game)
    t = jnp.linspace(0.0, 1.0, v.interpolation_steps)[None, :, None]

    def grids(state):
        mean = codes(state, jnp.asarray(originals))["mean"]
        ends = mean[:2 * rows].reshape(rows, 2, -1)
        path = (ends[:, :1] + t * (ends[:, 1:] - ends[:, :1])).reshape(-1, mean.shape[-1])
        decoded = np.asarray(generate(state, {"z": jnp.concatenate([mean[:num], path])},
                                      jax.random.key(0)))
        return {"samples": (np.asarray(generate(state, inputs, jax.random.key(0))),
                            sample_columns),
                "reconstructions": ed.reconstruction_grid(originals[:num], decoded[:num],
                                                          columns),
                "interpolations": (decoded[num:], v.interpolation_steps)}
    return grids


def evaluate_reconstructions(config: ml_collections.ConfigDict, game: Game):
    """`state -> dict`: `reconstruction_mse`, squared error per pixel of Dec(mean) over
    `vaegan.eval_examples` held-out images (0: the split), in [-1, 1] units; the
    encoder's probe and the reconstructions' scores (`jgan.families.representation`)."""
    v = config.vaegan
    codes = _codes_fn(config, game)
    use_ema = config.game.ema_decay is not None
    generate = prior_inputs(config).jitted_generate(game, use_ema=use_ema)
    represent = representation.for_game(config, game, batch_size=v.eval_batch_size)

    def evaluate(state):
        x, labels = ed.labelled_examples(config, v.eval_examples,
                                         split=config.eval.reference_split)
        out = ed.batched(lambda i, chunk: {"images": generate(
            state, {"z": codes(state, chunk)["mean"]}, jax.random.key(0))}, x,
            min(v.eval_batch_size, len(x)))
        mse = np.mean(np.square(out["images"].astype(np.float64) - x).reshape(len(x), -1), 1)
        return {"reconstruction_mse": float(np.mean(mse)), "num_examples": int(len(x)),
                "split": config.eval.reference_split,
                "protocol": "Dec(E's mean) for the first num_examples images of the split; "
                            "squared error per pixel in [-1, 1] units.",
                **represent(state, x, labels, out["images"])}
    return evaluate


FAMILY = register(Family(
    name=FAMILY_NAME, build_game=vaegan_game, generator_inputs=prior_inputs,
    section=config_section, validate=_validate, sample_grids=sample_grids,
    evaluation=evaluate_reconstructions))
