"""Conditional GAN, ACGAN and InfoGAN: losses against their papers' formulas, labels and
codes reaching the networks, and the shared steps running each family."""
from __future__ import annotations

import functools

import chex
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgan.objectives import auxiliary_losses
from jgan.families import acgan_game, conditional_game, infogan_game
from jgan.families.infogan import InfoGANCodes
from jgan.models import (AuxiliaryClassifierDiscriminator, DCGANDiscriminator, DCGANGenerator,
                         LabelConditionedDiscriminator, LabelConditionedGenerator,
                         MLPDiscriminator, MLPGenerator, ResNetDiscriminator, ResNetGenerator)
from jgan.core.step_parts import team_gradients
from jgan.core.steps import make_step

RNG = np.random.default_rng(0)


def log_sigmoid(x):
    return -np.log1p(np.exp(-x))


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_acgan_losses_are_the_papers():
    real, fake = RNG.normal(size=6), RNG.normal(size=6)
    real_c, fake_c = RNG.normal(size=(6, 4)), RNG.normal(size=(6, 4))
    y_real, y_fake = RNG.integers(0, 4, 6), RNG.integers(0, 4, 6)
    # L_S = E log P(S=real|x_real) + E log P(S=fake|x_fake); L_C likewise for classes.
    l_s = np.mean(log_sigmoid(real)) + np.mean(log_sigmoid(-fake))
    l_c = (np.mean(log_softmax(real_c)[np.arange(6), y_real])
           + np.mean(log_softmax(fake_c)[np.arange(6), y_fake]))
    d_loss = jax.jit(lambda *a: auxiliary_losses.acgan_discriminator_loss(
        real_logits=a[0], fake_logits=a[1], real_class_logits=a[2], fake_class_logits=a[3],
        real_labels=a[4], fake_labels=a[5]))(real, fake, real_c, fake_c, y_real, y_fake)
    np.testing.assert_allclose(d_loss, -(l_s + l_c), rtol=1e-5)
    # G maximizes L_C - L_S: its terms are E log P(C=c|x_fake) - E log P(S=fake|x_fake).
    g_loss = auxiliary_losses.acgan_generator_loss(fake_logits=fake, fake_class_logits=fake_c,
                                                   fake_labels=y_fake)
    g_terms = np.mean(log_softmax(fake_c)[np.arange(6), y_fake]) - np.mean(log_sigmoid(-fake))
    np.testing.assert_allclose(g_loss, -g_terms, rtol=1e-5)
    # fake_class_loss=False: D's class term sees real images only.
    d_loss_real_classes = auxiliary_losses.acgan_discriminator_loss(
        real_logits=real, fake_logits=fake, real_class_logits=real_c, fake_class_logits=fake_c,
        real_labels=y_real, fake_labels=y_fake, fake_class_loss=False)
    l_c_real = np.mean(log_softmax(real_c)[np.arange(6), y_real])
    np.testing.assert_allclose(d_loss_real_classes, -(l_s + l_c_real), rtol=1e-5)


def test_acgan_config_reaches_the_fake_class_loss():
    from experiments.configs import conditional
    from jgan.train import builders

    config = conditional.get_config("acgan,mnist,runlocal")
    b = {"image": jnp.asarray(RNG.uniform(-1, 1, (4, 28, 28, 1)), jnp.float32),
         "label": jnp.arange(4, dtype=jnp.int32)}
    losses = {}
    for flag in (True, False):
        config.acgan.fake_class_loss = flag
        game = builders.build_game(config)
        state = game.init(jax.random.PRNGKey(0), b)
        nets = game.bind(state, train=False, rng=jax.random.PRNGKey(1))
        losses[flag], metrics = game.teams["discriminator"].loss(nets, b, jax.random.PRNGKey(2))
    # The same networks and fakes: dropping the fakes' class term lowers D's loss by it.
    assert float(losses[True]) > float(losses[False])


@pytest.mark.parametrize("learn_std", [False, True])
def test_information_loss_is_the_codes_negative_log_likelihood(learn_std):
    logits_a, logits_b = RNG.normal(size=(5, 10)), RNG.normal(size=(5, 3))
    cat = np.stack([RNG.integers(0, 10, 5), RNG.integers(0, 3, 5)], -1)
    mean, cont = RNG.normal(size=(5, 2)), RNG.uniform(-1, 1, (5, 2))
    log_std = RNG.normal(size=(5, 2)) * 0.3 if learn_std else np.zeros((5, 2))
    nll_cat = -(log_softmax(logits_a)[np.arange(5), cat[:, 0]]
                + log_softmax(logits_b)[np.arange(5), cat[:, 1]])
    std = np.exp(log_std)
    nll_cont = (0.5 * ((cont - mean) / std) ** 2 + np.log(std) + 0.5 * np.log(2 * np.pi)).sum(-1)
    got = auxiliary_losses.infogan_information_loss(
        categorical_logits=(logits_a, logits_b), categorical_codes=cat, continuous_mean=mean,
        continuous_codes=cont, continuous_log_std=log_std if learn_std else None,
        continuous_weight=0.5)
    np.testing.assert_allclose(got, np.mean(nll_cat) + 0.5 * np.mean(nll_cont), rtol=1e-5)


def batch(n=8, shape=(28, 28, 1)):
    return {"image": jnp.asarray(RNG.uniform(-1, 1, (n,) + shape), jnp.float32),
            "label": jnp.asarray(RNG.integers(0, 10, n), jnp.int32)}


def opt():
    return optax.adam(1e-3)


def cgan_dcgan():
    return conditional_game(
        generator=LabelConditionedGenerator(DCGANGenerator(width=8), 10),
        discriminator=LabelConditionedDiscriminator(DCGANDiscriminator(width=8), 10),
        latent_dim=16, num_classes=10, loss_type="non_saturating",
        generator_optimizer=opt(), discriminator_optimizer=opt())


def projection_resnet():
    return conditional_game(
        generator=ResNetGenerator(num_classes=10, width=16, latent_dim=16, resolution=28,
                                  channels=1),
        discriminator=ResNetDiscriminator(num_classes=10, width=16), latent_dim=16,
        num_classes=10, loss_type="hinge", generator_optimizer=opt(),
        discriminator_optimizer=opt())


@pytest.mark.parametrize("make_game", [cgan_dcgan, projection_resnet])
def test_labels_reach_both_networks(make_game):
    game = make_game()
    b = batch()
    state = game.init(jax.random.PRNGKey(0), b)
    # Conditional batch norm starts with every class's scale 1 and shift 0 (labels have
    # no effect yet): move all parameters off their initialization first.
    noise = lambda p: jax.tree.map(lambda a: a + 0.1 * jax.random.normal(
        jax.random.PRNGKey(a.size), a.shape), p)
    state = state.replace(teams={name: team.replace(params=noise(team.params))
                                 for name, team in state.teams.items()})
    nets = game.bind(state, train=False, rng=jax.random.PRNGKey(1))
    z = jax.random.normal(jax.random.PRNGKey(2), (4, 16))
    y, other = jnp.array([0, 1, 2, 3]), jnp.array([5, 6, 7, 8])
    assert not np.allclose(nets("generator", z, y), nets("generator", z, other))
    x = b["image"][:4]
    assert not np.allclose(nets("discriminator", x, y), nets("discriminator", x, other))


def test_conditional_discriminator_loss_uses_the_real_labels():
    game = cgan_dcgan()
    b = batch()
    state = game.init(jax.random.PRNGKey(0), b)
    loss = jax.jit(lambda s, b: game.teams["discriminator"].loss(
        game.bind(s, train=True, rng=jax.random.PRNGKey(3)), b, jax.random.PRNGKey(3))[0])
    wrong = {**b, "label": (b["label"] + 1) % 10}
    assert not np.isclose(loss(state, b), loss(state, wrong))


def test_missing_labels_are_named():
    game = cgan_dcgan()
    with pytest.raises(KeyError, match="'label'"):
        game.init(jax.random.PRNGKey(0), {"image": jnp.zeros((2, 28, 28, 1))})


def acgan():
    return acgan_game(
        generator=LabelConditionedGenerator(DCGANGenerator(width=8), 10),
        discriminator=AuxiliaryClassifierDiscriminator(DCGANDiscriminator(width=8), 10),
        latent_dim=16, num_classes=10, generator_optimizer=opt(), discriminator_optimizer=opt())


def infogan(codes=InfoGANCodes(noise_dim=8)):
    return infogan_game(generator=DCGANGenerator(width=8), discriminator=DCGANDiscriminator(width=8),
                        codes=codes, generator_optimizer=opt(), discriminator_optimizer=opt(),
                        info_weight=0.7)


def test_infogan_generator_loss_is_gan_loss_plus_weighted_code_nll():
    codes = InfoGANCodes(noise_dim=8, categorical=(10, 3), continuous=2)
    game = infogan(codes)
    b = batch()
    state = game.init(jax.random.PRNGKey(0), b)
    rng = jax.random.PRNGKey(5)
    nets = game.bind(state, train=False, rng=rng)
    loss, _ = game.teams["generator"].loss(nets, b, rng)
    # Independently: the same codes, G's image, D's logit and Q's posterior.
    c = codes.sample(rng, 8)
    x = nets("generator", codes.generator_input(c))
    logit = np.asarray(nets("discriminator", x))
    q = nets("q_head", nets("discriminator", x, features=True))
    nll = -(log_softmax(np.asarray(q["categorical"][0]))[np.arange(8), c["categorical"][:, 0]]
            + log_softmax(np.asarray(q["categorical"][1]))[np.arange(8), c["categorical"][:, 1]])
    nll += (0.5 * (np.asarray(c["continuous"]) - np.asarray(q["continuous_mean"])) ** 2
            + 0.5 * np.log(2 * np.pi)).sum(-1)
    expected = np.mean(-log_sigmoid(logit)) + 0.7 * np.mean(nll)
    np.testing.assert_allclose(loss, expected, rtol=1e-4)


def test_infogan_information_term_follows_its_start_step_and_ramp():
    # lambda_t = 0.8 * clip((t - start + 1) / ramp, 0, 1), a hard switch when ramp = 0:
    # both teams' losses and gradients equal those of a game with that constant lambda
    # (0 before the start: Q's head gets no gradient). One compilation serves every step.
    def game(info_weight, start=0, ramp=0):
        return infogan_game(generator=DCGANGenerator(width=8),
                            discriminator=DCGANDiscriminator(width=8),
                            codes=InfoGANCodes(noise_dim=8), generator_optimizer=opt(),
                            discriminator_optimizer=opt(), info_weight=info_weight,
                            info_start_step=start, info_ramp_steps=ramp)
    b = batch()
    switch, ramp = game(0.8, start=3), game(0.8, start=3, ramp=4)
    state = switch.init(jax.random.PRNGKey(0), b)
    traces = []

    def losses_at(g, state):
        traces.append(g)
        out = {}
        for team in ("generator", "discriminator"):
            loss, grads, _, _, _ = team_gradients(g, state, b, jax.random.PRNGKey(1), team=team,
                                               axis_name=None)
            out[team] = (loss, grads)
        return out
    run = jax.jit(losses_at, static_argnums=0)
    cases = [(switch, 0, 0.0), (switch, 2, 0.0), (switch, 3, 0.8), (switch, 50, 0.8),
             (ramp, 2, 0.0), (ramp, 3, 0.2), (ramp, 4, 0.4), (ramp, 6, 0.8), (ramp, 9, 0.8)]
    for delayed, step, weight in cases:
        at = state.replace(step=jnp.asarray(step, jnp.int32))
        got, want = run(delayed, at), run(game(weight), at)
        for team in ("generator", "discriminator"):
            np.testing.assert_allclose(got[team][0], want[team][0], rtol=1e-5)
            chex.assert_trees_all_close(got[team][1], want[team][1], rtol=1e-4, atol=1e-6)
        q_grad = optax.tree.norm(got["generator"][1]["q_head"])
        assert (q_grad > 0) == (weight > 0), (step, q_grad)
    assert traces.count(switch) == 1 and traces.count(ramp) == 1
    with pytest.raises(ValueError, match="info_start_step and info_ramp_steps"):
        game(1.0, ramp=-1)


def test_infogan_augmented_term_is_the_categorical_nll_on_transformed_samples():
    # G's loss gains w * sum_i CE(Q_i(D(T(x))), c_i) for the same fakes x, T drawn from
    # the second half of the loss's key; D's loss gains the same term, and the pass over
    # T(x) leaves D's batch statistics as the paper's passes set them.
    from jgan.augmentations import StyleAugmentation
    codes = InfoGANCodes(noise_dim=8, categorical=(10, 3), continuous=2)
    augmentation = StyleAugmentation(max_rotation=30.0, max_stroke=1.0)
    game = infogan_game(generator=DCGANGenerator(width=8), discriminator=DCGANDiscriminator(width=8),
                        codes=codes, generator_optimizer=opt(), discriminator_optimizer=opt(),
                        info_weight=0.7, augmented_weight=0.5, augmentation=augmentation)
    b = batch()
    state = game.init(jax.random.PRNGKey(0), b)
    rng = jax.random.PRNGKey(5)

    def cross_entropy(q, c):
        return -sum(log_softmax(np.asarray(q["categorical"][i]))[np.arange(8), c["categorical"][:, i]]
                    for i in range(2))

    nets = game.bind(state, train=False, rng=rng)
    loss, metrics = jax.jit(lambda s: game.teams["generator"].loss(game.bind(s, train=False, rng=rng),
                                                          b, rng))(state)
    fake_rng, augment_rng = jax.random.split(rng)
    c = codes.sample(fake_rng, 8)
    x = nets("generator", codes.generator_input(c))
    q = nets("q_head", nets("discriminator", x, features=True))
    nll = cross_entropy(q, c) + (0.5 * (np.asarray(c["continuous"]) - np.asarray(q["continuous_mean"])) ** 2
                                 + 0.5 * np.log(2 * np.pi)).sum(-1)
    x_aug = augmentation(augment_rng, x)
    assert not np.allclose(x_aug, x)
    augmented = cross_entropy(nets("q_head", nets("discriminator", x_aug, features=True)), c)
    np.testing.assert_allclose(metrics["augmented_info_loss"], np.mean(augmented), rtol=1e-4)
    expected = (np.mean(-log_sigmoid(np.asarray(nets("discriminator", x))))
                + 0.7 * (np.mean(nll) + 0.5 * np.mean(augmented)))
    np.testing.assert_allclose(loss, expected, rtol=1e-4)

    # D's loss in training mode: its batch statistics are those of the real and fake passes.
    train_nets = game.bind(state, train=True, rng=rng)
    game.teams["discriminator"].loss(train_nets, b, rng)
    got_stats = train_nets.updated_collections(["discriminator"])["discriminator"]
    reference = game.bind(state, train=True, rng=rng)
    fake_rng = jax.random.split(rng, 3)[0]
    c = codes.sample(fake_rng, 8)
    reference("discriminator", b["image"])
    reference("discriminator", reference("generator", codes.generator_input(c)), with_features=True)
    chex.assert_trees_all_close(got_stats,
                                reference.updated_collections(["discriminator"])["discriminator"],
                                rtol=1e-5, atol=1e-6)
    assert jax.tree.leaves(got_stats)   # the DCGAN D has batch norm

    with pytest.raises(ValueError, match="augmented_weight"):
        infogan_game(generator=DCGANGenerator(width=8), discriminator=DCGANDiscriminator(width=8),
                     codes=codes, generator_optimizer=opt(), discriminator_optimizer=opt(),
                     augmented_weight=-1.0)
    with pytest.raises(ValueError, match="categorical code"):
        infogan_game(generator=DCGANGenerator(width=8), discriminator=DCGANDiscriminator(width=8),
                     codes=InfoGANCodes(noise_dim=8, categorical=(), continuous=2),
                     generator_optimizer=opt(), discriminator_optimizer=opt(),
                     augmented_weight=1.0)


def test_infogan_input_layout():
    codes = InfoGANCodes(noise_dim=3, categorical=(4,), continuous=2)
    c = {"noise": jnp.ones((1, 3)), "categorical": jnp.array([[2]]),
         "continuous": jnp.array([[0.5, -0.25]])}
    np.testing.assert_array_equal(codes.generator_input(c)[0],
                                  [1, 1, 1, 0, 0, 1, 0, 0.5, -0.25])
    assert codes.input_dim == 9


def test_infogan_noise_distributions():
    # Uniform(-1, 1) has mean 0 and variance 1/3; N(0, 1) variance 1. 20,000 draws give
    # the variance within ~0.01.
    for noise, variance in (("normal", 1.0), ("uniform", 1 / 3)):
        codes = InfoGANCodes(noise_dim=10, noise=noise)
        z = np.asarray(jax.jit(lambda k: codes.sample(k, 2000))(jax.random.PRNGKey(0))["noise"])
        assert z.shape == (2000, 10)
        np.testing.assert_allclose(z.var(), variance, rtol=0.03)
        np.testing.assert_allclose(z.mean(), 0.0, atol=0.02)
        if noise == "uniform":
            assert z.min() >= -1.0 and z.max() <= 1.0
    with pytest.raises(ValueError, match="noise must be one of"):
        InfoGANCodes(noise="laplace")


@pytest.mark.parametrize("make_game", [cgan_dcgan, projection_resnet, acgan, infogan])
def test_shared_steps_train_every_family(make_game):
    game = make_game()
    b = batch()
    state = game.init(jax.random.PRNGKey(0), b)
    traces = []

    def step(state, b):
        traces.append(1)
        return make_step(game)(state, b)
    jitted = jax.jit(step)
    new, metrics = jitted(state, b)
    new, metrics = jitted(new, batch())
    assert len(traces) == 1
    assert all(np.isfinite(v) for v in jax.device_get(metrics).values())
    for team in ("generator", "discriminator"):
        for name in state.teams[team].params:
            before = jax.tree.leaves(state.teams[team].params[name])
            after = jax.tree.leaves(new.teams[team].params[name])
            assert any(not np.allclose(a, b) for a, b in zip(before, after)), (team, name)


def test_infogan_discriminator_step_leaves_q_head_alone():
    game = infogan()
    b = batch()
    state = game.init(jax.random.PRNGKey(0), b)
    _, grads, _, _, _ = jax.jit(lambda s: team_gradients(
        game, s, b, jax.random.PRNGKey(1), team="discriminator", axis_name=None))(state)
    assert set(grads) == {"discriminator"}
    # The information term reaches D's trunk: its gradient differs without it.
    no_info = infogan_game(generator=DCGANGenerator(width=8), discriminator=DCGANDiscriminator(width=8),
                           codes=InfoGANCodes(noise_dim=8), generator_optimizer=opt(),
                           discriminator_optimizer=opt(), info_in_discriminator=False)
    _, grads_b, _, _, _ = jax.jit(lambda s: team_gradients(
        no_info, s, b, jax.random.PRNGKey(1), team="discriminator", axis_name=None))(state)
    conv0 = lambda g: g["discriminator"]["conv0"]["kernel"]
    assert not np.allclose(conv0(grads), conv0(grads_b))


def test_infogan_q_head_on_the_discriminators_team_trains_with_ds_information_term():
    def game(info_weight, q_team="discriminator"):
        return infogan_game(generator=DCGANGenerator(width=8),
                            discriminator=DCGANDiscriminator(width=8),
                            codes=InfoGANCodes(noise_dim=8), generator_optimizer=opt(),
                            discriminator_optimizer=opt(), info_weight=info_weight,
                            q_team=q_team)

    b = batch()
    grads = {}
    for w in (0.5, 1.0):
        g = game(w)
        state = g.init(jax.random.PRNGKey(0), b)
        assert set(state.teams["discriminator"].params) == {"discriminator", "q_head"}
        assert set(state.teams["generator"].params) == {"generator"}
        for team in ("discriminator", "generator"):
            _, grads[w, team], _, _, _ = jax.jit(lambda s: team_gradients(
                g, s, b, jax.random.PRNGKey(1), team=team, axis_name=None))(state)
    assert set(grads[1.0, "generator"]) == {"generator"}
    # The GAN loss does not reach Q's head, so its gradient is lambda * grad L_I: linear in
    # lambda (same state, same fakes), and not zero.
    head = lambda w: jax.tree.leaves(grads[w, "discriminator"]["q_head"])
    for half, full in zip(head(0.5), head(1.0)):
        np.testing.assert_allclose(2.0 * np.asarray(half), full, rtol=1e-4, atol=1e-7)
    assert max(float(jnp.abs(x).max()) for x in head(1.0)) > 0
    with pytest.raises(ValueError, match="info_in_discriminator"):
        infogan_game(generator=DCGANGenerator(width=8), discriminator=DCGANDiscriminator(width=8),
                     codes=InfoGANCodes(noise_dim=8), generator_optimizer=opt(),
                     discriminator_optimizer=opt(), q_team="discriminator",
                     info_in_discriminator=False)
    with pytest.raises(ValueError, match="q_team"):
        game(1.0, q_team="critic")


def test_infogan_q_batch_norm_removes_a_batch_constant_shift_in_training_only():
    from jgan.families.infogan import QHead

    codes = InfoGANCodes(noise_dim=8)
    h = jnp.asarray(RNG.normal(size=(16, 12)), jnp.float32)
    shift = jnp.asarray(RNG.normal(size=(1, 12)) * 3.0, jnp.float32)
    for batch_norm in (False, True):
        head = QHead(codes=codes, hidden=6, batch_norm=batch_norm)
        v = head.init(jax.random.PRNGKey(0), h)
        assert ("batch_stats" in v) == batch_norm
        apply = jax.jit(lambda v, x, train: head.apply(
            v, x, train=train, mutable=["batch_stats"] if train else False)[0] if train
            else head.apply(v, x), static_argnums=2)
        same = np.allclose(apply(v, h, True)["categorical"][0],
                           apply(v, h + shift, True)["categorical"][0], atol=1e-4)
        # Batch norm in training mode subtracts the batch mean of W h, so W c cancels.
        assert same == batch_norm
        if batch_norm:   # with running averages (eval) the shift shows
            assert not np.allclose(apply(v, h, False)["categorical"][0],
                                   apply(v, h + shift, False)["categorical"][0], atol=1e-4)


def test_infogan_q_leaky_slope_of_one_makes_q_affine_in_the_features():
    from jgan.families.infogan import QHead

    codes = InfoGANCodes(noise_dim=8)
    h1, h2 = (jnp.asarray(RNG.normal(size=(4, 12)), jnp.float32) for _ in range(2))
    for slope, affine in ((1.0, True), (0.01, False)):
        head = QHead(codes=codes, hidden=6, leaky_slope=slope)
        v = head.init(jax.random.PRNGKey(0), h1)
        f = jax.jit(lambda x: head.apply(v, x)["continuous_mean"])
        assert np.allclose(f(0.5 * h1 + 0.5 * h2), 0.5 * f(h1) + 0.5 * f(h2),
                           atol=1e-5) == affine


@pytest.mark.parametrize("q_team", ["generator", "discriminator"])
def test_infogan_q_batch_statistics_are_a_collection_of_q_heads_team(q_team):
    game = infogan_game(generator=DCGANGenerator(width=8), discriminator=DCGANDiscriminator(width=8),
                        codes=InfoGANCodes(noise_dim=8), generator_optimizer=opt(),
                        discriminator_optimizer=opt(), q_team=q_team, q_batch_norm=True)
    b = batch()
    state = game.init(jax.random.PRNGKey(0), b)
    q_state = state.teams[q_team]
    before = q_state.collections["q_head"]["batch_stats"]["hidden_bn"]["mean"]
    np.testing.assert_array_equal(before, 0.0)
    _, _, collections, _, _ = jax.jit(lambda s: team_gradients(
        game, s, b, jax.random.PRNGKey(1), team=q_team, axis_name=None))(state)
    after = collections["q_head"]["batch_stats"]["hidden_bn"]["mean"]
    assert float(jnp.abs(after).max()) > 0
    stepped, _ = jax.jit(make_step(game, update_rule="alternating"))(state, b)
    assert not np.allclose(stepped.teams[q_team].collections["q_head"]["batch_stats"]
                           ["hidden_bn"]["mean"], 0.0)


def test_mlp_conditioning_wrappers_for_vectors():
    g = LabelConditionedGenerator(MLPGenerator(hidden=(8,), output_dim=2), 3)
    d = LabelConditionedDiscriminator(MLPDiscriminator(hidden=(8,)), 3)
    z, y = jnp.ones((4, 5)), jnp.array([0, 1, 2, 0])
    gv = g.init(jax.random.PRNGKey(0), z, y)
    dv = d.init(jax.random.PRNGKey(0), jnp.ones((4, 2)), y)
    assert g.apply(gv, z, y).shape == (4, 2)
    chex.assert_shape(d.apply(dv, jnp.ones((4, 2)), y), (4,))
    assert dv["params"]["discriminator"]["Dense_0"]["kernel"].shape == (5, 8)  # 2 + 3 inputs


def test_infogan_evaluation_reads_q_with_the_live_head_and_trunk():
    from jgan.families.evaluation import FamilyEvaluator

    game = infogan_game(generator=DCGANGenerator(width=8), discriminator=DCGANDiscriminator(width=8),
                        codes=InfoGANCodes(noise_dim=8), generator_optimizer=opt(),
                        discriminator_optimizer=opt(), ema_decay=0.999)
    b = batch()
    state = game.init(jax.random.PRNGKey(0), b)
    # An EMA copy far from the live weights: Q's head must not be read from it.
    state = state.replace(ema={"generator": jax.tree.map(lambda p: p + 1.0, state.ema["generator"])})
    evaluator = FamilyEvaluator(game, sampler=None, evaluator=None, generate=None,
                                seed_key=jax.random.PRNGKey(1))
    x = b["image"]
    live = game.bind(state, train=False, rng=jax.random.PRNGKey(1))
    expected = live("q_head", live("discriminator", x, features=True))["continuous_mean"]
    ema = game.bind(state, train=False, rng=jax.random.PRNGKey(1), use_ema=True)
    lagging = ema("q_head", ema("discriminator", x, features=True))["continuous_mean"]
    got = evaluator.q_mean(state, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(got) - np.asarray(lagging)).max() > 1e-3
    expected_code = np.argmax(live("q_head", live("discriminator", x, features=True))
                              ["categorical"][0], -1)
    np.testing.assert_array_equal(evaluator.q_code(state, x), expected_code)


@pytest.mark.parametrize("make_disc,extra", [
    (lambda: DCGANDiscriminator(width=8, dense_hidden=16, spectral_norm=True), ()),
    (lambda: MLPDiscriminator(hidden=(16, 8), spectral_norm=True), ()),
    (lambda: ResNetDiscriminator(num_classes=10, width=8), ("labels",)),
    (lambda: LabelConditionedDiscriminator(DCGANDiscriminator(width=8), 10), ("labels",)),
])
def test_with_features_is_the_logits_and_the_features_of_one_pass(make_disc, extra):
    disc = make_disc()
    shape = (4, 8) if isinstance(disc, MLPDiscriminator) else (
        (4, 32, 32, 1) if isinstance(disc, ResNetDiscriminator) else (4, 28, 28, 1))
    x = jnp.asarray(RNG.normal(size=shape), jnp.float32)
    args = (x,) + tuple(jnp.arange(4) % 10 for _ in extra)
    variables = disc.init(jax.random.PRNGKey(0), *args)

    @functools.partial(jax.jit, static_argnames="mode")
    def apply(variables, mode):
        # Training mode: batch statistics and power iterations update, so the
        # collections written by the one pass must equal the logit pass's.
        return disc.apply(variables, *args, train=True, mutable=["batch_stats"],
                          **({mode: True} if mode else {}))

    (logits, h), stats = apply(variables, "with_features")
    expected_logits, expected_stats = apply(variables, None)
    expected_h, _ = apply(variables, "features")
    chex.assert_shape(logits, (4,))
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h, expected_h, rtol=1e-6, atol=1e-6)
    chex.assert_trees_all_close(stats, expected_stats, rtol=1e-6, atol=1e-6)


def _count_convolutions(jaxpr) -> int:
    count = 0
    for eqn in jaxpr.eqns:
        count += eqn.primitive.name == "conv_general_dilated"
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            count += _count_convolutions(sub)
    return count


@pytest.mark.parametrize("loss", ["generator_loss", "discriminator_loss"])
def test_infogan_losses_run_the_discriminator_once_per_batch_of_fakes(loss):
    # Q reads the trunk features of the same pass that gives D's logit: D's trunk is
    # differentiated once, not once for the GAN term and again for the information term.
    game = infogan()
    b = batch()
    state = game.init(jax.random.PRNGKey(0), b)
    rng = jax.random.PRNGKey(3)

    def value(state):
        return game.teams[loss.split("_")[0]].loss(game.bind(state, train=True, rng=rng), b, rng)[0]

    gen, disc = game.teams["generator"].networks["generator"], game.teams["discriminator"].networks["discriminator"]
    z = jnp.zeros((8, game.example_inputs(b)["generator"][0].shape[1]))
    per_g = _count_convolutions(jax.make_jaxpr(
        lambda: gen.apply({"params": state.teams["generator"].params["generator"],
                           **state.teams["generator"].collections["generator"]}, z))().jaxpr)
    per_d = _count_convolutions(jax.make_jaxpr(
        lambda: disc.apply({"params": state.teams["discriminator"].params["discriminator"],
                            **state.teams["discriminator"].collections["discriminator"]},
                           b["image"]))().jaxpr)
    assert per_d == 2   # (G upsamples with matmuls: per_g may be 0)
    passes_of_d = 2 if loss == "discriminator_loss" else 1   # reals, fakes
    assert _count_convolutions(jax.make_jaxpr(value)(state).jaxpr) == per_g + passes_of_d * per_d

    # And it is the loss of the two passes it replaces, in training mode.
    nets = game.bind(state, train=True, rng=rng)
    fake_rng = jax.random.split(rng)[0] if loss == "discriminator_loss" else rng
    codes = InfoGANCodes(noise_dim=8)   # infogan()'s layout
    c = codes.sample(fake_rng, 8)
    x = nets("generator", codes.generator_input(c))
    q = nets("q_head", nets("discriminator", x, features=True, update_collections=False))
    nll = np.asarray(auxiliary_losses.infogan_information_loss(
        categorical_logits=q["categorical"], categorical_codes=c["categorical"],
        continuous_mean=q["continuous_mean"], continuous_codes=c["continuous"]))
    if loss == "generator_loss":
        expected = np.mean(-log_sigmoid(np.asarray(nets("discriminator", x)))) + 0.7 * nll
    else:
        real_logit = np.asarray(nets("discriminator", b["image"]))
        fake_logit = np.asarray(nets("discriminator", x))
        expected = (np.mean(-log_sigmoid(real_logit)) + np.mean(-log_sigmoid(-fake_logit))
                    + 0.7 * nll)
    np.testing.assert_allclose(jax.jit(value)(state), expected, rtol=1e-5)
