"""The layers of a trained generator that a rank-one edit can rewrite, and their keys
and values (Bau et al. 2020; `jgan.generator_rewriting` makes the edit).

A layer is a linear associative memory from keys k (a convolution's input patch at a
pixel, or a 1x1 layer's input feature vector) to values v = W k (its output there,
minus the bias). `survey_layers` traces the generator once with
`flax.linen.intercept_methods` and lists every layer it calls, each `Layer` or the
reason it cannot be rewritten; `capture` records one layer's input and output while
the generator draws; `keys_and_values` unfolds them; `key_covariance_of` streams
C = E[k k^T] over generated samples.

Supported layers: ProGAN's `EqualizedConv` (its effective kernel is the stored one
times a run-time constant, `Layer.scale`), `flax.linen.Conv` (one group, stride and
dilation of any size, "SAME" or "VALID" padding), and `EqualizedDense` /
`flax.linen.Dense` applied to feature maps `[B, H, W, C]`. Not supported: transposed
and sub-pixel upsampling convolutions (DCGAN's `UpsampleConv`), dense layers on
vectors (no pixels to copy and paste), a style generator's modulated convolutions
(per-sample weights: not one linear map).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.errors import UsageError
from jgan.models import progressive
from jgan.rank_one_edit import (accumulate_keys, extract_patches, init_key_statistics,
                                key_covariance)

SUPPORTED = "EqualizedConv, flax Conv, and EqualizedDense / flax Dense on feature maps"


# Layers ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Layer:
    """A linear layer of the generator that an edit may rewrite.

    Attributes:
      path: the module's path inside the generator network, which is also its params'
        path (`("network", "blocks_2", "conv0")`).
      kernel_size: `(kh, kw)`; `(1, 1)` for a dense layer.
      strides, dilation: the convolution's (`(1, 1)` for dense).
      padding: "SAME" or "VALID".
      scale: the effective kernel is the stored one times `scale` (equalized learning
        rate: gain / sqrt(fan_in); 1 for flax layers).
      kind: the module's class name (for messages).
    """
    path: tuple[str, ...]
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    scale: float = 1.0
    kind: str = ""

    @property
    def name(self) -> str:
        return "/".join(self.path)


def _pair(value, default: int = 1) -> tuple[int, int]:
    if value is None:
        return (default, default)
    if isinstance(value, int):
        return (value, value)
    return tuple(int(v) for v in value)


def describe_layer(module: nn.Module, path: tuple[str, ...], kernel_shape: Sequence[int],
                   input_shape: Sequence[int]) -> Layer | str:
    """The `Layer` that `module` (called on `input_shape`, kernel `kernel_shape`) is, or
    a reason it cannot be rewritten (a string)."""
    kind = type(module).__name__
    spatial = len(input_shape) == 4
    fan_in = math.prod(kernel_shape[:-1])
    if isinstance(module, progressive.EqualizedConv):
        k = module.kernel_size
        return Layer(path, (k, k), scale=module.gain / math.sqrt(fan_in), kind=kind)
    if isinstance(module, nn.Conv) and type(module) is nn.Conv:
        if len(kernel_shape) != 4:
            return f"a {len(kernel_shape) - 2}-D convolution (only 2-D ones are supported)"
        if module.feature_group_count != 1 or module.input_dilation not in (None, 1, (1, 1)):
            return "a grouped or input-dilated convolution"
        padding = module.padding if isinstance(module.padding, str) else None
        if padding not in ("SAME", "VALID") or module.mask is not None:
            return f"a convolution with padding {module.padding!r} (SAME and VALID are supported)"
        return Layer(path, tuple(kernel_shape[:2]), _pair(module.strides),
                     _pair(module.kernel_dilation), padding, kind=kind)
    if isinstance(module, progressive.EqualizedDense) or type(module) is nn.Dense:
        if not spatial:
            return (f"a dense layer on vectors of {input_shape[-1]} features, with no pixels "
                    "to copy and paste between")
        gain = getattr(module, "gain", None)
        scale = 1.0 if gain is None else gain / math.sqrt(fan_in)
        return Layer(path, (1, 1), scale=scale, kind=kind)
    if isinstance(module, nn.ConvTranspose):
        return "a transposed convolution"
    return f"a {kind}"


def _has_own_params(module: nn.Module) -> dict | None:
    params = module.variables.get("params", {})
    own = {k: v for k, v in params.items() if not isinstance(v, dict)
           and hasattr(v, "shape")}
    return own or None


def survey_layers(game, state, sampler, *, use_ema: bool) -> dict[str, Layer | str]:
    """`{name: Layer or why not}` of every module with parameters of its own that one
    generator pass calls (traced with abstract values: nothing is computed)."""
    found = {}

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name == "__call__" and module.scope is not None:
            own = _has_own_params(module)
            path = tuple(module.path)
            if own is not None and path and "/".join(path) not in found:
                kernel = own.get("kernel")
                if kernel is None:
                    found["/".join(path)] = f"a {type(module).__name__} without a kernel"
                else:
                    found["/".join(path)] = describe_layer(module, path, kernel.shape,
                                                           jnp.shape(args[0]))
        return out

    def run(state, inputs):
        nets = game.bind(state, train=False, rng=jax.random.key(0), use_ema=use_ema)
        with nn.intercept_methods(interceptor):
            return sampler.generate(nets, inputs)

    jax.eval_shape(run, state, sampler.random(jax.random.key(0), 1))
    return found


def find_layer(layers: dict[str, Layer | str], name: str, network: str) -> Layer:
    """The `Layer` named `name` (with or without the `network/` prefix).

    Raises:
      UsageError: no such layer, or one the edit does not support (names it and lists
        the supported layers found).
    """
    key = name.strip("/")
    if key.startswith(network + "/") and key not in layers:
        key = key[len(network) + 1:]
    supported = [n for n, layer in layers.items() if isinstance(layer, Layer)]
    listing = (f"the generator's supported layers: {', '.join(supported)}" if supported
               else f"the generator has none ({SUPPORTED} are supported)")
    if key not in layers:
        raise UsageError(f"--layer={name}: the generator {network!r} has no layer {key!r}; "
                         f"{listing}.")
    if not isinstance(layers[key], Layer):
        raise UsageError(f"--layer={name}: {layers[key]}, which rewriting does not support "
                         f"({SUPPORTED} are); {listing}.")
    return layers[key]


# Keys and values ------------------------------------------------------------------------

def capture(game, state, sampler, layer: Layer, inputs: dict, *, use_ema: bool):
    """`(images [N, R, R, C], layer input, layer output)` of the generator on `inputs`
    (the layer's input and output as it computes them, e.g. `[N, H, W, Cin]` and
    `[N, Ho, Wo, Cout]`). Jit it (`layer` static) for speed."""
    captured = []

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if (context.method_name == "__call__" and context.module.scope is not None
                and tuple(context.module.path) == layer.path):
            captured.append((args[0], out))
        return out

    nets = game.bind(state, train=False, rng=jax.random.key(0), use_ema=use_ema)
    with nn.intercept_methods(interceptor):
        images = sampler.generate(nets, inputs)
    if len(captured) != 1:
        raise UsageError(f"--layer={layer.name}: called {len(captured)} times in one "
                         "generator pass; only layers called once can be rewritten.")
    x, y = captured[0]
    return images, x.astype(jnp.float32), y.astype(jnp.float32)


def keys_and_values(layer: Layer, x: jax.Array, y: jax.Array, bias: jax.Array | None):
    """Keys `[N, Ho, Wo, kh * kw * Cin]` (`extract_patches` of the layer's input `x`) and
    values `[N, Ho, Wo, Cout]` (its output `y` minus the bias)."""
    if x.ndim != 4:
        raise UsageError(f"--layer={layer.name}: its input {x.shape} has no pixels.")
    keys = extract_patches(x, layer.kernel_size, strides=layer.strides,
                           dilation=layer.dilation, padding=layer.padding)
    values = y if bias is None else y - bias.astype(y.dtype)
    return keys, values


def layer_params(params: dict, layer: Layer) -> dict:
    """The layer's `{"kernel", "bias"?}` in a network's params tree."""
    node = params
    for part in layer.path:
        node = node[part]
    return node


def key_covariance_of(game, state, sampler, layer: Layer, *, num_samples: int,
                      batch_size: int, seed: int, use_ema: bool) -> jax.Array:
    """C `[Din, Din]` of the layer's keys over `num_samples` generated samples, drawn in
    batches from `sampler.random(fold_in(PRNGKey(seed), i))`."""
    network = sampler.network

    @jax.jit
    def add(stats, state, inputs):
        _, x, y = capture(game, state, sampler, layer, inputs, use_ema=use_ema)
        keys, _ = keys_and_values(layer, x, y, None)
        return accumulate_keys(stats, keys.reshape(-1, keys.shape[-1]))

    params = state.params(use_ema=use_ema)[network]
    kernel = layer_params(params, layer)["kernel"]
    stats = init_key_statistics(math.prod(kernel.shape[:-1]))
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 7)
    for i, start in enumerate(range(0, num_samples, batch_size)):
        n = min(batch_size, num_samples - start)
        stats = add(stats, state, sampler.random(jax.random.fold_in(key, i), n))
    return key_covariance(stats)
