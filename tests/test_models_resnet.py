"""Tests for jgan.models.conditional_layers and jgan.models.resnet (SNGAN ResNet, projection D).

Properties: shapes and ranges; conditional batch norm with equal class rows is batch
norm; labels reach G and D; the projection term is <V_sn[y], h>; spectral-norm state
moves only in training; and the PyTorch reference (benchmarks/resnet_projection_reference.py)
has the same parameter counts and, given the flax variables, the same outputs; BigGAN's
64 and 128 px layouts (and the BigBiGAN networks and torch twin at those sizes). Widths
of 8 and jitted applies: each test takes seconds on CPU.
"""
from __future__ import annotations

import functools
import sys

import chex
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.models.conditional_layers import ConditionalBatchNorm
from jgan.models.resnet import ResNetDiscriminator, ResNetGenerator
from tests.helpers import REPO_ROOT

W, Z, K, B = 8, 16, 5, 6   # width, latent size, classes, batch
# Full-fp32 convolutions for comparisons with PyTorch's CPU results: on GPUs XLA's default
# is TF32 (about 3 significant digits).
fp32 = functools.partial(jax.default_matmul_precision, "float32")


def _random_variables(module, *args, seed=0, **kwargs):
    """`module`'s variables from numpy (no init to compile): N(0, 0.3^2) weights, class
    gammas and batch-norm scales N(1, 0.3^2), variances U(0.5, 1.5), sigma 1."""
    shapes = flax.core.unfreeze(jax.eval_shape(
        functools.partial(module.init, **kwargs), jax.random.key(0), *args))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        keys = [getattr(p, "key", "") for p in path]
        if keys[-1] == "var":
            return jnp.asarray(rng.uniform(0.5, 1.5, leaf.shape), leaf.dtype)
        if keys[-1].endswith("sigma"):
            return jnp.ones(leaf.shape, leaf.dtype)
        mean = 1.0 if keys[-1] == "scale" or "gamma" in keys else 0.0
        return jnp.asarray(mean + 0.3 * rng.normal(size=leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def _inputs(seed=0, resolution=32, channels=3):
    rng = np.random.default_rng(seed)
    return (jnp.asarray(rng.normal(size=(B, Z)), jnp.float32),
            jnp.asarray(rng.integers(0, K, B), jnp.int32),
            jnp.asarray(rng.uniform(-1, 1, (B, resolution, resolution, channels)), jnp.float32))


def _apply(module, train=False, method=None):
    """Jitted `(variables, *args) -> output` (batch stats kept fixed)."""
    return jax.jit(lambda v, *a: module.apply(v, *a, train=train, method=method,
                                              mutable=["batch_stats"] if train else False))


@pytest.mark.parametrize("resolution,channels", [(32, 3), (28, 1)])
def test_shapes_and_ranges(resolution, channels):
    z, y, x = _inputs(resolution=resolution, channels=channels)
    g = ResNetGenerator(num_classes=K, width=W, latent_dim=Z, resolution=resolution,
                        channels=channels)
    d = ResNetDiscriminator(num_classes=K, width=W)
    gv, dv = _random_variables(g, z, y), _random_variables(d, x, y)
    for train in (False, True):
        out = _apply(g, train)(gv, z, y)
        images = out[0] if train else out
        assert images.shape == (B, resolution, resolution, channels)
        assert np.all(np.abs(images) <= 1) and np.std(images) > 0.01
    logits = _apply(d)(dv, images, y)
    assert logits.shape == (B,) and np.all(np.isfinite(logits))
    assert _apply(d, method="features")(dv, images).shape == (B, W)


@pytest.mark.parametrize("resolution", [64, 128])
def test_biggan_resolutions_shapes_and_widths(resolution):
    # BigGAN's architectures at ch = W / 4 = 2: G's dense output 16 ch at 4x4, one
    # up-block per doubling; D's blocks ch * (1, 2, 4, 8, 16[, 16]) down to 4x4, h of 16 ch.
    z, y, x = _inputs(resolution=resolution)
    g = ResNetGenerator(num_classes=K, width=W, latent_dim=Z, resolution=resolution)
    d = ResNetDiscriminator(num_classes=K, width=W)
    gv, dv = _random_variables(g, z, y), _random_variables(d, x, y)
    blocks = 4 if resolution == 64 else 5
    gp, dp = gv["params"], dv["params"]["trunk"]
    assert gp["project"]["kernel"].shape == (Z, 16 * 32)
    assert [gp[f"block{i}"]["conv2"]["kernel"].shape[-1] for i in range(blocks)] == \
        [32, 16, 8, 4, 2][:blocks]
    assert f"block{blocks}" not in gp
    assert gp["out_conv"]["kernel"].shape[2] == (4 if resolution == 64 else 2)
    assert [dp[f"block{i}"]["conv2"]["kernel"].shape[-1] for i in range(blocks + 1)] == \
        [2, 4, 8, 16, 32, 32][:blocks + 1]
    assert f"block{blocks + 1}" not in dp
    for train in (False, True):
        out = _apply(g, train)(gv, z, y)
        images = out[0] if train else out
        assert images.shape == (B, resolution, resolution, 3)
        assert np.all(np.abs(images) <= 1) and np.std(images) > 0.01
    assert _apply(d)(dv, images, y).shape == (B,)
    assert _apply(d, method="features")(dv, x).shape == (B, 4 * W)
    with pytest.raises(ValueError, match="multiple of 4"):
        jax.eval_shape(ResNetGenerator(width=6, latent_dim=Z, resolution=resolution).init,
                       jax.random.key(0), z)


def test_bigbigan_networks_take_biggan_resolutions():
    # The RevNet encoder and the pair discriminator at 64 and 128 px (tiny widths).
    from experiments.configs import bigbigan
    from jgan.families.bigan import networks
    for resolution in (64, 128):
        config = bigbigan.get_config(f"mnist,res{resolution},runlocal")
        assert config.data.resolution == resolution
        nets = networks(config)
        x = jnp.zeros((2, resolution, resolution, 1))
        z = jnp.zeros((2, config.bigan.latent_dim))
        e = jax.eval_shape(lambda: nets["encoder"].init_with_output(jax.random.key(0), x)[0])
        assert [a.shape for a in jax.tree.leaves(e)] == [(2, config.bigan.latent_dim)] * 2
        s = jax.eval_shape(lambda: nets["discriminator"].init_with_output(
            jax.random.key(0), x, z)[0])
        assert [a.shape for a in jax.tree.leaves(s)] == [(2,)] * 3
        g = jax.eval_shape(lambda: nets["generator"].init_with_output(
            jax.random.key(0), z)[0])
        assert g.shape == (2, resolution, resolution, 1)


@pytest.mark.parametrize("train", [True, False])
def test_cbn_with_equal_rows_is_batch_norm(train):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(2.0, 3.0, (B, 4, 4, W)), jnp.float32)
    y = jnp.asarray(rng.integers(0, K, B), jnp.int32)
    scale, bias = rng.normal(1, 0.3, W), rng.normal(0, 0.3, W)
    stats = {"mean": jnp.asarray(rng.normal(size=W), jnp.float32),
             "var": jnp.asarray(rng.uniform(0.5, 1.5, W), jnp.float32)}
    rows = lambda v: jnp.asarray(np.tile(v, (K, 1)), jnp.float32)
    cbn = {"params": {"gamma": {"embedding": rows(scale)}, "beta": {"embedding": rows(bias)}},
           "batch_stats": {"bn": stats}}
    bn = {"params": {"scale": jnp.asarray(scale, jnp.float32),
                     "bias": jnp.asarray(bias, jnp.float32)}, "batch_stats": stats}
    mutable = ["batch_stats"] if train else False
    plain = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)
    want = jax.jit(lambda v: plain.apply(v, x, mutable=mutable))(bn)
    got = jax.jit(lambda v: ConditionalBatchNorm(K).apply(v, x, y, train=train,
                                                            mutable=mutable))(cbn)
    if train:
        chex.assert_trees_all_close(got[1]["batch_stats"]["bn"], want[1]["batch_stats"],
                                    rtol=1e-6)
        got, want = got[0], want[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # Without classes it is nn.BatchNorm itself, labels ignored.
    uncond = jax.jit(lambda v: ConditionalBatchNorm(None).apply(
        v, x, None, train=train, mutable=mutable))({k: {"bn": v} for k, v in bn.items()})
    np.testing.assert_array_equal(uncond[0] if train else uncond, want)


def test_labels_reach_both_networks():
    z, y, x = _inputs()
    g, d = ResNetGenerator(K, W, Z), ResNetDiscriminator(K, W)
    gv, dv = _random_variables(g, z, y), _random_variables(d, x, y)
    other = (y + 1) % K
    gen, disc = _apply(g), _apply(d)
    assert np.min(np.abs(gen(gv, z, y) - gen(gv, z, other)).max(axis=(1, 2, 3))) > 1e-3
    assert np.min(np.abs(disc(dv, x, y) - disc(dv, x, other))) > 1e-4
    with pytest.raises(ValueError, match="needs labels"):
        g.apply(gv, z)


@pytest.mark.parametrize("spectral_norm", [True, False])
def test_projection_term_and_unconditional_path(spectral_norm):
    _, y, x = _inputs()
    d = ResNetDiscriminator(K, W, spectral_norm=spectral_norm)
    dv = _random_variables(d, x, y)
    logits, h, no_labels = _apply(d)(dv, x, y), _apply(d, method="features")(dv, x), \
        _apply(d)(dv, x, None)
    v = np.asarray(dv["params"]["head"]["projection"]["embed"]["embedding"], np.float64)
    if spectral_norm:   # flax's one power iteration from the stored u, by hand
        u = np.asarray(dv["batch_stats"]["head"]["projection"]["SpectralNorm_0"]
                       ["embed/embedding/u"], np.float64)[0]
        vec = v @ u / np.linalg.norm(v @ u)
        u = vec @ v / np.linalg.norm(vec @ v)
        v = v / (vec @ v @ u)
    np.testing.assert_allclose(logits - no_labels, np.sum(v[np.asarray(y)] * h, axis=1),
                               rtol=1e-4, atol=1e-4)
    # Without labels: the unconditional D with the same trunk and psi.
    uncond = ResNetDiscriminator(None, W, spectral_norm=spectral_norm)
    strip = lambda t: {**t, "head": {k: s for k, s in t["head"].items() if k != "projection"}}
    uv = {c: strip(t) for c, t in dv.items()}
    np.testing.assert_array_equal(_apply(uncond)(uv, x), no_labels)


def test_spectral_norm_state_changes_only_in_training():
    _, y, x = _inputs()
    d = ResNetDiscriminator(K, W)
    dv = _random_variables(d, x, y)
    stats = dv["batch_stats"]
    apply = jax.jit(lambda s, train: d.apply({"params": dv["params"], "batch_stats": s}, x,
                                             y, train=train, mutable=["batch_stats"])[1],
                    static_argnums=1)
    chex.assert_trees_all_equal(flax.core.unfreeze(apply(stats, False))["batch_stats"], stats)
    new = flax.traverse_util.flatten_dict(flax.core.unfreeze(apply(stats, True)["batch_stats"]))
    old = flax.traverse_util.flatten_dict(stats)
    us = [k for k in old if k[-1].endswith("/u")]
    assert len(us) == 12   # 10 convolutions, the linear layer, V
    for k in us:
        assert not np.allclose(new[k], old[k]), k


# --------------------------------------------------------------------------- PyTorch


@pytest.fixture(scope="module")
def ref():
    pytest.importorskip("torch")
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import resnet_projection_reference
    return resnet_projection_reference


def _count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


@pytest.mark.parametrize("num_classes", [None, 10])
def test_parameter_counts_match_torch(ref, num_classes):
    z, y = jnp.zeros((2, 128)), jnp.zeros((2,), jnp.int32)
    g = jax.eval_shape(ResNetGenerator(num_classes).init, jax.random.key(0), z, y)
    d = jax.eval_shape(ResNetDiscriminator(num_classes).init, jax.random.key(0),
                       jnp.zeros((2, 32, 32, 3)), y)
    tg, td = ref.Generator(num_classes), ref.Discriminator(num_classes)
    assert _count(g["params"]) == sum(p.numel() for p in tg.parameters())
    assert _count(d["params"]) == sum(p.numel() for p in td.parameters())


@pytest.mark.parametrize("num_classes,resolution", [(K, 32), (None, 28)])
def test_generator_matches_torch(ref, num_classes, resolution):
    import torch
    z, y, _ = _inputs()
    g = ResNetGenerator(num_classes, W, Z, resolution=resolution)
    gv = _random_variables(g, z, y)
    tg = ref.Generator(num_classes, W, Z, resolution=resolution)
    ref.load_flax_variables(tg, gv)
    tz, ty = torch.from_numpy(np.array(z)), torch.from_numpy(np.array(y)).long()
    with torch.no_grad():
        want_eval = tg.eval()(tz, ty).numpy().transpose(0, 2, 3, 1)
        want_train = tg.train()(tz, ty).numpy().transpose(0, 2, 3, 1)
    with fp32():
        got_eval = _apply(g)(gv, z, y)
        got, updated = _apply(g, train=True)(gv, z, y)
    np.testing.assert_allclose(got_eval, want_eval, atol=1e-4)
    np.testing.assert_allclose(got, want_train, atol=1e-4)
    # The running statistics moved the same way (torch's var is unbiased, flax's biased).
    mean = np.asarray(updated["batch_stats"]["out_bn"]["mean"])
    np.testing.assert_allclose(mean, tg.out_bn.running_mean.numpy(), atol=1e-4)


@pytest.mark.parametrize("spectral_norm", [True, False])
def test_discriminator_matches_torch(ref, spectral_norm):
    import torch
    _, y, x = _inputs()
    d = ResNetDiscriminator(K, W, spectral_norm=spectral_norm)
    dv = _random_variables(d, x, y)
    td = ref.Discriminator(K, W, spectral_norm=spectral_norm).eval()
    ref.load_flax_variables(td, dv)
    tx = torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        want, want_h = td(tx, torch.from_numpy(np.array(y)).long()).numpy(), \
            td.features(tx).numpy()
    with fp32():
        got, got_h = _apply(d)(dv, x, y), _apply(d, method="features")(dv, x)
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())
    np.testing.assert_allclose(got_h, want_h, atol=1e-4 * np.abs(want_h).max())


@pytest.mark.parametrize("resolution", [64, 128])
def test_bigbigan_torch_reference_parameter_counts_at_biggan_resolutions(resolution):
    # benchmarks/bigbigan_throughput.py times jgan's BigBiGAN step against this twin.
    pytest.importorskip("torch")
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import bigbigan_torch_reference as bb
    config = bb.load_config(bb.with_resolution("mnist,runlocal", resolution))
    nets = bb.Nets(bb.arch_from_config(config))
    assert bb.torch_param_counts(nets) == bb.jgan_param_counts(config)
