"""Augmenting what the discriminator sees, for GANs trained on a few hundred images.

A discriminator trained on a small set memorizes it: its outputs on the training
images drift away from those on held-out ones, and the generator's signal degrades.
DiffAugment (Zhao et al. 2020) and ADA (Karras et al. 2020) augment every image the
discriminator sees, real and generated, in both players' losses, with transformations
differentiable w.r.t. the images (`jgan.diff_augment`): D cannot memorize the
augmented set, and G, trained through the same transformations, is matched to the
real images in distribution after augmentation. Whether the augmentations then "leak"
into G's samples depends on p: Karras et al. find that below p of about 0.8 they do
not, which is why ADA tunes p instead of fixing it at 1 as DiffAugment does.

A family that supports it holds `augment_section()` in its own section (e.g.
`config.stylegan.augment`) and calls an `Augmenter` on every batch before D:

    policy: "" (off: D sees the images as they are), or groups of
        `jgan.diff_augment.AUGMENTATIONS`, e.g. "color,translation,cutout".
    ada: False: each group applied with the fixed `probability` (1.0: DiffAugment).
        True: p starts at `probability` and is tuned by ADA's heuristic
        r_t = E[sign D(x_real)] over the real logits of `ada_interval` D steps: p rises
        by batch_size * ada_interval / ada_speed_images when r_t > ada_target and falls
        otherwise. p and its statistics are the state's `extras["augment"]`
        (`jgan.diff_augment.AdaState`), checkpointed and resumed exactly.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jgan import diff_augment
from jgan.core.game import Networks
from jgan.errors import require

EXTRAS_KEY = "augment"


def augment_section() -> ml_collections.ConfigDict:
    """The augmentation keys of a family's section, off (policy "")."""
    c = ml_collections.ConfigDict()
    c.policy = ""                  # "" off; e.g. "color,translation,cutout" (DiffAugment)
    c.probability = 1.0            # each group's p (ADA: its starting value)
    c.ada = False                  # tune p by ADA's overfitting heuristic
    c.ada_target = 0.6
    c.ada_interval = 4             # D steps between adjustments
    c.ada_speed_images = 500_000   # real images for p to cross [0, 1]
    return c


def validate_section(section: ml_collections.ConfigDict, prefix: str) -> None:
    """Raises `ConfigError` naming `prefix.<key>` for a bad augmentation setting."""
    try:
        diff_augment.parse_policy(section.policy)
    except ValueError as e:
        require(False, f"{prefix}.policy", str(e))
    require(0.0 <= section.probability <= 1.0, f"{prefix}.probability",
            f"a probability in [0, 1], got {section.probability}.")
    require(not section.ada or bool(section.policy.strip()), f"{prefix}.ada",
            "ADA tunes the probability of the policy's groups: set a policy too.")
    require(section.ada_interval >= 1 and section.ada_speed_images >= 1,
            f"{prefix}.ada_interval", "ada_interval and ada_speed_images must be >= 1.")
    require(0.0 <= section.ada_target <= 1.0, f"{prefix}.ada_target",
            f"r_t's target in [0, 1], got {section.ada_target}.")


class Augmenter:
    """A family's augmentation of D's inputs, from its `augment` section.

    `augmenter(nets, images, rng)` augments a batch `[B, H, W, C]` (identity when the
    policy is off); `augmenter.observe(nets, real_logits)` feeds ADA's heuristic from
    D's loss (a no-op without ADA); `augmenter.init_extras()` is the extras entry the
    game must declare ({} without ADA).
    """

    def __init__(self, section: ml_collections.ConfigDict, *, batch_size: int):
        # Read now: the losses must not see later changes to the config.
        self.policy = section.policy.strip()
        self.probability = float(section.probability)
        self.ada = bool(section.ada) and bool(self.policy)
        self.target = float(section.ada_target)
        self.interval = int(section.ada_interval)
        self.speed_images = int(section.ada_speed_images)
        self.batch_size = int(batch_size)

    @property
    def enabled(self) -> bool:
        return bool(self.policy)

    def init_extras(self) -> dict:
        """`{"augment": AdaState}` with p at its start, or {} when p is fixed."""
        return {EXTRAS_KEY: diff_augment.ada_init(self.probability)} if self.ada else {}

    def current_probability(self, nets: Networks) -> jax.Array | float:
        """p for this step: the state's tuned value (ADA) or the fixed one."""
        if self.ada:
            return nets.extras[EXTRAS_KEY].probability
        return self.probability

    def __call__(self, nets: Networks, images: jax.Array, rng: jax.Array) -> jax.Array:
        if not self.enabled:
            return images
        return diff_augment.diff_augment(rng, images, policy=self.policy,
                                         probability=self.current_probability(nets))

    def observe(self, nets: Networks, real_logits: jax.Array) -> dict:
        """Adds the real logits' signs to ADA's statistics and, every `interval` D steps
        (counted by the state's step), adjusts p; returns metrics `augment_p` and (ADA)
        `ada_rt`, the heuristic before this step's adjustment."""
        if not self.enabled:
            return {}
        if not self.ada:
            return {"augment_p": jnp.asarray(self.probability, jnp.float32)}
        state = diff_augment.ada_accumulate(nets.extras[EXTRAS_KEY], real_logits)
        adjusted = diff_augment.ada_adjust(state, target=self.target,
                                           batch_size=self.batch_size,
                                           interval=self.interval,
                                           speed_images=self.speed_images)
        due = (nets.step + 1) % self.interval == 0
        nets.update_extras(**{EXTRAS_KEY: jax.tree.map(
            lambda a, b: jnp.where(due, a, b), adjusted, state)})
        return {"augment_p": state.probability, "ada_rt": diff_augment.ada_heuristic(state)}
