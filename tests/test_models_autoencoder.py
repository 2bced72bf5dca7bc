"""Tests for jgan.models.autoencoder: shapes, determinism, per-example independence,
named errors, composition with the variational bounds, and that the convolutional
autoencoder can fit a small fixed set of images.

Shapes are checked with `jax.eval_shape` (nothing compiles), and weights are filled from
numpy instead of by the modules' initializers, whose random-number generation XLA takes
seconds to compile on CPU. Small widths keep the whole file to a few seconds of compute.
"""
from __future__ import annotations

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special

from jgan.models import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from jgan.objectives import variational


def lecun_variables(module, *args, seed=0):
    """`module`'s variables without compiling its initializer: kernels N(0, 1 / fan_in)
    (LeCun normal, flax's default), biases 0."""
    shapes = flax.core.unfreeze(jax.eval_shape(module.init, jax.random.key(0), *args))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        if path[-1].key == "bias":
            return jnp.zeros(leaf.shape, leaf.dtype)
        fan_in = np.prod(leaf.shape[:-1])
        return jnp.asarray(rng.standard_normal(leaf.shape) / np.sqrt(fan_in), leaf.dtype)
    return jax.tree_util.tree_map_with_path(fill, shapes)


def output_shapes(module, *args, **kwargs):
    return jax.eval_shape(lambda: module.init_with_output(jax.random.key(0), *args, **kwargs)[0])


def blobs(num=64, resolution=28, seed=0) -> np.ndarray:
    """`[num, resolution, resolution, 1]` MNIST-like images in [0, 1]: one to three
    Gaussian blobs of random centre and width each, from a fixed seed."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:resolution, :resolution]
    images = np.zeros((num, resolution, resolution, 1), np.float32)
    for image in images:
        for _ in range(rng.integers(1, 4)):
            centre = rng.uniform(6, resolution - 6, size=2)
            width = rng.uniform(1.5, 4.0)
            image[..., 0] += np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2)
                                    / (2 * width ** 2))
    return np.clip(images, 0.0, 1.0)


# ----------------------------------------------------------- shapes


@pytest.mark.parametrize("resolution", [28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_conv_shapes_and_roundtrip(resolution, channels):
    x = jnp.zeros((5, resolution, resolution, channels))
    code = output_shapes(ConvEncoder(latent_dim=16, resolution=resolution), x)
    chex.assert_shape(code, (5, 16))
    mean, log_var = output_shapes(ConvEncoder(latent_dim=16, resolution=resolution,
                                              variational=True), x, train=True)
    chex.assert_shape([mean, log_var], (5, 16))
    decoder = ConvDecoder(resolution=resolution, channels=channels)
    chex.assert_shape(output_shapes(decoder, jnp.zeros((5, 16))), x.shape)
    # encoder -> decoder gives back x's shape.
    encoder = ConvEncoder(latent_dim=16, resolution=resolution, width=4, dense_hidden=0)

    def roundtrip(x):
        z = encoder.apply(lecun_variables(encoder, x), x)
        return decoder.apply(lecun_variables(decoder, z), z)
    chex.assert_shape(jax.eval_shape(roundtrip, x), x.shape)


def test_conv_parameter_tree():
    x = jnp.zeros((2, 28, 28, 1))
    params = lecun_variables(ConvEncoder(latent_dim=8, variational=True), x)["params"]
    chex.assert_shape(params["conv0"]["kernel"], (4, 4, 1, 32))
    chex.assert_shape(params["conv1"]["kernel"], (4, 4, 32, 64))
    chex.assert_shape(params["hidden"]["kernel"], (7 * 7 * 64, 256))
    assert set(params) == {"conv0", "conv1", "hidden", "mean", "log_var"}
    params = lecun_variables(ConvDecoder(dense_hidden=0), jnp.zeros((2, 8)))["params"]
    assert set(params) == {"project", "up0", "up1"}
    chex.assert_shape(params["project"]["kernel"], (8, 7 * 7 * 64))


def test_mlp_shapes():
    x = jnp.zeros((6, 2))
    chex.assert_shape(output_shapes(MLPEncoder(latent_dim=3), x), (6, 3))
    chex.assert_shape(output_shapes(MLPEncoder(latent_dim=3, variational=True), x), (6, 3))
    chex.assert_shape(output_shapes(MLPDecoder(), jnp.zeros((6, 3))), (6, 2))
    # Images are flattened: the classic MLP VAE on MNIST.
    chex.assert_shape(output_shapes(MLPEncoder(latent_dim=20, hidden=(400,)),
                                    jnp.zeros((6, 28, 28, 1))), (6, 20))
    chex.assert_shape(output_shapes(MLPDecoder(hidden=(400,), output_dim=784),
                                    jnp.zeros((6, 20))), (6, 784))


# ----------------------------------------------------------- behaviour


def test_conv_encoder_is_deterministic_and_per_example():
    encoder = ConvEncoder(latent_dim=6, width=4, dense_hidden=16, variational=True)
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(4, 28, 28, 1)), jnp.float32)
    variables = lecun_variables(encoder, x)
    apply = jax.jit(encoder.apply, static_argnames=("method",))
    mean, log_var = apply(variables, x)
    chex.assert_trees_all_equal((mean, log_var), apply(variables, x))
    assert not np.allclose(mean[0], mean[1])
    # No batch statistics: an example's posterior does not depend on its batch.
    chex.assert_trees_all_close(apply(variables, x[:1]), (mean[:1], log_var[:1]), atol=1e-6)
    # The probe's features are the posterior mean.
    chex.assert_trees_all_equal(apply(variables, x, method="features"), mean)
    other = lecun_variables(encoder, x, seed=1)
    assert not np.allclose(apply(other, x)[0], mean)


def test_decoders_and_mlp_encoder_are_deterministic():
    z = jnp.asarray(np.random.default_rng(2).normal(size=(3, 5)), jnp.float32)
    for decoder in (ConvDecoder(resolution=32, channels=3, width=4, dense_hidden=0),
                    MLPDecoder(hidden=(8, 8))):
        variables = lecun_variables(decoder, z)
        apply = jax.jit(decoder.apply)
        chex.assert_trees_all_equal(apply(variables, z), apply(variables, z))
        chex.assert_tree_all_finite(apply(variables, z))
    encoder = MLPEncoder(latent_dim=4, hidden=(8,))
    x = jnp.ones((3, 2))
    variables = lecun_variables(encoder, x)
    chex.assert_trees_all_equal(encoder.apply(variables, x, method="features"),
                                encoder.apply(variables, x))


def test_bad_shapes_raise_named_errors():
    encoder = ConvEncoder(latent_dim=4)
    with pytest.raises(ValueError, match=r"ConvEncoder\(resolution=28\).*got x \(2, 32, 32, 1\)"):
        output_shapes(encoder, jnp.zeros((2, 32, 32, 1)))
    with pytest.raises(ValueError, match=r"got x \(28, 28, 1\)"):
        output_shapes(encoder, jnp.zeros((28, 28, 1)))
    with pytest.raises(ValueError, match="resolution=30"):
        output_shapes(ConvEncoder(latent_dim=4, resolution=30), jnp.zeros((2, 30, 30, 1)))
    with pytest.raises(ValueError, match=r"ConvDecoder needs latents z .* got \(2, 4, 1\)"):
        output_shapes(ConvDecoder(), jnp.zeros((2, 4, 1)))
    with pytest.raises(ValueError, match=r"MLPDecoder needs latents z .* got \(4,\)"):
        output_shapes(MLPDecoder(), jnp.zeros((4,)))
    with pytest.raises(ValueError, match=r"MLPEncoder needs inputs .* got x \(4,\)"):
        output_shapes(MLPEncoder(latent_dim=2), jnp.zeros((4,)))


def test_conv_vae_composes_with_the_importance_weighted_bound():
    """The bound vmaps the decoder over samples inside a scan; compare with evaluating
    it on each sample in turn (k = 5 in chunks of 2: one padded chunk)."""
    x = jnp.asarray(blobs(num=3) > 0.5, jnp.float32)
    encoder = ConvEncoder(latent_dim=4, width=4, dense_hidden=0, variational=True)
    decoder = ConvDecoder(width=4, dense_hidden=0)
    enc_vars, dec_vars = lecun_variables(encoder, x), lecun_variables(decoder, jnp.zeros((1, 4)))
    key = jax.random.key(0)

    @jax.jit
    def bound_and_samples(x):
        mean, log_var = encoder.apply(enc_vars, x)
        log_likelihood_fn = lambda z: variational.bernoulli_log_likelihood(
            x, logits=decoder.apply(dec_vars, z))
        bound = variational.importance_weighted_bound(
            key, mean=mean, log_var=log_var, log_likelihood_fn=log_likelihood_fn,
            num_samples=5, chunk_size=2)
        z = variational.reparameterize(key, mean=mean, log_var=log_var, num_samples=5)
        log_q = variational.gaussian_log_density(z, mean=mean, log_var=log_var)
        return bound, z, log_q

    bound, z, log_q = bound_and_samples(x)
    chex.assert_shape(bound, (3,))
    decode = jax.jit(decoder.apply)
    log_weights = []
    for i in range(5):          # float64, one sample at a time, outside any vmap
        logits = np.asarray(decode(dec_vars, z[i]), np.float64)
        log_likelihood = np.sum(-np.asarray(x) * np.logaddexp(0, -logits)
                                - (1 - np.asarray(x)) * np.logaddexp(0, logits), axis=(1, 2, 3))
        log_prior = -0.5 * np.sum(np.log(2 * np.pi) + np.asarray(z[i], np.float64) ** 2, -1)
        log_weights.append(log_likelihood + log_prior - np.asarray(log_q[i]))
    expected = special.logsumexp(np.array(log_weights), axis=0) - np.log(5)
    chex.assert_trees_all_close(bound, jnp.float32(expected), rtol=1e-5)


def test_conv_autoencoder_fits_fixed_blobs():
    """150 Adam steps on 64 fixed blob images cut the reconstruction error by over 10x,
    and to a tenth of the error of the best constant output (the mean image): the code
    carries each image's content."""
    x = jnp.asarray(blobs())
    encoder = ConvEncoder(latent_dim=8, width=8, dense_hidden=32)
    decoder = ConvDecoder(width=8, dense_hidden=32)
    params = {"encoder": lecun_variables(encoder, x),
              "decoder": lecun_variables(decoder, jnp.zeros((1, 8)), seed=1)}
    optimizer = optax.adam(3e-3)

    def reconstruction_error(params):
        code = encoder.apply(params["encoder"], x, train=True)
        return jnp.mean(jnp.square(decoder.apply(params["decoder"], code, train=True) - x))

    @jax.jit
    def train(params):
        def step(carry, _):
            params, opt_state = carry
            error, grads = jax.value_and_grad(reconstruction_error)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), error
        (params, _), errors = jax.lax.scan(step, (params, optimizer.init(params)), None,
                                           length=150)
        return params, errors

    trained, errors = train(params)
    initial, final = float(errors[0]), float(jax.jit(reconstruction_error)(trained))
    mean_image_error = float(jnp.mean(jnp.square(x - x.mean(0))))
    assert final < initial / 10, (initial, final)
    assert final < mean_image_error / 10, (mean_image_error, final)
