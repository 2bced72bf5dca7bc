"""StarGAN (Choi, Choi, Kim, Ha, Kim and Choo 2018): one generator for translations
between many domains, a domain being a vector of attribute labels.

G(x, c) translates an image x to target labels c (spatially replicated and
concatenated to x's channels; `jgan.models.resnet_translator` with zero padding, which
keeps those constant planes from being normalized away). D
(`jgan.models.star_discriminator`) gives a WGAN critic score per patch, D_src, and one
logit per attribute, D_cls. With c' x's own labels and c target labels (a permutation
of the batch's labels, so every target is a combination that occurs):

  L_D = -E[D_src(x)] + E[D_src(G(x, c))] + lambda_cls L_cls(D_cls(x), c')
        + lambda_gp E[(||grad D_src(xhat)||_2 - 1)^2]
  L_G = -E[D_src(G(x, c))] + lambda_cls L_cls(D_cls(G(x, c)), c)
        + lambda_rec E|x - G(G(x, c), c')|_1

L_cls is the binary cross-entropy of each attribute, summed over the attributes and
averaged over the batch; lambda_cls = 1, lambda_rec = 10, lambda_gp = 10, five critic
updates per generator update (`game.d_steps`). D_src is summed over patches where one
score per example is needed (the gradient penalty, as the reference code takes the
gradient of the patch map against ones).

**Mask vector** (training on several datasets with different labels): each example
carries `known` in {0, 1}^A, its labels that are defined. The classification loss
counts only known labels, and G reads `[c * known, known]`, the paper's labels with
unknown ones zeroed beside the mask. With `stargan.label_groups` set, example i
belongs to group i % (number of groups) and knows only that group's attributes; without
it every label is known.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan.core.game import Game, Networks
from jgan.errors import require
from jgan.families import translation
from jgan.families.registry import Family, register
from jgan.models.resnet_translator import ResnetTranslator
from jgan.models.star_discriminator import StarDiscriminator
from jgan.objectives.penalties import gradient_penalty

TEAMS = ("discriminator", "generator")


def config_section() -> ml_collections.ConfigDict:
    """The family's section `config.stargan`, at its defaults (the paper's)."""
    c = ml_collections.ConfigDict()
    c.num_attributes = 5
    c.generator_width = 64
    c.generator_blocks = 6
    c.discriminator_width = 64
    c.discriminator_layers = 6
    c.cls_weight = 1.0
    c.rec_weight = 10.0
    c.gp_weight = 10.0
    c.label_groups = ""           # "" (every label known) or e.g. "0,1,2;3,4": the mask vector
    c.eval_examples = 1000
    c.eval_batch_size = 100
    return c


def label_groups(config: ml_collections.ConfigDict) -> tuple[tuple[int, ...], ...]:
    """`stargan.label_groups` as index tuples; () when every label is known."""
    text = config.stargan.label_groups.strip()
    if not text:
        return ()
    return tuple(tuple(int(i) for i in group.split(",") if i.strip())
                 for group in text.split(";"))


def known_labels(config: ml_collections.ConfigDict, n: int) -> np.ndarray:
    """`[n, A]` float32: which labels example i (of a batch) knows: all, or its group's
    (group i % number of groups)."""
    groups, a = label_groups(config), config.stargan.num_attributes
    if not groups:
        return np.ones((n, a), np.float32)
    masks = np.zeros((len(groups), a), np.float32)
    for g, group in enumerate(groups):
        masks[g, list(group)] = 1.0
    return masks[np.arange(n) % len(groups)]


def _validate(config: ml_collections.ConfigDict) -> None:
    s = config.stargan
    require(config.data.kind == "attribute_digits", "data.kind",
            "StarGAN reads images with attribute labels: 'attribute_digits'.")
    require(s.num_attributes == 5, "stargan.num_attributes",
            "attribute_digits has 5 attributes (red, green, blue, textured, thick).")
    groups = label_groups(config)
    flat = [i for g in groups for i in g]
    require(all(0 <= i < s.num_attributes for i in flat) and len(flat) == len(set(flat)),
            "stargan.label_groups", f"groups of distinct attribute indices in [0, "
            f"{s.num_attributes}) separated by ';', got {s.label_groups!r}.")
    require(config.data.resolution % 2 ** s.discriminator_layers == 0, "data.resolution",
            f"D halves it stargan.discriminator_layers={s.discriminator_layers} times.")
    require(config.data.resolution % 4 == 0, "data.resolution", "G halves it twice.")
    require(sorted(config.optimizer) == sorted(TEAMS), "optimizer",
            f"stargan has teams {TEAMS}; the config's optimizer sections are "
            f"{sorted(config.optimizer)}.")  # d_steps: its critic updates
    require(s.eval_examples >= 0 and s.eval_batch_size >= 1, "stargan.eval_examples",
            "eval_examples >= 0 (0: all) and eval_batch_size >= 1.")


def classification_loss(logits: jax.Array, labels: jax.Array, known: jax.Array) -> jax.Array:
    """sum over known attributes of BCE(sigmoid(logits), labels), mean over the batch.

    Args:
      logits, labels, known: `[B, A]` (labels and known in {0, 1}).
    """
    bce = jax.nn.softplus(logits) - logits * labels   # -log p(labels | logits)
    return jnp.mean(jnp.sum(bce * known, axis=-1))


def _condition(x: jax.Array, labels: jax.Array, known: jax.Array) -> jax.Array:
    """`[B, H, W, C + 2A]`: x with `[labels * known, known]` replicated over H, W."""
    code = jnp.concatenate([labels * known, known], axis=-1)[:, None, None, :]
    return jnp.concatenate([x, jnp.broadcast_to(code, x.shape[:3] + code.shape[-1:])], axis=-1)


def _batch_labels(batch, config):
    x = batch["image"]
    known = jnp.asarray(known_labels(config, x.shape[0]))
    return x, batch["attributes"] * known, known


def _targets(labels, known, rng):
    """A permutation of the batch's (labels, known) pairs."""
    order = jax.random.permutation(rng, labels.shape[0])
    return labels[order], known[order]


def stargan_game(config: ml_collections.ConfigDict) -> Game:
    """The two-team game of the module docstring; metrics `d_loss`, `d_cls`, `d_gp`,
    `g_loss`, `g_cls`, `g_rec`."""
    s = config.stargan
    generator = ResnetTranslator(out_channels=config.data.channels, width=s.generator_width,
                                 num_blocks=s.generator_blocks, norm="instance",
                                 padding="zero")
    discriminator = StarDiscriminator(s.num_attributes, width=s.discriminator_width,
                                      num_layers=s.discriminator_layers)

    def d_loss(nets: Networks, batch, rng):
        x, labels, known = _batch_labels(batch, config)
        target, target_known = _targets(labels, known, jax.random.fold_in(rng, 0))
        fake = jax.lax.stop_gradient(nets("generator", _condition(x, target, target_known)))
        real_src, real_cls = nets("discriminator", x)
        fake_src, _ = nets("discriminator", fake)
        cls = classification_loss(real_cls, labels, known)
        gp = gradient_penalty(lambda v: jnp.sum(nets("discriminator", v)[0], axis=(1, 2, 3)),
                              real=x, fake=fake, rng=jax.random.fold_in(rng, 1))
        loss = (-jnp.mean(real_src) + jnp.mean(fake_src) + s.cls_weight * cls
                + s.gp_weight * gp)
        return loss, {"d_cls": cls, "d_gp": gp}

    def g_loss(nets: Networks, batch, rng):
        x, labels, known = _batch_labels(batch, config)
        target, target_known = _targets(labels, known, jax.random.fold_in(rng, 0))
        fake = nets("generator", _condition(x, target, target_known))
        fake_src, fake_cls = nets("discriminator", fake)
        cls = classification_loss(fake_cls, target, target_known)
        back = nets("generator", _condition(fake, labels, known))
        rec = jnp.mean(jnp.abs(x - back))
        return -jnp.mean(fake_src) + s.cls_weight * cls + s.rec_weight * rec, {
            "g_cls": cls, "g_rec": rec}

    def example_inputs(batch):
        x = batch["image"][:1]
        a = s.num_attributes
        return {"generator": (_condition(x, jnp.zeros((1, a)), jnp.ones((1, a))),),
                "discriminator": (x,)}

    return Game(teams={"discriminator": translation.team(
                           config, "discriminator", {"discriminator": discriminator}, d_loss, "d"),
                       "generator": translation.team(
                           config, "generator", {"generator": generator}, g_loss, "g")},
                example_inputs=example_inputs)


def held_out_examples(config, num: int) -> dict[str, np.ndarray]:
    """The first `num` test images (in [-1, 1]) with their attributes and digits."""
    from jgan.data.derived_domains import AttributeDigits
    from jgan.data.images import _PrepareExample, tfds_source
    d = config.data
    source = AttributeDigits(tfds_source("mnist", split=config.eval.reference_split,
                                         data_dir=d.data_dir or None), seed=config.seed)
    prepare = _PrepareExample(d.resolution, d.channels, d.resize)
    records = [prepare(source[i]) for i in range(min(num or len(source), len(source)))]
    return {k: np.stack([r[k] for r in records]) for k in records[0]}


def translate_fn(config, game: Game):
    """Jitted `(state, x [N, R, R, C], target [N, A]) -> {"images": G(x, target),
    "logits": D_cls of them [N, A]}`, with the sampling weights (EMA where kept)."""
    use_ema = config.game.ema_decay is not None

    @jax.jit
    def translate(state, x, target):
        known = jnp.ones_like(target)
        fake = game.apply(state, "generator", _condition(x, target, known), use_ema=use_ema)
        return {"images": fake, "logits": game.apply(state, "discriminator", fake)[1]}
    return translate


def one_attribute_changed(attributes: np.ndarray, index: int) -> np.ndarray:
    """The labels with attribute `index` set (a colour: that colour, the others off) or
    flipped (a binary attribute)."""
    out = attributes.copy()
    if index < 3:
        out[:, :3] = 0.0
        out[:, index] = 1.0
    else:
        out[:, index] = 1.0 - out[:, index]
    return out


def sample_grids(config: ml_collections.ConfigDict, game: Game):
    """`state -> {"translations"}`: test images, then each image with one attribute
    changed (red, green, blue, texture flipped, stroke flipped), a row each."""
    test = held_out_examples(config, config.num_sample_images)
    translate = translate_fn(config, game)

    def grids(state):
        rows = [test["image"]]
        for index in range(config.stargan.num_attributes):
            target = one_attribute_changed(test["attributes"], index)
            rows.append(np.asarray(translate(state, test["image"], target)["images"]))
        return {"translations": translation.side_by_side_grid(rows, len(test["image"]))}
    return grids


def evaluate_attributes(config: ml_collections.ConfigDict, game: Game):
    """`state -> dict`: over test images each translated to every one-attribute change,
    the share of target attributes D_cls reads back (`target_attribute_accuracy`), and
    its accuracy on the real images' attributes (`real_attribute_accuracy`)."""
    s = config.stargan
    translate = translate_fn(config, game)
    read_attributes = jax.jit(lambda state, x: game.apply(state, "discriminator", x)[1])

    def evaluate(state):
        test = held_out_examples(config, s.eval_examples)
        hits, real_hits = [], []
        for start in range(0, len(test["image"]), s.eval_batch_size):
            x = test["image"][start:start + s.eval_batch_size]
            attrs = test["attributes"][start:start + s.eval_batch_size]
            real = np.asarray(read_attributes(state, x))
            real_hits.append((real > 0) == (attrs > 0.5))
            for index in range(s.num_attributes):
                target = one_attribute_changed(attrs, index)
                logits = np.asarray(translate(state, x, target)["logits"])
                hits.append((logits > 0) == (target > 0.5))
        return {"target_attribute_accuracy": float(np.concatenate(hits).mean()),
                "real_attribute_accuracy": float(np.concatenate(real_hits).mean()),
                "num_examples": int(len(test["image"])),
                "protocol": "each test image translated to each one-attribute change "
                            "(a colour set, texture or stroke flipped); the share of all "
                            "target attributes that the discriminator's classifier reads "
                            "back (logit > 0). An independent classifier, and the digit "
                            "kept, are the figures' measure."}
    return evaluate


FAMILY = register(Family(
    name="stargan", build_game=stargan_game, generator_inputs=None, section=config_section,
    validate=_validate, step_repeats=lambda config: {"discriminator": config.game.d_steps},
    sample_grids=sample_grids, evaluation=evaluate_attributes))
