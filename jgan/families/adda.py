"""ADDA, adversarial discriminative domain adaptation (Tzeng, Hoffman, Saenko and
Darrell 2017): a classifier trained on a labelled source domain, carried to a target
domain whose labels it never sees.

Networks (the paper's for digits): LeNet encoders (conv 5x5 20, max-pool, ReLU, conv 5x5
50, dropout 0.5, max-pool, ReLU, dense 500), a linear classifier to 10 classes, a
domain discriminator of two hidden layers of 500 ReLU units. Two stages:

1. "pretrain": the source encoder M_s and classifier C minimize the cross-entropy of
   C(M_s(x_s)) against the source labels (team "source").
2. "adapt": the target encoder M_t starts from M_s (`Stage.carry_from`). The
   discriminator D learns to tell source features M_s(x_s) (label 1) from target
   features M_t(x_t) (label 0); M_t minimizes the inverted-label GAN loss
   -log D(M_t(x_t)), so its features look like the source's. M_s and C are frozen (their
   team's optimizer sets every update to zero; a test checks they never change).

The classifier then reads target encodings: eval.json's "family_metrics" give the
target test accuracy of C(M_t(x_t)), beside source-only C(M_s(x_t)) and the source test
accuracy C(M_s(x_s)). Target labels are read only there.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgan.core.game import Game, Networks, Team
from jgan.core.stages import Stage
from jgan.errors import require
from jgan.families import translation
from jgan.families.registry import Family, register
from jgan.objectives import losses
from jgan.optimizers import build_optimizer

TEAMS = ("source", "discriminator", "target_encoder")
UNLABELLED_TARGET_TASKS = ("mnist2digits8", "mnist2textured")


class LeNetEncoder(nn.Module):
    """`[B, 28, 28, C]` -> features `[B, features]` (the module docstring's LeNet)."""
    features: int = 500
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(20, (5, 5), padding="VALID")(x)
        x = nn.relu(nn.max_pool(x, (2, 2), strides=(2, 2)))
        x = nn.Conv(50, (5, 5), padding="VALID")(x)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = nn.relu(nn.max_pool(x, (2, 2), strides=(2, 2)))
        return nn.Dense(self.features)(x.reshape(x.shape[0], -1))


class DomainDiscriminator(nn.Module):
    """Features `[B, F]` -> one logit `[B]` of "source"."""
    hidden: tuple[int, ...] = (500, 500)

    @nn.compact
    def __call__(self, h):
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        return nn.Dense(1)(h)[:, 0]


def config_section() -> ml_collections.ConfigDict:
    """The family's section `config.adda`, at its defaults (the paper's digits)."""
    c = ml_collections.ConfigDict()
    c.pretrain_steps = 10_000
    c.adapt_steps = 10_000
    c.features = 500
    c.discriminator_hidden = (500, 500)
    c.pretrain_learning_rate = 1e-3
    c.eval_examples = 0            # target (and source) test examples (0: all)
    c.eval_batch_size = 500
    return c


def _validate(config: ml_collections.ConfigDict) -> None:
    s = config.adda
    require(config.data.name in UNLABELLED_TARGET_TASKS, "data.name",
            f"ADDA adapts between the labelled tasks {UNLABELLED_TARGET_TASKS}, got "
            f"{config.data.name!r}.")
    require(config.data.resolution == 28, "data.resolution", "LeNet reads 28 x 28 digits.")
    require(s.pretrain_steps >= 1 and s.adapt_steps >= 1, "adda",
            "pretrain_steps and adapt_steps must be >= 1.")
    require(config.num_steps == s.pretrain_steps + s.adapt_steps, "num_steps",
            f"{config.num_steps} is not adda.pretrain_steps + adda.adapt_steps = "
            f"{s.pretrain_steps + s.adapt_steps}.")
    require(s.features >= 1 and all(w >= 1 for w in s.discriminator_hidden), "adda",
            "features and discriminator_hidden widths must be >= 1.")
    require(s.eval_examples >= 0 and s.eval_batch_size >= 1, "adda.eval_examples",
            "eval_examples >= 0 (0: all) and eval_batch_size >= 1.")
    require(sorted(config.optimizer) == ["discriminator", "generator"], "optimizer",
            "ADDA adapts with optimizer.discriminator (D) and optimizer.generator (the "
            "target encoder); pretraining uses adda.pretrain_learning_rate.")
    g = config.game
    require(g.d_steps == 1 and g.gradient_penalty_weight == 0 and g.r1_gamma == 0, "game",
            "d_steps, gradient_penalty_weight and r1_gamma are GAN keys ADDA would ignore; "
            "leave them at 1, 0 and 0.")


def _networks(config):
    s = config.adda
    return {"encoder_source": LeNetEncoder(s.features), "classifier": nn.Dense(10),
            "encoder_target": LeNetEncoder(s.features),
            "discriminator": DomainDiscriminator(tuple(s.discriminator_hidden))}


def _classification_loss(nets: Networks, batch, rng):
    del rng
    logits = nets("classifier", nets("encoder_source", batch["image_a"]))
    labels = batch["label_a"]
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    return loss, {"source_accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}


def pretrain_game(config: ml_collections.ConfigDict) -> Game:
    """Stage 1: team "source" (M_s, C), cross-entropy on the source labels."""
    nets = _networks(config)
    optimizer = optax.adam(config.adda.pretrain_learning_rate)
    return Game(teams={"source": Team(
        networks={k: nets[k] for k in ("encoder_source", "classifier")},
        loss=_classification_loss, optimizer=optimizer)},
        example_inputs=lambda batch: {"encoder_source": (batch["image_a"][:1],),
                                      "classifier": (jnp.zeros((1, config.adda.features)),)})


def adapt_game(config: ml_collections.ConfigDict) -> Game:
    """Stage 2: teams "discriminator" (D) and "target_encoder" (M_t), M_s and C frozen."""
    nets = _networks(config)
    loss_type = "non_saturating"   # ADDA's inverted-label GAN loss

    def d_loss(n: Networks, batch, rng):
        del rng
        real = n("discriminator", jax.lax.stop_gradient(n("encoder_source", batch["image_a"])))
        fake = n("discriminator", jax.lax.stop_gradient(n("encoder_target", batch["image_b"])))
        loss = losses.discriminator_loss(real_logits=real, fake_logits=fake, loss_type=loss_type)
        accuracy = 0.5 * (jnp.mean(real > 0) + jnp.mean(fake < 0))
        return loss, {"d_domain_accuracy": accuracy}

    def t_loss(n: Networks, batch, rng):
        del rng
        fake = n("discriminator", n("encoder_target", batch["image_b"]))
        return losses.generator_loss(fake_logits=fake, loss_type=loss_type), {}

    def frozen(n, batch, rng):
        del n, batch, rng
        return jnp.zeros(()), {}

    def example_inputs(batch):
        x, h = batch["image_a"][:1], jnp.zeros((1, config.adda.features))
        return {"encoder_source": (x,), "encoder_target": (x,), "classifier": (h,),
                "discriminator": (h,)}

    def optimizer(name):
        return build_optimizer(config.optimizer[name], config.adda.adapt_steps)

    return Game(teams={
        "discriminator": Team(networks={"discriminator": nets["discriminator"]}, loss=d_loss,
                              optimizer=optimizer("discriminator"), metrics_prefix="d"),
        "target_encoder": Team(networks={"encoder_target": nets["encoder_target"]},
                               loss=t_loss, optimizer=optimizer("generator"),
                               metrics_prefix="t"),
        # Frozen: a zero loss, and every update set to zero.
        "source": Team(networks={k: nets[k] for k in ("encoder_source", "classifier")},
                       loss=frozen, optimizer=optax.set_to_zero(), metrics_prefix="frozen"),
    }, example_inputs=example_inputs)


def build_stages(config: ml_collections.ConfigDict) -> tuple[Stage, ...]:
    s = config.adda
    return (Stage(name="pretrain", game=pretrain_game(config), num_steps=s.pretrain_steps),
            Stage(name="adapt", game=adapt_game(config), num_steps=s.adapt_steps,
                  carry_from={"encoder_target": "encoder_source"}))


def _accuracy_fn(game: Game):
    @jax.jit
    def predictions(state, x):
        return {name: jnp.argmax(game.apply(state, "classifier", game.apply(state, name, x)), -1)
                for name in ("encoder_source", "encoder_target")}
    return predictions


def evaluate_adaptation(config: ml_collections.ConfigDict, game: Game):
    """`state -> dict`: target test accuracy of C(M_t(x_t)) ("target_accuracy"), of
    source-only C(M_s(x_t)) ("source_only_accuracy"), and source test accuracy."""
    s = config.adda
    predict = _accuracy_fn(game)

    def evaluate(state):
        test = translation.held_out_domains(config, s.eval_examples)
        out = {"split": config.eval.reference_split}
        for domain in ("a", "b"):
            x, labels = test[f"image_{domain}"], test[f"label_{domain}"]
            p = translation.batched(lambda chunk: predict(state, chunk), x,
                                    min(s.eval_batch_size, len(x)))
            if domain == "a":
                out["source_accuracy"] = float(np.mean(p["encoder_source"] == labels))
            else:
                out["target_accuracy"] = float(np.mean(p["encoder_target"] == labels))
                out["source_only_accuracy"] = float(np.mean(p["encoder_source"] == labels))
            out[f"num_examples_{domain}"] = int(len(x))
        out["protocol"] = ("accuracy of the source classifier on the test split: source "
                           "images through the source encoder; target images through the "
                           "adapted target encoder (target_accuracy) and through the source "
                           "encoder (source_only_accuracy).")
        return out
    return evaluate


FAMILY = register(Family(
    name="adda", build_game=adapt_game, generator_inputs=None, section=config_section,
    validate=_validate, build_stages=build_stages, evaluation=evaluate_adaptation,
    sample_grids=lambda config, game: (lambda state: {}), input_kind="domain_pairs"))
