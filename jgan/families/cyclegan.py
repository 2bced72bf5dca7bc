"""CycleGAN (Zhu, Park, Isola and Efros 2017): translation between two unpaired domains.

Networks: two ResNet generators G: A -> B and F: B -> A (`jgan.models.resnet_translator`,
one team "generator"), two PatchGAN discriminators D_B on B and D_A on A
(`jgan.models.patchgan`, one team "discriminator"). With a in A, b in B and l_D, l_G
the adversarial losses of `game.loss_type` (CycleGAN: least squares):

  L_gen  = l_G(D_B(G(a))) + l_G(D_A(F(b)))
           + lambda (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)              (cycle, lambda = 10)
           + lambda_id lambda (|G(b) - b|_1 + |F(a) - a|_1)           (identity, 0.5)
  L_disc = 1/2 l_D(D_B(b), D_B(pool_B(G(a)))) + 1/2 l_D(D_A(a), D_A(pool_A(F(b))))

|.|_1 is the mean absolute error per pixel. The generators update first, then the
discriminators, which judge fakes of the updated generators drawn through the image
pools of 50 (`jgan.families.image_pool`; kept in the state's extras, so a resumed run
has the same history). The learning rate is constant for the first half of the run and
then decays linearly to zero (`optimizer.*.schedule = "linear_decay"`).

Runs write grids a -> G(a) -> F(G(a)) and b -> F(b) -> G(F(b)); eval.json's
"family_metrics" hold the test cycle errors of both directions.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan.core.game import Game, Networks
from jgan.errors import require
from jgan.families import translation
from jgan.families.image_pool import empty_pool, query_pool
from jgan.families.registry import Family, register
from jgan.models.patchgan import PatchGAN
from jgan.models.resnet_translator import ResnetTranslator
from jgan.models.unet import NORMALIZATIONS
from jgan.objectives import losses

TEAMS = ("generator", "discriminator")
GENERATORS = {"a2b": "generator_a2b", "b2a": "generator_b2a"}
DISCRIMINATORS = {"a": "discriminator_a", "b": "discriminator_b"}


def config_section() -> ml_collections.ConfigDict:
    """The family's section `config.cyclegan`, at its defaults (the paper's 256 px)."""
    c = ml_collections.ConfigDict()
    c.generator_width = 64
    c.generator_blocks = 9          # 6 at 128 px, 9 at 256 px
    c.discriminator_width = 64
    c.discriminator_layers = 3      # 70 x 70 patches
    c.norm = "instance"
    c.cycle_weight = 10.0           # lambda
    c.identity_weight = 0.5         # lambda_id, times lambda; 0: no identity loss
    c.pool_size = 50
    c.eval_examples = 1000
    c.eval_batch_size = 100
    return c


def _validate(config: ml_collections.ConfigDict) -> None:
    s = config.cyclegan
    require(config.data.resolution % 4 == 0, "data.resolution",
            f"the generators halve it twice: needs a multiple of 4, got {config.data.resolution}.")
    require(s.generator_blocks >= 1 and s.discriminator_layers >= 1, "cyclegan",
            "generator_blocks and discriminator_layers must be >= 1.")
    require(min(s.generator_width, s.discriminator_width) >= 1, "cyclegan", "widths must be >= 1.")
    require(s.norm in NORMALIZATIONS, "cyclegan.norm",
            f"{s.norm!r} is not one of {NORMALIZATIONS}.")
    require(s.cycle_weight >= 0 and s.identity_weight >= 0, "cyclegan",
            "cycle_weight and identity_weight must be >= 0.")
    require(s.pool_size >= 1, "cyclegan.pool_size", "must be >= 1.")
    require(s.eval_examples >= 0 and s.eval_batch_size >= 1, "cyclegan.eval_examples",
            "eval_examples >= 0 (0: all) and eval_batch_size >= 1.")
    translation.check_teams(config, "cyclegan", TEAMS)


def l1(x: jax.Array, y: jax.Array) -> jax.Array:
    """mean |x - y| over the batch and every pixel."""
    return jnp.mean(jnp.abs(x - y))


def _generator_loss(config):
    s, loss_type = config.cyclegan, config.game.loss_type

    def loss(nets: Networks, batch, rng):
        del rng
        a, b = batch["image_a"], batch["image_b"]
        fake_b, fake_a = nets(GENERATORS["a2b"], a), nets(GENERATORS["b2a"], b)
        gan = (losses.generator_loss(fake_logits=nets(DISCRIMINATORS["b"], fake_b),
                                     loss_type=loss_type)
               + losses.generator_loss(fake_logits=nets(DISCRIMINATORS["a"], fake_a),
                                       loss_type=loss_type))
        cycle = l1(nets(GENERATORS["b2a"], fake_b), a) + l1(nets(GENERATORS["a2b"], fake_a), b)
        total = gan + s.cycle_weight * cycle
        metrics = {"g_gan": gan, "g_cycle": cycle}
        if s.identity_weight:
            identity = l1(nets(GENERATORS["a2b"], b), b) + l1(nets(GENERATORS["b2a"], a), a)
            total += s.identity_weight * s.cycle_weight * identity
            metrics["g_identity"] = identity
        return total, metrics
    return loss


def _discriminator_loss(config):
    loss_type = config.game.loss_type

    def loss(nets: Networks, batch, rng):
        a, b = batch["image_a"], batch["image_b"]
        fakes = {"b": nets(GENERATORS["a2b"], a), "a": nets(GENERATORS["b2a"], b)}
        reals = {"a": a, "b": b}
        total, metrics, pools = 0.0, {}, {}
        for i, domain in enumerate(("a", "b")):
            shown, pools[f"pool_{domain}"] = query_pool(
                nets.extras[f"pool_{domain}"], fakes[domain], jax.random.fold_in(rng, i))
            d = DISCRIMINATORS[domain]
            real_logits, fake_logits = nets(d, reals[domain]), nets(d, shown)
            total += 0.5 * losses.discriminator_loss(
                real_logits=real_logits, fake_logits=fake_logits, loss_type=loss_type)
            metrics[f"d_{domain}_real"] = jnp.mean(real_logits)
            metrics[f"d_{domain}_fake"] = jnp.mean(fake_logits)
        nets.update_extras(**pools)
        return total, metrics
    return loss


def cyclegan_game(config: ml_collections.ConfigDict) -> Game:
    """The two-team game of the module docstring; metrics `g_loss`, `g_gan`, `g_cycle`,
    `g_identity`, `d_loss` and each discriminator's mean logits."""
    s, channels = config.cyclegan, config.data.channels
    generators = {name: ResnetTranslator(out_channels=channels, width=s.generator_width,
                                         num_blocks=s.generator_blocks, norm=s.norm)
                  for name in GENERATORS.values()}
    discriminators = {name: PatchGAN(width=s.discriminator_width,
                                     num_layers=s.discriminator_layers, norm=s.norm)
                      for name in DISCRIMINATORS.values()}

    def example_inputs(batch):
        a = batch["image_a"][:1]
        return {name: (a,) for name in (*GENERATORS.values(), *DISCRIMINATORS.values())}

    def init_extras(batch):
        shape = batch["image_a"].shape[1:]
        return {"pool_a": empty_pool(s.pool_size, shape), "pool_b": empty_pool(s.pool_size, shape)}

    return Game(teams={"generator": translation.team(
                           config, "generator", generators, _generator_loss(config), "g"),
                       "discriminator": translation.team(
                           config, "discriminator", discriminators,
                           _discriminator_loss(config), "d")},
                example_inputs=example_inputs, init_extras=init_extras)


def _cycle_fn(config: ml_collections.ConfigDict, game: Game, direction: str):
    """Jitted `(state, x) -> {"translated", "cycled"}` for "a2b" (G then F) or "b2a"."""
    use_ema = config.game.ema_decay is not None
    there, back = GENERATORS[direction], GENERATORS["b2a" if direction == "a2b" else "a2b"]

    @jax.jit
    def cycle(state, x):
        translated = game.apply(state, there, x, use_ema=use_ema)
        return {"translated": translated,
                "cycled": game.apply(state, back, translated, use_ema=use_ema)}
    return cycle


def sample_grids(config: ml_collections.ConfigDict, game: Game):
    """`state -> {"a2b", "b2a"}`: test images, their translations and the translations
    back, a row of each per block."""
    n = config.num_sample_images
    test = translation.held_out_domains(config, n)
    columns = max(1, int(np.ceil(np.sqrt(n))))
    cycles = {d: _cycle_fn(config, game, d) for d in GENERATORS}

    def grids(state):
        out = {}
        for direction, source in (("a2b", "a"), ("b2a", "b")):
            x = test[f"image_{source}"]
            result = translation.batched(lambda chunk: cycles[direction](state, chunk), x,
                                         min(config.cyclegan.eval_batch_size, len(x)))
            out[direction] = translation.side_by_side_grid(
                [x, result["translated"], result["cycled"]], columns)
        return out
    return grids


def evaluate_cycles(config: ml_collections.ConfigDict, game: Game):
    """`state -> dict`: over the first `cyclegan.eval_examples` test images of each
    domain, `cycle_l1_a` = mean |F(G(a)) - a| and `cycle_l1_b` = mean |G(F(b)) - b| per
    pixel in [-1, 1]."""
    s = config.cyclegan
    cycles = {d: _cycle_fn(config, game, d) for d in GENERATORS}

    def evaluate(state):
        test = translation.held_out_domains(config, s.eval_examples)
        out = {"split": config.eval.reference_split}
        for direction, source in (("a2b", "a"), ("b2a", "b")):
            x = test[f"image_{source}"]
            cycled = translation.batched(lambda chunk: cycles[direction](state, chunk), x,
                                         min(s.eval_batch_size, len(x)))["cycled"]
            out[f"cycle_l1_{source}"] = float(np.abs(cycled.astype(np.float64) - x).mean())
            out[f"num_examples_{source}"] = int(len(x))
        out["protocol"] = ("mean |F(G(a)) - a| and |G(F(b)) - b| per pixel in [-1, 1] over "
                           "the first num_examples test images of each domain, with the "
                           "sampling weights (EMA where kept).")
        return out
    return evaluate


def translator(config: ml_collections.ConfigDict, game: Game, direction: str):
    """`(state, x) -> [translation, the way back]` for `jgan.sample --input`."""
    if direction not in GENERATORS:
        raise ValueError(f"direction {direction!r} is not one of {tuple(GENERATORS)}.")
    cycle = _cycle_fn(config, game, direction)

    def translate(state, x):
        out = cycle(state, x)
        return [np.asarray(out["translated"]), np.asarray(out["cycled"])]
    return translate


FAMILY = register(Family(
    name="cyclegan", build_game=cyclegan_game, generator_inputs=None, section=config_section,
    validate=_validate, sample_grids=sample_grids, evaluation=evaluate_cycles,
    translate=translator, input_kind="domain_pairs"))
