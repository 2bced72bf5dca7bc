"""Games of any number of named teams (jgan.core): order, repeats, simultaneous updates,
gradients only into a team's own parameters, extras state, `Game.apply`, and that a
step is a plain function compiled once.

The references are hand-computed: every network is one trainable scalar, every loss a
quadratic, every optimizer SGD, so each update is w <- w - lr * dL/dw in closed form.
"""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgan.core.game import Game, Team
from jgan.core.steps import make_step
from jgan.dynamics.bilinear import Scalar
from jgan.checkpoints import RunCheckpoints

LR = 0.1


def value(state, team, network=None):
    return float(state.teams[team].params[network or team]["value"])




def team(name, init, loss, **kwargs):
    return Team(networks={name: Scalar(init)}, loss=loss, optimizer=optax.sgd(LR), **kwargs)


def chain_game(a0=1.0, b0=2.0, c0=3.0, **game_kwargs):
    """Three teams: a pulls towards 0.5, b towards a, c towards b + a."""
    return Game(teams={
        "a": team("a", a0, lambda nets, batch, rng: ((nets("a") - 0.5) ** 2, {})),
        "b": team("b", b0, lambda nets, batch, rng: ((nets("b") - nets("a")) ** 2,
                                                      {"b_gap": nets("b") - nets("a")})),
        "c": team("c", c0, lambda nets, batch, rng: ((nets("c") - nets("b") - nets("a")) ** 2, {})),
    }, example_inputs=lambda batch: {"a": (), "b": (), "c": ()}, **game_kwargs)


def sgd(w, target):
    return w - LR * 2.0 * (w - target)


def test_one_team_game_is_gradient_descent_on_its_loss():
    game = Game(teams={"fit": team("w", 0.0, lambda nets, batch, rng: (
        jnp.mean((nets("w") - batch["x"]) ** 2), {}))},
                example_inputs=lambda batch: {"w": ()})
    state = game.init(jax.random.key(0), {"x": jnp.zeros(4)})
    x = jnp.asarray([1.0, 2.0, 3.0, 6.0])
    step = jax.jit(make_step(game))
    w = 0.0
    for _ in range(3):
        state, metrics = step(state, {"x": x})
        grad = 2.0 * (w - 3.0)                               # d/dw mean (w - x)^2
        np.testing.assert_allclose(metrics["fit_grad_norm"], abs(grad), rtol=1e-6)
        w -= LR * grad
        np.testing.assert_allclose(value(state, "fit", "w"), w, rtol=1e-6)
    assert set(metrics) == {"fit_loss", "fit_grad_norm"} and int(state.step) == 3


def test_alternating_updates_follow_the_game_order_against_the_newest_params():
    game = chain_game()
    state = game.init(jax.random.key(0), {})
    new, metrics = jax.jit(make_step(game))(state, {})
    a = sgd(1.0, 0.5)
    b = sgd(2.0, a)            # against the new a
    c = sgd(3.0, b + a)        # against the new a and b
    for name, want in (("a", a), ("b", b), ("c", c)):
        np.testing.assert_allclose(value(new, name), want, rtol=1e-6)
    np.testing.assert_allclose(metrics["b_loss"], (2.0 - a) ** 2, rtol=1e-6)
    np.testing.assert_allclose(metrics["b_gap"], 2.0 - a, rtol=1e-6)
    assert set(metrics) == {"a_loss", "a_grad_norm", "b_loss", "b_grad_norm", "b_gap",
                            "c_loss", "c_grad_norm"}


def test_simultaneous_updates_take_every_gradient_at_the_old_point():
    game = chain_game()
    new, _ = jax.jit(make_step(game, update_rule="simultaneous"))(game.init(jax.random.key(0), {}), {})
    for name, want in (("a", sgd(1.0, 0.5)), ("b", sgd(2.0, 1.0)), ("c", sgd(3.0, 3.0))):
        np.testing.assert_allclose(value(new, name), want, rtol=1e-6)


def test_repeats_update_a_team_several_times_on_the_last_slices():
    # b takes 3 updates, one per slice, each towards the slice's mean of x; a and c once,
    # on the last slice.
    game = Game(teams={
        "a": team("a", 0.0, lambda nets, batch, rng: (jnp.mean((nets("a") - batch["x"]) ** 2), {})),
        "b": team("b", 0.0, lambda nets, batch, rng: (jnp.mean((nets("b") - batch["x"]) ** 2), {})),
    }, example_inputs=lambda batch: {"a": (), "b": ()})
    x = jnp.arange(6, dtype=jnp.float32)      # slices: [0, 3], [1, 4], [2, 5]
    new, metrics = jax.jit(make_step(game, repeats={"b": 3}))(game.init(jax.random.key(0), {}),
                                                              {"x": x})
    b, losses = 0.0, []
    for i in range(3):
        losses.append(np.mean((b - x[i::3]) ** 2))
        b = sgd(b, float(np.mean(x[i::3])))
    np.testing.assert_allclose(value(new, "b"), b, rtol=1e-6)
    np.testing.assert_allclose(value(new, "a"), sgd(0.0, 3.5), rtol=1e-6)   # last slice
    np.testing.assert_allclose(metrics["b_loss"], np.mean(losses), rtol=1e-6)


def test_a_loss_reaching_another_teams_network_moves_only_its_own():
    # a's loss depends on b, but only a's parameters move with a's gradient; b's loss is 0.
    game = Game(teams={
        "a": team("a", 1.0, lambda nets, batch, rng: (nets("a") * nets("b") ** 2, {})),
        "b": team("b", 2.0, lambda nets, batch, rng: (0.0 * nets("b"), {})),
    }, example_inputs=lambda batch: {"a": (), "b": ()})
    new, metrics = jax.jit(make_step(game))(game.init(jax.random.key(0), {}), {})
    np.testing.assert_allclose(value(new, "a"), 1.0 - LR * 4.0, rtol=1e-6)
    assert value(new, "b") == 2.0 and float(metrics["b_grad_norm"]) == 0.0


def test_two_networks_in_one_team_share_its_optimizer():
    game = Game(teams={"pair": Team(networks={"u": Scalar(1.0), "v": Scalar(-1.0)},
                                    loss=lambda nets, batch, rng: (nets("u") ** 2 + nets("v") ** 2, {}),
                                    optimizer=optax.sgd(LR))},
                example_inputs=lambda batch: {"u": (), "v": ()})
    new, metrics = jax.jit(make_step(game))(game.init(jax.random.key(0), {}), {})
    np.testing.assert_allclose(value(new, "pair", "u"), 1.0 - 2 * LR, rtol=1e-6)
    np.testing.assert_allclose(value(new, "pair", "v"), -1.0 + 2 * LR, rtol=1e-6)
    np.testing.assert_allclose(metrics["pair_grad_norm"], np.sqrt(8.0), rtol=1e-6)


def test_ema_is_kept_per_team():
    game = Game(teams={"a": team("a", 1.0, lambda nets, batch, rng: (nets("a") ** 2, {}),
                                 ema_decay=0.5),
                       "b": team("b", 1.0, lambda nets, batch, rng: (nets("b") ** 2, {}))},
                example_inputs=lambda batch: {"a": (), "b": ()})
    state = game.init(jax.random.key(0), {})
    assert set(state.ema) == {"a"}
    new, _ = jax.jit(make_step(game))(state, {})
    a = 1.0 - LR * 2.0
    np.testing.assert_allclose(float(new.ema["a"]["a"]["value"]), 0.5 * 1.0 + 0.5 * a, rtol=1e-6)
    np.testing.assert_allclose(float(game.apply(new, "a", use_ema=True)), 0.5 + 0.5 * a,
                               rtol=1e-6)
    np.testing.assert_allclose(float(game.apply(new, "a")), a, rtol=1e-6)
    np.testing.assert_allclose(float(game.apply(new, "b", use_ema=True)), value(new, "b"))



def test_apply_passes_train_only_to_a_method_that_takes_it():
    # An encoder's `features(x)` has no `train`, though its `__call__` has one.
    from jgan.models import ConvEncoder
    encoder = ConvEncoder(latent_dim=3, width=2, dense_hidden=0, variational=True)
    game = Game(teams={"ae": Team(networks={"encoder": encoder},
                                  loss=lambda nets, batch, rng: (0.0, {}),
                                  optimizer=optax.sgd(LR))},
                example_inputs=lambda batch: {"encoder": (jnp.zeros((1, 28, 28, 1)),)})
    state = game.init(jax.random.key(0), {})
    x = jnp.ones((2, 28, 28, 1))
    mean, _ = game.apply(state, "encoder", x)
    np.testing.assert_array_equal(game.apply(state, "encoder", x, method="features"), mean)
    np.testing.assert_array_equal(
        game.apply(state, "encoder", x, method=lambda m, x: m.features(x)), mean)

def counting_game():
    """Extras: a running count written by a's loss, and an alpha ramped by the step."""
    def a_loss(nets, batch, rng):
        nets.update_extras(seen=nets.extras["seen"] + batch["x"].shape[0])
        return (nets("a") - nets.extras["alpha"]) ** 2, {}

    def b_loss(nets, batch, rng):
        # b reads the count a's update just wrote (alternating: a is updated first).
        return (nets("b") - nets.extras["seen"].astype(jnp.float32)) ** 2, {}

    return Game(teams={"a": team("a", 0.0, a_loss), "b": team("b", 0.0, b_loss)},
                example_inputs=lambda batch: {"a": (), "b": ()},
                init_extras=lambda batch: {"seen": jnp.zeros((), jnp.int32),
                                           "alpha": jnp.zeros((), jnp.float32)},
                advance_extras=lambda extras, step: {
                    **extras, "alpha": jnp.minimum(1.0, (step + 1) / 4.0).astype(jnp.float32)})


def test_extras_are_written_by_losses_and_advanced_by_the_step():
    game = counting_game()
    batch = {"x": jnp.zeros(3)}
    state = game.init(jax.random.key(0), batch)
    step = jax.jit(make_step(game))
    a = b = 0.0
    for t in range(3):
        a = sgd(a, min(1.0, t / 4.0))          # alpha before this step's advance
        b = sgd(b, 3.0 * (t + 1))              # the count after a's update
        state, _ = step(state, batch)
        np.testing.assert_allclose([value(state, "a"), value(state, "b")], [a, b], rtol=1e-6)
        assert int(state.extras["seen"]) == 3 * (t + 1)
        np.testing.assert_allclose(float(state.extras["alpha"]), min(1.0, (t + 1) / 4.0))


def test_extras_updates_are_checked():
    def bad_loss(nets, batch, rng):
        nets.update_extras(seen=jnp.zeros((2,), jnp.int32))
        return nets("a") ** 2, {}

    def unknown_loss(nets, batch, rng):
        nets.update_extras(pool=jnp.zeros(()))
        return nets("a") ** 2, {}

    for loss, error, match in ((bad_loss, ValueError, r"extras\['seen'\].*shape \(2,\)"),
                               (unknown_loss, KeyError, "pool")):
        game = Game(teams={"a": team("a", 0.0, loss)}, example_inputs=lambda batch: {"a": ()},
                    init_extras=lambda batch: {"seen": jnp.zeros((), jnp.int32)})
        with pytest.raises(error, match=match):
            jax.jit(make_step(game))(game.init(jax.random.key(0), {}), {})


def saved_and_restored(directory, tree, game, batch):
    """`tree` saved as a run's checkpoint, then restored into `game`'s state layout."""
    ckpts = RunCheckpoints(directory)
    ckpts.save(1, tree, {"kind": "test"})
    ckpts.wait()
    restored = ckpts.restore_state(1, jax.eval_shape(game.init, jax.random.key(0), batch))
    ckpts.close()
    return restored


def test_extras_survive_a_checkpoint(tmp_path):
    game = counting_game()
    batch = {"x": jnp.zeros(3)}
    state = game.init(jax.random.key(0), batch)
    step = jax.jit(make_step(game))
    for _ in range(2):
        state, _ = step(state, batch)
    restored = saved_and_restored(tmp_path, state, game, batch)
    chex.assert_trees_all_equal(restored, state)
    chex.assert_trees_all_equal(step(restored, batch), step(state, batch))


def test_make_step_is_a_plain_function_compiled_once():
    game = chain_game()
    state = game.init(jax.random.key(0), {})
    step = jax.jit(chex.assert_max_traces(make_step(game, update_rule="simultaneous"), n=1))
    for _ in range(3):
        state, _ = step(state, {})
    assert int(state.step) == 3


def test_game_definition_errors_are_named():
    with pytest.raises(ValueError, match="'a' is in both 'x' and 'y'"):
        Game(teams={"x": team("a", 0.0, None), "y": team("a", 0.0, None)},
             example_inputs=lambda batch: {})
    game = chain_game()
    with pytest.raises(KeyError, match="'d'"):
        make_step(game, repeats={"d": 2})
    with pytest.raises(ValueError, match="two-team game"):
        make_step(game, unroll_steps=1)
    with pytest.raises(KeyError, match="'z'.*'a', 'b', 'c'"):
        game.apply(game.init(jax.random.key(0), {}), "z")
    with pytest.raises(ValueError, match="ema_warmup"):
        team("a", 0.0, None, ema_warmup=True)


def test_a_checkpoint_saved_before_named_teams_restores_into_the_teams(tmp_path):
    from jgan.families.adversarial import adversarial_game
    from jgan.models.mlp import MLPDiscriminator, MLPGenerator

    game = adversarial_game(generator=MLPGenerator(hidden=(8,), output_dim=2),
                            discriminator=MLPDiscriminator(hidden=(8,)), latent_dim=3,
                            loss_type="non_saturating", generator_optimizer=optax.adam(1e-3),
                            discriminator_optimizer=optax.adam(1e-3), ema_decay=0.9)
    batch = {"image": jnp.ones((4, 2))}
    state, _ = jax.jit(make_step(game))(game.init(jax.random.key(0), batch), batch)
    # The pytree as GameState laid it out before teams had names.
    legacy = {"generator": state.teams["generator"], "discriminator": state.teams["discriminator"],
              "ema_params": state.ema["generator"], "step": state.step, "rng": state.rng}
    restored = saved_and_restored(tmp_path, legacy, game, batch)
    chex.assert_trees_all_equal(restored, state)


def test_metric_names_that_would_overwrite_each_other_are_errors():
    shadowing = Game(teams={"a": team("a", 0.0, lambda nets, batch, rng: (
        nets("a") ** 2, {"a_loss": nets("a")}))}, example_inputs=lambda batch: {"a": ()})
    colliding = Game(teams={
        "a": team("a", 0.0, lambda nets, batch, rng: (nets("a") ** 2, {"gap": nets("a")})),
        "b": team("b", 0.0, lambda nets, batch, rng: (nets("b") ** 2, {"gap": nets("b")}))},
        example_inputs=lambda batch: {"a": (), "b": ()})
    for game, match in ((shadowing, r"reports \['a_loss'\], which the step reports itself"),
                        (colliding, r"Team 'b' reports metrics \['gap'\]")):
        for rule in ("alternating", "simultaneous", "extragradient"):
            with pytest.raises(ValueError, match=match):
                jax.eval_shape(make_step(game, update_rule=rule), game.init(jax.random.key(0), {}), {})


def phased_game(momentum=0.5):
    """The adversarial autoencoder's shape: "fit" owns u and v (u pulled to 1, v to u),
    "critic" owns c (pulled to u), and the phase "push" borrows u (pulled to -c) with
    its own momentum SGD."""
    return Game(teams={
        "fit": Team(networks={"u": Scalar(0.0), "v": Scalar(0.0)}, optimizer=optax.sgd(LR),
                    loss=lambda nets, batch, rng: ((nets("u") - 1.0) ** 2
                                                   + (nets("v") - nets("u")) ** 2, {})),
        "critic": team("c", 2.0, lambda nets, batch, rng: ((nets("c") - nets("u")) ** 2, {})),
        "push": Team(networks={}, borrows=("u",), optimizer=optax.sgd(LR, momentum=momentum),
                     loss=lambda nets, batch, rng: ((nets("u") + nets("c")) ** 2, {})),
    }, example_inputs=lambda batch: {"u": (), "v": (), "c": ()})


def test_a_phase_updates_the_network_it_borrows_with_its_own_optimizer():
    game = phased_game()
    state = game.init(jax.random.key(0), {})
    assert state.teams["push"].params == {} and game.updated_networks("push") == ("u",)
    step = jax.jit(make_step(game))
    u, v, c, velocity = 0.0, 0.0, 2.0, 0.0
    for _ in range(3):
        before = state
        state, metrics = step(state, {})
        u, v = u - LR * (2 * (u - 1.0) - 2 * (v - u)), v - LR * 2 * (v - u)  # fit
        c = sgd(c, u)                                                         # critic
        velocity = 0.5 * velocity + 2 * (u + c)                               # push
        np.testing.assert_allclose(metrics["push_loss"], (u + c) ** 2, rtol=1e-6)
        u -= LR * velocity
        for name, want in (("u", u), ("v", v)):
            np.testing.assert_allclose(value(state, "fit", name), want, rtol=1e-5)
        np.testing.assert_allclose(value(state, "critic", "c"), c, rtol=1e-5)
        assert state.teams["push"].params == {}
        # the phase's momentum lives in its own optimizer state, not the owner's
        trace = jax.tree.leaves(state.teams["push"].opt_state)
        np.testing.assert_allclose(trace[0], velocity, rtol=1e-5)
        assert jax.tree.leaves(before.teams["fit"].opt_state) == []


def test_a_phase_moves_only_what_it_borrows():
    game = phased_game()
    state = game.init(jax.random.key(0), {})
    from jgan.core.step_parts import apply_update, team_gradients
    g = team_gradients(game, state, {}, jax.random.key(1), team="push", axis_name=None)
    assert set(g.grads) == {"u"}
    new = apply_update(game, state, "push", g)
    assert value(new, "fit", "u") != value(state, "fit", "u")
    for owner, name in (("fit", "v"), ("critic", "c")):
        assert value(new, owner, name) == value(state, owner, name)


def test_phases_survive_a_checkpoint(tmp_path):
    game = phased_game()
    state = game.init(jax.random.key(0), {})
    step = jax.jit(make_step(game))
    state, _ = step(state, {})
    restored = saved_and_restored(tmp_path, state, game, {})
    chex.assert_trees_all_equal(restored, state)
    chex.assert_trees_all_equal(step(restored, {}), step(state, {}))


def test_borrowing_errors_are_named():
    with pytest.raises(ValueError, match="borrows 'w', which is not a network of another"):
        Game(teams={"a": team("a", 0.0, None),
                    "b": Team(networks={}, borrows=("w",), loss=None, optimizer=optax.sgd(1))},
             example_inputs=lambda batch: {})
    with pytest.raises(ValueError, match="keeps no EMA"):
        Team(networks={}, borrows=("a",), loss=None, optimizer=optax.sgd(1), ema_decay=0.9)
    game = phased_game()
    for rule in ("simultaneous", "extragradient", "optimistic"):
        with pytest.raises(ValueError, match=r"Teams \['push'\] update networks other teams own"):
            make_step(game, update_rule=rule)
