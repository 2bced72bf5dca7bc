"""The variational autoencoder family (Kingma & Welling 2014): one team, "vae", of an
encoder q(z | x) = N(mean, diag exp(log_var)) and a decoder p(x | z), prior
p(z) = N(0, I), trained to maximize the ELBO.

Loss (`config.vae.*`), averaged over the batch of B examples:

  objective="elbo":  -(1/n) sum_i log p(x | z_i) + beta KL(q(z | x) || p(z)),
                     z_i = mean + exp(log_var / 2) eps_i (reparameterization), the KL
                     analytic, n = `train_samples`, beta = `beta` (1: the ELBO;
                     otherwise the beta-VAE of Higgins et al. 2017)
  objective="iwae":  -log (1/k) sum_i p(x, z_i) / q(z_i | x), k = `train_samples`
                     (Burda et al. 2016; beta must be 1)

(`jgan.objectives.variational.elbo` / `importance_weighted_bound`). Likelihoods, x the
batch's data (images in [-1, 1], or 2-D points):

  likelihood="bernoulli": p(x | z) = prod_d Bernoulli(t_d; sigmoid(l_d)), l the
    decoder's logits. With binarize="dynamic" (dynamically binarized MNIST) the target
    t ~ Bernoulli((x + 1) / 2) is drawn afresh at every step inside the loss, from the
    step's key (`binarize`), and the encoder reads t too (as 2 t - 1); with
    binarize="none", t = (x + 1) / 2 in [0, 1] (a training loss, not a normalized
    likelihood). Samples shown: sigmoid(l) * 2 - 1.
  likelihood="gaussian": p(x | z) = N(x; decoder(z), sigma^2 I) with one learned
    log sigma (network "log_scale", `jgan.models.LearnedScale`). Samples shown: the
    decoder's means.

Logged per step: `vae_loss`, `vae_elbo` (beta = 1, the bound itself), `vae_kl`,
`vae_log_likelihood` (the Monte-Carlo E_q log p(x | z)). `jgan.sample` decodes
z ~ N(0, I). The evaluation (`evaluate_bounds`) writes the held-out ELBO and the
importance-weighted bound with k = `iwae_samples` to eval.json.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan.core.game import Game, Networks, Team
from jgan.errors import require
from jgan.families import encoder_decoder as ed
from jgan.families import representation
from jgan.families.registry import Family, register
from jgan.families.sampling import GeneratorInputs
from jgan.models.autoencoder import LearnedScale
from jgan.objectives import variational
from jgan.optimizers import build_optimizer

TEAM = "vae"
LOG_SCALE = "log_scale"
LIKELIHOODS = ("bernoulli", "gaussian")
BINARIZE = ("dynamic", "none")
OBJECTIVES = ("elbo", "iwae")
BINARIZATION_SEED = 0   # the held-out set's one fixed binarization (numpy default_rng)


def config_section() -> ml_collections.ConfigDict:
    """The family's section `config.vae`, at its defaults."""
    c = ml_collections.ConfigDict()
    c.likelihood = "bernoulli"  # bernoulli | gaussian
    c.binarize = "dynamic"      # bernoulli: dynamic (fresh each step) | none
    c.beta = 1.0                # weight of the KL term (objective="elbo")
    c.objective = "elbo"        # elbo | iwae
    c.train_samples = 1         # posterior samples per example in the loss
    c.iwae_samples = 5000       # k of the evaluation's importance-weighted bound
    c.iwae_chunk = 100          # samples per decoder call in that bound (memory)
    c.traversal_range = 3.0     # latent traversals sweep [-r, r]
    ed.add_network_keys(c)
    c.eval_batch_size = 100
    return c


def _validate(config: ml_collections.ConfigDict) -> None:
    v = config.vae
    ed.validate_networks(config, TEAM, ("tfds", "mixture"))
    for key, allowed in (("likelihood", LIKELIHOODS), ("binarize", BINARIZE),
                         ("objective", OBJECTIVES)):
        require(v[key] in allowed, f"vae.{key}", f"{v[key]!r} is not one of {allowed}.")
    require(v.beta >= 0, "vae.beta", f"must be >= 0, got {v.beta}.")
    require(v.objective == "elbo" or v.beta == 1.0, "vae.beta",
            "the iwae objective is the importance-weighted bound itself: beta must be 1.")
    for key in ("train_samples", "iwae_samples", "iwae_chunk"):
        require(v[key] >= 1, f"vae.{key}", f"must be >= 1, got {v[key]}.")
    require(v.traversal_range > 0, "vae.traversal_range", "must be > 0.")
    require(v.likelihood == "gaussian" or config.data.kind != "mixture", "vae.likelihood",
            "a Bernoulli likelihood needs images in [-1, 1]; 2-D mixture data needs gaussian.")


def binarize(key: jax.Array, x: jax.Array) -> jax.Array:
    """Dynamic binarization: t ~ Bernoulli((x + 1) / 2) elementwise, float32 in {0, 1},
    the shape of x `[B, ...]` (images in [-1, 1])."""
    p = jnp.clip((x.astype(jnp.float32) + 1.0) / 2.0, 0.0, 1.0)
    return jax.random.bernoulli(key, p).astype(jnp.float32)


def _target(x: jax.Array, key: jax.Array, settings) -> jax.Array:
    """What the likelihood scores: binary (dynamic), [0, 1] ("none") or x (gaussian)."""
    if settings.likelihood == "gaussian":
        return x.astype(jnp.float32)
    return binarize(key, x) if settings.binarize == "dynamic" else (x + 1.0) / 2.0


def _encoder_view(target: jax.Array, settings) -> jax.Array:
    """The encoder's input: the target in the data's [-1, 1] units."""
    return target if settings.likelihood == "gaussian" else target * 2.0 - 1.0


def _log_likelihood_fn(nets: Networks, target: jax.Array, settings, shape):
    """z `[B, L]` -> log p(target | z) `[B]`."""
    if settings.likelihood == "bernoulli":
        return lambda z: variational.bernoulli_log_likelihood(
            target, logits=ed.decode(nets, z, shape))
    log_scale = nets(LOG_SCALE)
    return lambda z: variational.gaussian_log_likelihood(
        target, mean=ed.decode(nets, z, shape), log_scale=log_scale)


def to_data(output: jax.Array, *, likelihood: str, shape: tuple[int, ...]) -> jax.Array:
    """The decoder's output `[N, ...]` as data `[N, *shape]`: sigmoid(logits) * 2 - 1
    (bernoulli) or the means (gaussian)."""
    output = output.reshape((output.shape[0],) + tuple(shape))
    return jax.nn.sigmoid(output) * 2.0 - 1.0 if likelihood == "bernoulli" else output


def vae_game(config: ml_collections.ConfigDict) -> Game:
    """The one-team game of the module docstring, updated with `optimizer.vae`."""
    v, shape = config.vae, ed.data_shape(config)
    encoder, decoder = ed.build_networks(config, TEAM, variational=True)
    networks = {ed.ENCODER: encoder, ed.DECODER: decoder}
    if v.likelihood == "gaussian":
        networks[LOG_SCALE] = LearnedScale()

    def loss(nets: Networks, batch, rng):
        binarize_key, z_key = jax.random.split(rng)
        target = _target(batch["image"], binarize_key, v)
        mean, log_var = nets(ed.ENCODER, _encoder_view(target, v))
        log_likelihood_fn = _log_likelihood_fn(nets, target, v, shape)
        if v.objective == "iwae":
            bound = variational.importance_weighted_bound(
                z_key, mean=mean, log_var=log_var, log_likelihood_fn=log_likelihood_fn,
                num_samples=v.train_samples)
            terms = variational.elbo(z_key, mean=mean, log_var=log_var,
                                     log_likelihood_fn=log_likelihood_fn)
            objective = jnp.mean(bound)
        else:
            terms = variational.elbo(z_key, mean=mean, log_var=log_var,
                                     log_likelihood_fn=log_likelihood_fn,
                                     num_samples=v.train_samples, beta=v.beta)
            objective = jnp.mean(terms.elbo)
        log_likelihood, kl = jnp.mean(terms.expected_log_likelihood), jnp.mean(terms.kl)
        return -objective, {"vae_elbo": log_likelihood - kl, "vae_kl": kl,
                            "vae_log_likelihood": log_likelihood}

    def example_inputs(batch):
        inputs = {ed.ENCODER: (batch["image"][:1],),
                  ed.DECODER: (jnp.zeros((1, v.latent_dim), jnp.float32),)}
        if LOG_SCALE in networks:
            inputs[LOG_SCALE] = ()
        return inputs

    team = Team(networks=networks, loss=loss,
                optimizer=build_optimizer(config.optimizer[TEAM], config.num_steps),
                ema_decay=config.game.ema_decay, metrics_prefix=TEAM)
    return Game(teams={TEAM: team}, example_inputs=example_inputs)


def prior_inputs(config: ml_collections.ConfigDict) -> GeneratorInputs:
    """The decoder as the run's generator: z ~ N(0, I) `[N, latent_dim]` -> `to_data`."""
    return GeneratorInputs(
        family=TEAM, latent_dim=config.vae.latent_dim, network=ed.DECODER,
        to_data=functools.partial(to_data, likelihood=config.vae.likelihood,
                                  shape=ed.data_shape(config)))


def _eval_target(config, x: np.ndarray) -> np.ndarray:
    """Held-out data as the likelihood scores it: binarized once with
    `default_rng(BINARIZATION_SEED)` (dynamic), in [0, 1] ("none"), or as they are."""
    v = config.vae
    if v.likelihood == "gaussian":
        return x
    p = (x.astype(np.float64) + 1.0) / 2.0
    if v.binarize == "none":
        return p.astype(np.float32)
    return (np.random.default_rng(BINARIZATION_SEED).random(x.shape) < p).astype(np.float32)


def sample_grids(config: ml_collections.ConfigDict, game: Game):
    """`state -> {"samples", "reconstructions", "traversals"}` grids for image data
    (None for mixtures, which the trainer scatter-plots), from one jitted call:

    samples: decoded z ~ N(0, I) (`config.num_sample_images`, key
      `fold_in(PRNGKey(seed), 2)` as every run's grid). reconstructions: held-out
      images above the decoded posterior means of their (binarized) targets.
      traversals: a row per latent dimension, the `min(latent_dim, 8)` with the largest
      mean KL over those images (the most used), swept over [-r, r] along the columns,
      the others at the first image's posterior mean.
    """
    if config.data.kind == "mixture":
        return None
    v, shape = config.vae, ed.data_shape(config)
    use_ema = config.game.ema_decay is not None
    prior, prior_columns = prior_inputs(config).grid(
        jax.random.fold_in(jax.random.PRNGKey(config.seed), 2), config.num_sample_images)
    num, columns = ed.grid_sizes(config.num_sample_images)
    originals = ed.held_out_examples(config, num)
    targets = jnp.asarray(_eval_target(config, originals))
    steps, rows = max(3, columns), min(v.latent_dim, 8)
    sweep = jnp.linspace(-v.traversal_range, v.traversal_range, steps)

    @jax.jit
    def decoded(state):
        nets = game.bind(state, train=False, rng=jax.random.key(0), use_ema=use_ema)
        mean, log_var = nets(ed.ENCODER, _encoder_view(targets, v))
        kl = jnp.mean(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, axis=0)
        dims = jax.lax.top_k(kl, rows)[1]                        # the most used dimensions
        traversal = jnp.repeat(mean[:1], rows * steps, axis=0)
        traversal = traversal.at[jnp.arange(rows * steps), jnp.repeat(dims, steps)].set(
            jnp.tile(sweep, rows))
        z = jnp.concatenate([prior["z"], mean, traversal])       # one decoder call
        return to_data(nets(ed.DECODER, z), likelihood=v.likelihood, shape=shape)

    def grids(state):
        images = np.asarray(decoded(state))
        samples, rest = np.split(images, [len(prior["z"])])
        reconstructions, traversals = np.split(rest, [len(originals)])
        return {"samples": (samples, prior_columns),
                "reconstructions": ed.reconstruction_grid(originals, reconstructions, columns),
                "traversals": (traversals, steps)}
    return grids


def evaluate_bounds(config: ml_collections.ConfigDict, game: Game):
    """`state -> dict`: the held-out ELBO (beta = 1, one posterior sample) and the
    importance-weighted bound L_k, k = `vae.iwae_samples` (Burda et al. 2016), per
    example averaged over `vae.eval_examples` held-out examples (0: the whole split),
    in nats, `vae.eval_batch_size` examples and `vae.iwae_chunk` samples at a time.

    Batch i's posterior samples are keyed by `fold_in(PRNGKey(seed), 8)` folded with i;
    sample 0 of the bound is the ELBO's sample.
    """
    v, shape = config.vae, ed.data_shape(config)
    use_ema = config.game.ema_decay is not None
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 8)
    represent = None if config.data.kind == "mixture" else _representation(config, game)

    @jax.jit
    def bounds(state, target, i):
        batch_key = jax.random.fold_in(key, i)
        nets = game.bind(state, train=False, rng=batch_key, use_ema=use_ema)
        mean, log_var = nets(ed.ENCODER, _encoder_view(target, v))
        log_likelihood_fn = _log_likelihood_fn(nets, target, v, shape)
        terms = variational.elbo(batch_key, mean=mean, log_var=log_var,
                                 log_likelihood_fn=log_likelihood_fn)
        iwae = variational.importance_weighted_bound(
            batch_key, mean=mean, log_var=log_var, log_likelihood_fn=log_likelihood_fn,
            num_samples=v.iwae_samples, chunk_size=v.iwae_chunk)
        return {"elbo": terms.elbo, "kl": terms.kl, "iwae": iwae,
                "log_likelihood": terms.expected_log_likelihood,
                "images": to_data(ed.decode(nets, mean, shape), likelihood=v.likelihood,
                                  shape=shape)}

    def evaluate(state):
        if represent is None:
            x, labels = ed.held_out_examples(config, v.eval_examples), None
        else:
            x, labels = ed.labelled_examples(config, v.eval_examples,
                                             split=config.eval.reference_split)
        target = _eval_target(config, x)
        out = ed.batched(lambda i, chunk: bounds(state, chunk, i), target,
                         min(v.eval_batch_size, len(target)))
        images = out.pop("images")
        mean = {name: float(np.mean(values.astype(np.float64))) for name, values in out.items()}
        data = ("2-D points drawn from the mixture with PRNGKey(0)"
                if config.data.kind == "mixture" else
                f"the first num_examples images of {config.data.name}/"
                f"{config.eval.reference_split}")
        scored = {"gaussian": "x itself (a density of the data's units, not a probability)",
                  "none": "(x + 1) / 2 in [0, 1] (not a normalized likelihood)",
                  "dynamic": f"x binarized once, t ~ Bernoulli((x + 1) / 2) with numpy "
                             f"default_rng({BINARIZATION_SEED})"}
        return {"test_elbo": mean["elbo"], "test_kl": mean["kl"],
                "test_reconstruction": -mean["log_likelihood"],
                "test_log_likelihood_iwae": mean["iwae"], "test_nll_iwae": -mean["iwae"],
                "iwae_samples": v.iwae_samples, "num_examples": int(len(target)),
                "likelihood": v.likelihood,
                "protocol": (f"nats per example over {data}, scoring "
                             f"{scored['gaussian' if v.likelihood == 'gaussian' else v.binarize]}"
                             "; test_elbo: E_q log p(x | z) - KL with one posterior sample "
                             "(beta = 1), test_reconstruction: minus its first term; "
                             "test_log_likelihood_iwae: log (1/k) sum_i p(x, z_i) / "
                             "q(z_i | x), k = iwae_samples (Burda et al. 2016), a lower "
                             "bound on log p(x); test_nll_iwae = its negative."),
                **({} if represent is None else represent(state, x, labels, images))}
    return evaluate


def _representation(config, game: Game) -> representation.RepresentationEvaluation:
    """The probe of the encoder's features of what it reads (the held-out images
    binarized once, as `_eval_target`) and the scores of Dec(E's mean) as images."""
    v = config.vae
    return representation.for_game(
        config, game, batch_size=v.eval_batch_size,
        encoder_input=lambda x: np.asarray(_encoder_view(_eval_target(config, x), v)))


FAMILY = register(Family(
    name="vae", build_game=vae_game, generator_inputs=prior_inputs, section=config_section,
    validate=_validate, sample_grids=sample_grids, evaluation=evaluate_bounds))
