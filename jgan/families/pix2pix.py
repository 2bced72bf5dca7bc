"""pix2pix (Isola, Zhu, Zhou and Efros 2017): a conditional GAN that translates an image
of domain A into its paired image of domain B.

Networks: G, the U-Net (`jgan.models.unet.UNet`; dropout its only noise, also at test
time); D, the PatchGAN (`jgan.models.patchgan.PatchGAN`) on the input and an output
concatenated along channels, one logit per patch. With x in A, y its pair in B:

  L_D = 1/2 [ l_D(D(x, y) real) + l_D(D(x, G(x)) fake) ]    (the paper halves D's
                                                             objective)
  L_G = l_G(D(x, G(x))) + lambda * mean |y - G(x)|           (lambda = 100)

l_D and l_G are the adversarial losses of `game.loss_type` (the paper's: the
non-saturating loss), averaged over patches (`jgan.objectives.losses`). With
`pix2pix.gan_weight = 0` the generator is the same U-Net trained with L1 alone, the
paper's ablation (blurry outputs).

Config: `config.pix2pix` (`config_section`); data: a paired translation task
(`data.kind = "translation"`, `jgan.data.domain_pairs`); teams "discriminator" and
"generator" with `optimizer.discriminator` / `optimizer.generator` (the paper: Adam
2e-4, b1 0.5). Runs write grids of test inputs, outputs and targets; eval.json's
"family_metrics" hold the test L1 error.
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
from jgan.models.patchgan import PatchGAN, receptive_field
from jgan.models.unet import NORMALIZATIONS, UNet
from jgan.objectives import losses

PAIRED_TASKS = ("edges2fashion", "folder_pairs")
TEAMS = ("discriminator", "generator")


def config_section() -> ml_collections.ConfigDict:
    """The family's section `config.pix2pix`, at its defaults (the paper's 256 px)."""
    c = ml_collections.ConfigDict()
    c.generator_width = 64
    c.generator_depth = 8           # halvings of the U-Net: 2^depth divides the resolution
    c.discriminator_width = 64
    c.discriminator_layers = 3      # stride-2 layers of the PatchGAN: 3 sees 70 x 70 px
    c.norm = "batch"                # batch | instance | none
    c.dropout = 0.5                 # the generator's noise, also at test time
    c.l1_weight = 100.0             # lambda
    c.gan_weight = 1.0              # 0: the L1-only U-Net (the paper's ablation)
    c.eval_examples = 1000          # test pairs of the final evaluation (0: all)
    c.eval_batch_size = 100
    return c


def _validate(config: ml_collections.ConfigDict) -> None:
    s, d = config.pix2pix, config.data
    require(d.name in PAIRED_TASKS, "data.name",
            f"pix2pix learns from pairs: one of {PAIRED_TASKS}, got {d.name!r}.")
    require(s.generator_depth >= 2, "pix2pix.generator_depth", "must be >= 2.")
    require(d.resolution % 2 ** s.generator_depth == 0, "data.resolution",
            f"the U-Net halves it pix2pix.generator_depth={s.generator_depth} times: needs a "
            f"multiple of {2 ** s.generator_depth}, got {d.resolution}.")
    require(s.discriminator_layers >= 1, "pix2pix.discriminator_layers", "must be >= 1.")
    require(min(s.generator_width, s.discriminator_width) >= 1, "pix2pix", "widths must be >= 1.")
    require(s.norm in NORMALIZATIONS, "pix2pix.norm",
            f"{s.norm!r} is not one of {NORMALIZATIONS}.")
    require(0.0 <= s.dropout < 1.0, "pix2pix.dropout", "must be in [0, 1).")
    require(s.l1_weight >= 0 and s.gan_weight >= 0, "pix2pix",
            "l1_weight and gan_weight must be >= 0.")
    require(s.eval_examples >= 0 and s.eval_batch_size >= 1, "pix2pix.eval_examples",
            "eval_examples >= 0 (0: all) and eval_batch_size >= 1.")
    translation.check_teams(config, "pix2pix", TEAMS)


def build_networks(config: ml_collections.ConfigDict) -> tuple[UNet, PatchGAN]:
    s = config.pix2pix
    return (UNet(out_channels=config.data.channels, width=s.generator_width,
                 depth=s.generator_depth, norm=s.norm, dropout=s.dropout),
            PatchGAN(width=s.discriminator_width, num_layers=s.discriminator_layers,
                     norm=s.norm))


def l1_error(target: jax.Array, output: jax.Array) -> jax.Array:
    """mean |target - output| over the batch and every pixel (images in [-1, 1])."""
    return jnp.mean(jnp.abs(target - output))


def pix2pix_game(config: ml_collections.ConfigDict) -> Game:
    """The two-team game of the module docstring; metrics `d_loss`, `g_loss`, `g_l1`
    and `g_gan`."""
    generator, discriminator = build_networks(config)
    s, loss_type = config.pix2pix, config.game.loss_type

    def judge(nets: Networks, x, y):
        return nets("discriminator", jnp.concatenate([x, y], axis=-1))

    def d_loss(nets: Networks, batch, rng):
        del rng
        x, y = batch["image_a"], batch["image_b"]
        fake = jax.lax.stop_gradient(nets("generator", x))
        real_logits, fake_logits = judge(nets, x, y), judge(nets, x, fake)
        loss = 0.5 * losses.discriminator_loss(real_logits=real_logits,
                                               fake_logits=fake_logits, loss_type=loss_type)
        return loss, {"d_real": jnp.mean(real_logits), "d_fake": jnp.mean(fake_logits)}

    def g_loss(nets: Networks, batch, rng):
        del rng
        x, y = batch["image_a"], batch["image_b"]
        fake = nets("generator", x)
        gan = losses.generator_loss(fake_logits=judge(nets, x, fake), loss_type=loss_type)
        l1 = l1_error(y, fake)
        return s.gan_weight * gan + s.l1_weight * l1, {"g_l1": l1, "g_gan": gan}

    def example_inputs(batch):
        x = batch["image_a"][:1]
        return {"generator": (x,), "discriminator": (jnp.concatenate([x, x], axis=-1),)}

    return Game(teams={"discriminator": translation.team(
                           config, "discriminator", {"discriminator": discriminator}, d_loss, "d"),
                       "generator": translation.team(
                           config, "generator", {"generator": generator}, g_loss, "g")},
                example_inputs=example_inputs)


def _translate_fn(config: ml_collections.ConfigDict, game: Game):
    """Jitted `(state, x) -> {"images": G(x)}` with the sampling weights (EMA where
    kept); dropout stays on, with a fixed key (pix2pix's test-time noise)."""
    use_ema = config.game.ema_decay is not None

    @jax.jit
    def translate(state, x):
        return {"images": game.apply(state, "generator", x, use_ema=use_ema)}
    return translate


def sample_grids(config: ml_collections.ConfigDict, game: Game):
    """`state -> {"translations": ...}`: test inputs, their translations and targets,
    a row of each per block."""
    n = config.num_sample_images
    test = translation.held_out_domains(config, n)
    translate = _translate_fn(config, game)
    columns = max(1, int(np.ceil(np.sqrt(n))))

    def grids(state):
        out = translation.batched(lambda chunk: translate(state, chunk), test["image_a"],
                                  min(config.pix2pix.eval_batch_size, len(test["image_a"])))
        return {"translations": translation.side_by_side_grid(
            [test["image_a"], out["images"], test["image_b"]], columns)}
    return grids


def evaluate_translations(config: ml_collections.ConfigDict, game: Game):
    """`state -> dict`: over the first `pix2pix.eval_examples` test pairs, `test_l1`,
    mean |y - G(x)| per pixel of the images in [-1, 1], with how it was measured."""
    s = config.pix2pix
    translate = _translate_fn(config, game)

    def evaluate(state):
        test = translation.held_out_domains(config, s.eval_examples)
        out = translation.batched(lambda chunk: translate(state, chunk), test["image_a"],
                                  min(s.eval_batch_size, len(test["image_a"])))
        l1 = np.abs(out["images"].astype(np.float64) - test["image_b"]).mean()
        return {"test_l1": float(l1), "num_examples": int(len(test["image_a"])),
                "split": config.eval.reference_split,
                "receptive_field": receptive_field(s.discriminator_layers),
                "protocol": "mean |y - G(x)| per pixel in [-1, 1] over the first "
                            "num_examples pairs of the split; G with its test-time dropout "
                            "(a fixed key) and the sampling weights (EMA where kept)."}
    return evaluate


def translator(config: ml_collections.ConfigDict, game: Game, direction: str):
    """`(state, x) -> [G(x)]` for `jgan.sample --input` (pix2pix translates A to B only)."""
    if direction != "a2b":
        raise ValueError("pix2pix translates A to B only (direction a2b).")
    translate = _translate_fn(config, game)
    return lambda state, x: [np.asarray(translate(state, x)["images"])]


FAMILY = register(Family(
    name="pix2pix", build_game=pix2pix_game, generator_inputs=None, section=config_section,
    validate=_validate, sample_grids=sample_grids, evaluation=evaluate_translations,
    translate=translator, input_kind="domain_pairs"))
