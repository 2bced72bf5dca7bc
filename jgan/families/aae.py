"""The adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow and Frey 2016): an
autoencoder whose codes are made to follow a prior by a discriminator on codes.

Networks: an encoder E: x -> code, a decoder: code -> x (`config.aae`'s network keys, as
the autoencoder's), a code discriminator D: z -> logit (an MLP of
`aae.discriminator_hidden`) and, for the clustering prior, a cluster discriminator on
the categorical code. Priors p(z) (`aae.prior`): `jgan.families.code_priors`.

Each step runs the paper's three phases in its order, each a team of the game:

  reconstruction  (encoder, decoder)  mean over the batch of the reconstruction loss of
                  D(E(x)) (`aae.loss`: "mse" per pixel or "bernoulli" nats per image,
                  `jgan.families.autoencoder.reconstruction_loss`).
  discriminator   (code discriminator)  the GAN discriminator loss of `game.loss_type`
                  with prior draws z ~ p(z) as real and codes E(x) as fake:
                  minimax -E log sigmoid D(z) - E log(1 - sigmoid D(E(x))).
  generator       (the encoder, borrowed: `jgan.core.game.Team.borrows`) the generator
                  loss of `game.loss_type` on D(E(x)): non_saturating -E log sigmoid D(E(x)).

With prior="label_mixture" the discriminator reads [z, onehot(y)], and the prior's draw
for an example comes from the component of its label y (the paper's Fig. 4). With
prior="clusters" (Sec. 6, unsupervised clustering) the encoder's output is K logits
and a style code s: the decoder reads [softmax(logits), s], the code discriminator
judges s against N(0, I) and the cluster discriminator softmax(logits) against one-hot
draws of a uniform category; both terms add in the discriminator's and the generator's
losses. `aae.discriminator_input_noise` > 0 adds Gaussian noise of that std to everything
the code discriminators read, real and fake, in both phases (`with_input_noise`); the
clustering configs set 0.3.

Logged: `reconstruction_loss`, `discriminator_loss`, `discriminator_accuracy` (of the
code discriminator, half real half fake), for "clusters" `cluster_discriminator_accuracy`
(the same of the cluster discriminator), `generator_loss`. Samples: decoded prior
draws (a row per cluster for "clusters"), test images above their reconstructions, and
for 2-D codes a scatter of the test codes coloured by label over prior draws.
eval.json's "family_metrics": the test reconstruction error and, for "clusters", the
test error after giving each cluster the majority label of the training images it takes.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan.core.game import Game, Networks, Team
from jgan.errors import require
from jgan.families import autoencoder, encoder_decoder as ed, representation
from jgan.families.code_priors import PRIORS, CodePrior
from jgan.families.code_scatter import code_scatter
from jgan.families.registry import Family, register
from jgan.families.sampling import GeneratorInputs
from jgan.models.mlp import MLPDiscriminator
from jgan.objectives import losses
from jgan.optimizers import build_optimizer

FAMILY_NAME = "aae"
TEAMS = ("reconstruction", "discriminator", "generator")
CODE_DISCRIMINATOR, CLUSTER_DISCRIMINATOR = "code_discriminator", "cluster_discriminator"


def config_section() -> ml_collections.ConfigDict:
    """The family's section `config.aae`, at its defaults."""
    c = ml_collections.ConfigDict()
    c.loss = "bernoulli"                   # mse | bernoulli (reconstruction)
    c.prior = "gaussian"                   # jgan.families.code_priors.PRIORS
    c.num_components = 10                  # mixture, swiss_roll, label_mixture: K
    c.num_clusters = 16                    # clusters: categories of the cluster code
    c.discriminator_hidden = (1000, 1000)  # the code discriminators' hidden widths
    c.discriminator_input_noise = 0.0      # std of N(0, s^2) added to what they judge
    c.scatter_examples = 5000              # test codes in the 2-D scatter plot
    c.cluster_examples = 0                 # training images labelling clusters (0: all)
    ed.add_network_keys(c)
    c.network = "mlp"
    c.hidden = (1000, 1000)
    c.latent_dim = 2
    return c


def prior_of(config: ml_collections.ConfigDict) -> CodePrior:
    """The run's `CodePrior` (`aae.prior`, `latent_dim`, `num_components`, `num_clusters`)."""
    a = config.aae
    return CodePrior(a.prior, a.latent_dim, num_components=a.num_components,
                     num_clusters=a.num_clusters)


def _validate(config: ml_collections.ConfigDict) -> None:
    a = config.aae
    ed.validate_networks(config, FAMILY_NAME, ("tfds",), teams=TEAMS)
    require(a.loss in autoencoder.LOSSES, "aae.loss",
            f"{a.loss!r} is not one of {autoencoder.LOSSES}.")
    require(a.prior in PRIORS, "aae.prior", f"{a.prior!r} is not one of {PRIORS}.")
    require(a.num_components >= 1, "aae.num_components", "must be >= 1.")
    require(a.num_clusters >= 2, "aae.num_clusters", "must be >= 2.")
    require(a.prior != "swiss_roll" or a.latent_dim == 2, "aae.latent_dim",
            f"the swiss roll prior is 2-D: needs 2, got {a.latent_dim}.")
    require(a.prior not in ("mixture", "label_mixture") or a.latent_dim % 2 == 0,
            "aae.latent_dim", f"the {a.prior} prior lays components out in pairs of "
            f"coordinates: needs an even size, got {a.latent_dim}.")
    require(a.prior != "label_mixture" or a.num_components >= config.model.num_classes,
            "aae.num_components", f"label_mixture gives each of the {config.model.num_classes} "
            f"classes (model.num_classes) a component: needs >= {config.model.num_classes}.")
    require(all(w >= 1 for w in a.discriminator_hidden), "aae.discriminator_hidden",
            f"needs widths >= 1, got {tuple(a.discriminator_hidden)}.")
    require(a.discriminator_input_noise >= 0, "aae.discriminator_input_noise",
            f"is a standard deviation: needs >= 0, got {a.discriminator_input_noise}.")
    require(a.scatter_examples >= 1, "aae.scatter_examples", "must be >= 1.")
    require(a.cluster_examples >= 0, "aae.cluster_examples", "must be >= 0 (0: all).")
    require(config.game.update_rule == "alternating", "game.update_rule",
            "the adversarial autoencoder's phases run one after another: needs 'alternating'.")


def encode(nets: Networks, x: jax.Array, prior: CodePrior) -> dict[str, jax.Array]:
    """The encoder's codes of x: `{"code"}` the decoder's input `[B, code_dim]`,
    `{"style"}` what the code discriminator judges `[B, dim]`, and for "clusters"
    `{"clusters"}` the category probabilities softmax(logits) `[B, K]`."""
    out = nets(ed.ENCODER, x)
    if prior.kind != "clusters":
        return {"code": out, "style": out}
    probabilities = jax.nn.softmax(out[:, :prior.num_clusters])
    style = out[:, prior.num_clusters:]
    return {"code": jnp.concatenate([probabilities, style], -1), "style": style,
            "clusters": probabilities}


def _judged(z: jax.Array, labels: jax.Array, prior: CodePrior, num_classes: int) -> jax.Array:
    """What the code discriminator reads: z, or [z, onehot(label)] for label_mixture."""
    if not prior.takes_labels:
        return z
    return jnp.concatenate([z, jax.nn.one_hot(labels, num_classes, dtype=z.dtype)], -1)


def with_input_noise(key: jax.Array, inputs: jax.Array, std: float) -> jax.Array:
    """inputs + N(0, std^2) noise `[B, d]` (instance noise; `inputs` itself for std 0).

    The clustering prior's real categories are exact one-hot vertices, which a softmax
    never reaches: a discriminator reading them as they are wins by the gap alone
    (accuracy near 1 on MNIST) and tells the encoder nothing about how it spreads its
    examples over the categories. Noise on both sides blurs that gap while the
    difference between the marginals survives (instance noise: Sønderby et al. 2017,
    "Amortised MAP inference for image super-resolution"; Arjovsky & Bottou 2017).
    """
    if std == 0:
        return inputs
    return inputs + std * jax.random.normal(key, inputs.shape, inputs.dtype)


def _adversary_logits(nets: Networks, codes: dict, batch, key: jax.Array, prior: CodePrior,
                      num_classes: int, noise: float) -> dict[str, tuple[jax.Array, jax.Array]]:
    """`{discriminator: (logits on prior draws, logits on the encoder's codes)}`, each
    discriminator's inputs with `noise` (`with_input_noise`)."""
    labels = batch["label"]
    n = labels.shape[0]
    draw_key, noise_key = jax.random.split(key)
    draws = prior.sample(draw_key, n, labels if prior.takes_labels else None)
    noisy = lambda i, inputs: with_input_noise(jax.random.fold_in(noise_key, i), inputs, noise)
    judged = lambda z: _judged(z, labels, prior, num_classes)
    out = {CODE_DISCRIMINATOR: (
        nets(CODE_DISCRIMINATOR, judged(noisy(0, draws[:, -prior.dim:]))),
        nets(CODE_DISCRIMINATOR, judged(noisy(1, codes["style"]))))}
    if prior.kind == "clusters":
        out[CLUSTER_DISCRIMINATOR] = (
            nets(CLUSTER_DISCRIMINATOR, noisy(2, draws[:, :prior.num_clusters])),
            nets(CLUSTER_DISCRIMINATOR, noisy(3, codes["clusters"])))
    return out


def aae_game(config: ml_collections.ConfigDict) -> Game:
    """The three-phase game of the module docstring; optimizers `optimizer.<team>`, the
    EMA (`game.ema_decay`) on the encoder and decoder."""
    a, shape, prior = config.aae, ed.data_shape(config), prior_of(config)
    loss_type, num_classes = config.game.loss_type, config.model.num_classes
    noise = float(a.discriminator_input_noise)
    encoder, decoder = ed.build_networks(config, FAMILY_NAME, variational=False,
                                         code_dim=prior.code_dim)
    discriminators = {CODE_DISCRIMINATOR: MLPDiscriminator(hidden=tuple(a.discriminator_hidden))}
    if prior.kind == "clusters":
        discriminators[CLUSTER_DISCRIMINATOR] = MLPDiscriminator(
            hidden=tuple(a.discriminator_hidden))

    def reconstruction_loss(nets: Networks, batch, rng):
        del rng
        x = batch["image"]
        output = ed.decode(nets, encode(nets, x, prior)["code"], shape)
        return jnp.mean(autoencoder.reconstruction_loss(x, output, a.loss)), {}

    def discriminator_loss(nets: Networks, batch, rng):
        logits = _adversary_logits(nets, encode(nets, batch["image"], prior), batch, rng,
                                   prior, num_classes, noise)
        total = sum(losses.discriminator_loss(real_logits=real, fake_logits=fake,
                                              loss_type=loss_type)
                    for real, fake in logits.values())
        accuracy = lambda real, fake: 0.5 * (jnp.mean(real > 0) + jnp.mean(fake < 0))
        metrics = {"discriminator_accuracy": accuracy(*logits[CODE_DISCRIMINATOR])}
        if CLUSTER_DISCRIMINATOR in logits:
            metrics["cluster_discriminator_accuracy"] = accuracy(*logits[CLUSTER_DISCRIMINATOR])
        return total, metrics

    def generator_loss(nets: Networks, batch, rng):
        logits = _adversary_logits(nets, encode(nets, batch["image"], prior), batch, rng,
                                   prior, num_classes, noise)
        return sum(losses.generator_loss(fake_logits=fake, loss_type=loss_type)
                   for _, fake in logits.values()), {}

    def example_inputs(batch):
        judged = prior.dim + (num_classes if prior.takes_labels else 0)
        inputs = {ed.ENCODER: (batch["image"][:1],),
                  ed.DECODER: (jnp.zeros((1, prior.code_dim), jnp.float32),),
                  CODE_DISCRIMINATOR: (jnp.zeros((1, judged), jnp.float32),)}
        if prior.kind == "clusters":
            inputs[CLUSTER_DISCRIMINATOR] = (jnp.zeros((1, prior.num_clusters), jnp.float32),)
        return inputs

    def optimizer(team):
        return build_optimizer(config.optimizer[team], config.num_steps)

    return Game(teams={
        "reconstruction": Team(networks={ed.ENCODER: encoder, ed.DECODER: decoder},
                               loss=reconstruction_loss, optimizer=optimizer("reconstruction"),
                               ema_decay=config.game.ema_decay),
        "discriminator": Team(networks=discriminators, loss=discriminator_loss,
                              optimizer=optimizer("discriminator")),
        "generator": Team(networks={}, borrows=(ed.ENCODER,), loss=generator_loss,
                          optimizer=optimizer("generator")),
    }, example_inputs=example_inputs)


def _to_data(output: jax.Array, *, loss: str, shape: tuple[int, ...]) -> jax.Array:
    return autoencoder.to_images(output.reshape((output.shape[0],) + tuple(shape)), loss)


def prior_inputs(config: ml_collections.ConfigDict) -> GeneratorInputs:
    """The decoder as the run's generator, on codes drawn from the prior (a uniform
    component, or category, per draw)."""
    prior = prior_of(config)
    return GeneratorInputs(
        family=FAMILY_NAME, latent_dim=prior.code_dim, network=ed.DECODER,
        to_data=functools.partial(_to_data, loss=config.aae.loss, shape=ed.data_shape(config)),
        draw_latent=lambda key, n: prior.sample(key, n))


def _sample_codes(config, prior: CodePrior) -> tuple[jax.Array, int]:
    """Codes of the samples grid and its columns: a row per cluster with the style fixed
    per column ("clusters"), else prior draws in a square."""
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 2)
    num = config.num_sample_images
    if prior.kind != "clusters":
        return prior.sample(key, num), int(np.ceil(np.sqrt(num)))
    k = prior.num_clusters
    columns = max(1, num // k)
    style = jax.random.normal(key, (columns, prior.dim))
    onehot = jnp.repeat(jnp.eye(k), columns, axis=0)
    return jnp.concatenate([onehot, jnp.tile(style, (k, 1))], -1), columns


def _codes_fn(config, game: Game):
    """Jitted `(state, x) -> {"code", "style", "images", "loss"}` with the sampling
    weights (EMA where kept)."""
    prior, shape, loss = prior_of(config), ed.data_shape(config), config.aae.loss
    use_ema = config.game.ema_decay is not None

    @jax.jit
    def codes(state, x):
        nets = game.bind(state, train=False, rng=jax.random.key(0), use_ema=use_ema)
        encoded = encode(nets, x, prior)
        output = ed.decode(nets, encoded["code"], shape)
        out = {"style": encoded["style"], "images": autoencoder.to_images(output, loss),
               "loss": autoencoder.reconstruction_loss(x, output, loss)}
        if prior.kind == "clusters":
            out["cluster"] = jnp.argmax(encoded["clusters"], -1)
        return out
    return codes


def sample_grids(config: ml_collections.ConfigDict, game: Game):
    """`state -> grids`: "samples" (decoded prior draws), "reconstructions" (held-out
    images above their reconstructions) and, for a 2-D style code, "codes" (a scatter of
    `aae.scatter_examples` held-out codes coloured by label over as many prior draws)."""
    prior, a = prior_of(config), config.aae
    codes_fn = _codes_fn(config, game)
    sampler = prior_inputs(config)
    generate = sampler.jitted_generate(game, use_ema=config.game.ema_decay is not None)
    sample_codes, sample_columns = _sample_codes(config, prior)
    num, columns = ed.grid_sizes(config.num_sample_images)
    scatter = prior.dim == 2
    held_out, labels = ed.labelled_examples(config, max(num, a.scatter_examples) if scatter
                                            else num, split=config.eval.reference_split)
    prior_draws = np.asarray(prior.sample(jax.random.PRNGKey(ed.HELD_OUT_SEED), len(held_out),
                                          jnp.asarray(labels) if prior.takes_labels else None))

    def grids(state):
        out = ed.batched(lambda i, chunk: codes_fn(state, chunk), held_out,
                         min(a.eval_batch_size, len(held_out)))
        samples = np.asarray(generate(state, {"z": sample_codes}, jax.random.key(0)))
        result = {"samples": (samples, sample_columns),
                  "reconstructions": ed.reconstruction_grid(held_out[:num],
                                                            out["images"][:num], columns)}
        if scatter:
            image = code_scatter(out["style"], labels, prior_draws[:, -2:],
                                 title=f"{len(labels)} test codes over p(z) ({prior.kind})")
            result["codes"] = (image[None].astype(np.float32) / 127.5 - 1.0, 1)
        return result
    return grids


def cluster_error(train_clusters: np.ndarray, train_labels: np.ndarray,
                  test_clusters: np.ndarray, test_labels: np.ndarray,
                  num_clusters: int) -> tuple[float, np.ndarray]:
    """Test error of clusters labelled by majority vote (the paper's Sec. 6 measure).

    Each cluster takes the most frequent label of the training examples assigned to it
    (ties: the smallest label; a cluster with none: label -1, always wrong); a test
    example is right when its cluster's label is its own.

    Returns:
      `(error in [0, 1], the clusters' labels [num_clusters])`.
    """
    num_labels = int(max(train_labels.max(), test_labels.max())) + 1
    counts = np.zeros((num_clusters, num_labels), np.int64)
    np.add.at(counts, (train_clusters, train_labels), 1)
    assigned = np.where(counts.sum(1) > 0, counts.argmax(1), -1)
    return float(np.mean(assigned[test_clusters] != test_labels)), assigned


def evaluate_codes(config: ml_collections.ConfigDict, game: Game):
    """`state -> dict`: the test reconstruction error over `aae.eval_examples` held-out
    images (0: the split), the encoder's probe and the reconstructions' scores
    (`jgan.families.representation`) and, for "clusters", `cluster_test_error` with its
    protocol."""
    a, prior = config.aae, prior_of(config)
    codes_fn = _codes_fn(config, game)
    represent = representation.for_game(config, game, batch_size=a.eval_batch_size)

    def evaluate(state):
        x, labels = ed.labelled_examples(config, a.eval_examples,
                                         split=config.eval.reference_split)
        out = ed.batched(lambda i, chunk: codes_fn(state, chunk), x, min(a.eval_batch_size, len(x)))
        mse = np.mean(np.square(out["images"].astype(np.float64) - x).reshape(len(x), -1), 1)
        result = {"test_mse": float(np.mean(mse)), "test_loss": float(np.mean(out["loss"])),
                  "loss": a.loss, "prior": a.prior, "num_examples": int(len(x)),
                  "split": config.eval.reference_split,
                  **represent(state, x, labels, out["images"])}
        if prior.kind == "clusters":
            train_x, train_labels = ed.labelled_examples(config, a.cluster_examples,
                                                         split="train")
            train = ed.batched(lambda i, chunk: codes_fn(state, chunk), train_x,
                               min(a.eval_batch_size, len(train_x)))
            error, assigned = cluster_error(train["cluster"], train_labels, out["cluster"],
                                            labels, prior.num_clusters)
            result.update({
                "cluster_test_error": error, "cluster_labels": assigned.tolist(),
                "clusters_used": int(len(np.unique(out["cluster"]))),
                "cluster_protocol": (
                    f"each of the {prior.num_clusters} clusters (argmax of the encoder's "
                    f"category) takes the majority label of the first {len(train_x)} "
                    f"training images it holds; error over the first {len(x)} images of "
                    f"{config.eval.reference_split}.")})
        return result
    return evaluate


FAMILY = register(Family(
    name=FAMILY_NAME, build_game=aae_game, generator_inputs=prior_inputs,
    section=config_section, validate=_validate, sample_grids=sample_grids,
    evaluation=evaluate_codes))
