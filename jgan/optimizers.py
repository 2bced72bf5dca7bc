"""A team's optimizer from its config section: `optimizer.<team>.{name, learning_rate,
schedule, b1, b2, clip_weights}`.

Every team of a game has its own section, so two learning rates (TTUR, Heusel et al.
2017) are `optimizer.generator.learning_rate` and `optimizer.discriminator.learning_rate`,
and a one-team family (an autoencoder) has one section named after its team.
"""
from __future__ import annotations

import ml_collections
import optax

from jgan.errors import require
from jgan.objectives import constraints

__all__ = ["OPTIMIZERS", "SCHEDULES", "build_optimizer", "validate_optimizer"]

OPTIMIZERS = ("adam", "rmsprop", "sgd")
SCHEDULES = ("constant", "linear_decay")


def validate_optimizer(opt: ml_collections.ConfigDict, team: str) -> None:
    """Checks `optimizer.<team>`'s values; raises ConfigError naming the key."""
    require(opt.name in OPTIMIZERS, f"optimizer.{team}.name",
            f"{opt.name!r} is not one of {OPTIMIZERS}.")
    require(opt.learning_rate > 0, f"optimizer.{team}.learning_rate", "must be > 0.")
    require(opt.schedule in SCHEDULES, f"optimizer.{team}.schedule",
            f"{opt.schedule!r} is not one of {SCHEDULES}.")
    require(opt.clip_weights >= 0, f"optimizer.{team}.clip_weights", "must be >= 0.")


def build_optimizer(opt: ml_collections.ConfigDict, num_steps: int, *,
                    optimistic: bool = False) -> optax.GradientTransformation:
    """optax optimizer from `{name, learning_rate, schedule, b1, b2, clip_weights}`.

    `schedule`: "constant", or "linear_decay" from `learning_rate` to 0 over the last
    half of `num_steps` (the number of updates this optimizer makes: a team's optimizer
    counts its own updates).
    `optimistic`: the optimistic variant for `update_rule="optimistic"` (Daskalakis et al.
    2018), u_t -> 2 u_t - u_{t-1} on the optimizer's update u: `optax.
    optimistic_gradient_descent` for sgd (OGD), `optax.optimistic_adam_v2` without
    Nesterov for adam (the paper's Optimistic Adam), the same on RMSProp's scaling.
    """
    lr = opt.learning_rate
    if opt.schedule == "linear_decay":
        half = max(num_steps // 2, 1)
        lr = optax.join_schedules([optax.constant_schedule(opt.learning_rate),
                                   optax.linear_schedule(opt.learning_rate, 0.0, half)], [half])
    tx = _optimistic(opt, lr) if optimistic else _plain(opt, lr)
    if opt.clip_weights:
        tx = optax.chain(tx, constraints.clip_weights(opt.clip_weights))
    return tx


def _plain(opt, lr) -> optax.GradientTransformation:
    if opt.name == "adam":
        return optax.adam(lr, b1=opt.b1, b2=opt.b2)
    if opt.name == "rmsprop":
        return optax.rmsprop(lr)
    return optax.sgd(lr)


def _optimistic(opt, lr) -> optax.GradientTransformation:
    if opt.name == "adam":
        return optax.optimistic_adam_v2(lr, alpha=1.0, beta=1.0, b1=opt.b1, b2=opt.b2,
                                        nesterov=False)
    if opt.name == "rmsprop":
        return optax.chain(optax.scale_by_rms(), optax.scale_by_optimistic_gradient(),
                           optax.scale_by_learning_rate(lr))
    return optax.optimistic_gradient_descent(lr)
