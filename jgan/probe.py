"""Linear probe and k-NN accuracy of a trained run's network, on a labelled image dataset.

    python -m jgan.probe --workdir=DIR --network=discriminator --dataset=mnist
    python -m jgan.probe --workdir=DIR --network=discriminator --dataset=mnist --random_init
    python -m jgan.probe --workdir=DIR --network=encoder --method=features \\
        --dataset=fashion_mnist --num_train=10000 --num_test=2000

Any network of a run is an encoder: its features of an image batch `[B, R, R, C]` in
[-1, 1] are its output flattened to `[B, D]`, frozen, and `jgan.eval.probe` measures
them: multinomial logistic regression (`linear_probe`) and the weighted cosine k-NN
(`knn_accuracy`), trained on the first `--num_train` images of the dataset's train
split and scored on the first `--num_test` of its test split (default: all of each).

How the network is called (`--method`):

* unset: `__call__(images, features=True)` when `__call__` takes `features` (every jgan
  discriminator: its penultimate features, before the logit layer); else the module's
  `features` method when it has one (the autoencoders' encoders: the code, or the
  posterior mean of a VAE); else `__call__(images)`.
* `--method=__call__`: `__call__(images)`, nothing added.
* `--method=NAME`: the module's method NAME; or, when the module has no such method, its
  submodule NAME, called with `features=True` when it takes it (ACGAN's discriminator:
  `--method=trunk`, the trunk both heads read).

`--features_kwarg=NAME=VALUE` (repeatable; VALUE a Python literal, true / false
accepted) adds keyword arguments to the call and overrides the automatic
`features=True` (`--features_kwarg=features=false` probes the logits). Networks that
need more than images (a label-conditioned discriminator's labels, PacGAN's packs)
are refused with an error naming what they need.

`--random_init` probes the same architecture with its initial parameters (the run's
state before its first step, `game.init` with the run's seed): the baseline a trained
network's features are compared against, in the same protocol. `--use_ema` uses the
EMA weights of the network's team where it keeps them.

Images reach the run's resolution and channels as its training data do (`data.resize`,
`jgan.data.images.to_run_shape`). The output (default `DIR/probe_NETWORK.json`,
`DIR/probe_NETWORK_random_init.json` with `--random_init`) holds both accuracies, the
network, the probed step and the protocol.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import flags, logging

from jgan import cli
from jgan.errors import JganError, UsageError
from jgan.models.calling import accepts, train_kwargs

__all__ = ["ProbeError", "RunImages", "feature_call", "make_encode_fn", "parse_kwargs",
           "probe_run"]


def _define_flags() -> None:
    # Defined when run as a program only: jgan.sample and jgan.evaluate define flags of
    # the same names, and a module that defines flags on import clashes with them.
    flags.DEFINE_string("workdir", None, "A training run's workdir.")
    flags.DEFINE_string("network", None, "The network to probe (e.g. discriminator).")
    flags.DEFINE_string(
        "method", None, "Method (or submodule) of the network to call; unset: features=True "
        "when __call__ takes it, else the `features` method, else __call__.")
    flags.DEFINE_multi_string(
        "features_kwarg", [], "NAME=VALUE keyword argument of the call (repeatable).")
    flags.DEFINE_string("dataset", None, "TFDS dataset with labels and train / test "
                        "splits, e.g. mnist or fashion_mnist (default: the run's).")
    flags.DEFINE_string("data_dir", None, "TFDS data dir (default: the run's data_dir).")
    flags.DEFINE_integer("num_train", None, "Train-split images (default: all).")
    flags.DEFINE_integer("num_test", None, "Test-split images (default: all).")
    flags.DEFINE_bool("random_init", False,
                      "Probe the network's initial parameters (the run's step 0).")
    flags.DEFINE_bool("use_ema", False, "Use the EMA weights of the network's team.")
    flags.DEFINE_integer("batch_size", 256, "Images per network call.")
    flags.DEFINE_float("l2", 1e-4, "Weight decay of the linear probe.")
    flags.DEFINE_integer("k", 20, "Neighbours of the k-NN classifier.")
    flags.DEFINE_string("out", None, "Output JSON (default DIR/probe_NETWORK[_random_init]"
                        ".json).")


TRAIN_SPLIT, TEST_SPLIT = "train", "test"
KNN_TEMPERATURE = 0.07


class ProbeError(JganError, ValueError):
    """A probe that cannot run; the message names the network, dataset or flag at fault."""


def parse_kwargs(items) -> dict:
    """`["NAME=VALUE", ...]` -> `{NAME: VALUE}`, each VALUE a Python literal (`true`,
    `false`, `none` in any case too); anything else stays a string."""
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise ProbeError(f"--features_kwarg {item!r} is not NAME=VALUE.")
        lowered = {"true": True, "false": False, "none": None}
        if text.lower() in lowered:
            out[name] = lowered[text.lower()]
            continue
        try:
            out[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[name] = text
    return out


def _describe(network: str, module: nn.Module) -> str:
    return f"network {network!r} ({type(module).__name__})"


def _required_inputs(function, kwargs: dict) -> list[str]:
    """Positional parameters after the first input that have no default and no kwarg."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return []
    positional = [p for p in parameters[1:]  # parameters[0]: self / the module
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [p.name for p in positional[1:]
            if p.default is p.empty and p.name not in kwargs]


def feature_call(network: str, module: nn.Module, method: str | None = None,
                 kwargs: dict | None = None):
    """How the probe calls `module` on images (the module docstring's rules).

    Returns:
      `(apply_method, call_kwargs, description)`: the `method` for `Game.apply` (None,
      a method name, or a function of the module), the keyword arguments, and a
      readable form of the call for the results.
    Raises:
      ProbeError: the method names neither a method nor (possibly) a submodule, or the
        call needs inputs besides the images.
    """
    kwargs = dict(kwargs or {})
    cls = type(module)
    if method is None:
        if accepts(module, "features"):
            kwargs.setdefault("features", True)
            function, apply_method, name = cls.__call__, None, "__call__"
        elif callable(getattr(cls, "features", None)):
            function, apply_method, name = cls.features, "features", "features"
        else:
            function, apply_method, name = cls.__call__, None, "__call__"
    elif method == "__call__":
        function, apply_method, name = cls.__call__, None, "__call__"
    elif inspect.isroutine(getattr(cls, method, None)):
        function, apply_method, name = getattr(cls, method), method, method
    elif not method.isidentifier() or method.startswith("_"):
        raise ProbeError(f"{_describe(network, module)} has no method {method!r}.")
    else:  # a submodule (a field, or one its setup makes): found once the module is bound
        field = getattr(module, method, None)  # a field's module; setup's are not made yet
        if isinstance(field, nn.Module) and "features" not in kwargs and accepts(field,
                                                                                 "features"):
            kwargs["features"] = True
        apply_method = _submodule_call(network, module, method, dict(kwargs))
        return apply_method, {}, f"{method}({_kwargs_text(kwargs)})"
    needs = _required_inputs(function, kwargs)
    if needs:
        raise ProbeError(
            f"{_describe(network, module)}: {name} needs {', '.join(needs)} besides the "
            "images (a label-conditioned discriminator's labels); a probe feeds images only: "
            "probe a network (or --method) that reads images alone.")
    return apply_method, kwargs, f"{name}({_kwargs_text(kwargs)})"


def _kwargs_text(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def _output_hint(module: nn.Module) -> str:
    """The --method values that may give one array: `features`, field submodules."""
    options = ["features"] if inspect.isroutine(getattr(type(module), "features", None)) else []
    options += [f.name for f in dataclasses.fields(module)
                if f.name != "parent" and isinstance(getattr(module, f.name, None), nn.Module)]
    if not options:
        return "choose the output with --method or --features_kwarg"
    return ("choose the output with " + " or ".join(f"--method={o}" for o in options)
            + " (or --features_kwarg)")


def _submodule_call(network: str, module: nn.Module, name: str, kwargs: dict):
    def call(bound, images, train: bool = False):
        sub = getattr(bound, name, None)
        if not isinstance(sub, nn.Module):
            raise ProbeError(f"{_describe(network, module)} has no method or submodule "
                             f"{name!r}.")
        extra = dict(kwargs)
        if "features" not in extra and accepts(sub, "features"):
            extra["features"] = True
        return sub(images, **train_kwargs(sub, train), **extra)
    return call


def make_encode_fn(game, state, network: str, *, batch_size: int, image_shape: tuple,
                   method: str | None = None, kwargs: dict | None = None,
                   use_ema: bool = False):
    """A jitted `encode_fn(images [batch_size, *image_shape]) -> features [batch_size, D]`
    of `state`'s `network` (its output flattened), checked on that shape first.

    Returns:
      `(encode_fn, info)`, info a dict with `module`, `call` (the call's description),
      `method`, `kwargs`, `ema` (whether EMA weights are used) and `feature_dim`.
    Raises:
      ProbeError: an unknown network (the message lists the game's), a network that
        needs inputs besides images, does not take images of this shape, returns no
        single array, or returns other than one row per image.
    """
    modules = game.modules
    if network not in modules:
        raise ProbeError(f"No network named {network!r} in this run; its networks: "
                         f"{', '.join(sorted(modules))}.")
    module = modules[network]
    apply_method, call_kwargs, description = feature_call(network, module, method, kwargs)
    use_ema = bool(use_ema) and game.team_of(network) in state.ema
    what = _describe(network, module)

    def encode(state, images):
        out = game.apply(state, network, images, use_ema=use_ema, method=apply_method,
                         **call_kwargs)
        if not hasattr(out, "shape"):
            kind = type(out).__name__
            size = f" of {len(out)}" if isinstance(out, (tuple, list, dict)) else ""
            raise ProbeError(f"{what}: {description} returns a {kind}{size}, not one array of "
                             f"features; {_output_hint(module)}.")
        if out.ndim < 1 or out.shape[0] != images.shape[0]:
            raise ProbeError(f"{what}: {description} maps {images.shape[0]} images to shape "
                             f"{out.shape}, not one row per image (a PacGAN discriminator "
                             "judges packs of images); its features are not per image.")
        return out.reshape(out.shape[0], -1).astype(jnp.float32)

    example = jax.ShapeDtypeStruct((batch_size, *image_shape), jnp.float32)
    try:
        shape = jax.eval_shape(encode, state, example).shape
    except ProbeError:
        raise
    except Exception as e:  # the network's own complaint about its inputs
        raise ProbeError(f"{what} cannot encode images of shape {example.shape} with "
                         f"{description}{_init_inputs_hint(game, network, image_shape)}: "
                         f"{type(e).__name__}: {e}") from e
    info = {"module": type(module).__name__, "call": description, "method": method,
            "kwargs": {k: v for k, v in (kwargs or {}).items()}, "ema": use_ema,
            "feature_dim": int(np.prod(shape[1:]))}
    return functools.partial(jax.jit(encode), state), info


def _init_inputs_hint(game, network: str, image_shape: tuple) -> str:
    """The shapes the run initializes `network` with (`game.example_inputs`), as a hint."""
    batch = {"image": jax.ShapeDtypeStruct((1, *image_shape), jnp.float32),
             "label": jax.ShapeDtypeStruct((1,), jnp.int32)}
    try:
        inputs = jax.eval_shape(game.example_inputs, batch)[network]
    except Exception:  # a hint only
        return ""
    shapes = ", ".join(str(tuple(x.shape)) for x in jax.tree.leaves(inputs))
    return f" (the run initializes it with inputs of shapes {shapes})"


class RunImages:
    """A labelled image source seen at a run's resolution and channels (uint8), the
    conversion of its training data (`jgan.data.images.to_run_shape`)."""

    def __init__(self, source, resolution: int, channels: int, resize: str = "bicubic"):
        self.source = source
        self.resolution, self.channels, self.resize = resolution, channels, resize

    def __len__(self) -> int:
        return len(self.source)

    def _convert(self, record: dict) -> dict:
        from jgan.data.images import to_run_shape
        image = to_run_shape(np.asarray(record["image"]), self.resolution, self.channels,
                             self.resize)
        return {"image": image, "label": record["label"]}

    def __getitem__(self, index: int) -> dict:
        return self._convert(self.source[index])

    def __getitems__(self, indices) -> list[dict]:
        read_many = getattr(self.source, "__getitems__", None)
        records = read_many(indices) if read_many else [self.source[i] for i in indices]
        return [self._convert(r) for r in records]


def _image_sources(config, dataset: str | None, data_dir: str | None):
    from jgan.data.images import tfds_source
    d = config.data
    if d.kind == "mixture":
        raise ProbeError("This run trains on 2-D mixture data (data.kind='mixture'); the "
                         "probe encodes images: probe an image run.")
    if dataset is None:
        if d.kind != "tfds":
            raise ProbeError(f"--dataset is required: this run trains on data.kind="
                             f"{d.kind!r}, not a TFDS dataset.")
        dataset = d.name
    data_dir = data_dir or d.get("data_dir") or None
    sources = {split: tfds_source(dataset, split=split, data_dir=data_dir)
               for split in (TRAIN_SPLIT, TEST_SPLIT)}
    first = sources[TRAIN_SPLIT][0]
    if "label" not in first:
        raise ProbeError(f"{dataset}/{TRAIN_SPLIT} has no labels (keys {sorted(first)}); "
                         "the probe needs class labels.")
    shape = np.asarray(first["image"]).shape
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise ProbeError(f"{dataset} images have shape {shape}; the probe takes (H, W), "
                         "(H, W, 1) or (H, W, 3).")
    resize = d.get("resize", "bicubic")
    run = {split: RunImages(source, d.resolution, d.channels, resize)
           for split, source in sources.items()}
    images = {"dataset": dataset, "data_dir": data_dir, "source_shape": list(shape),
              "resolution": d.resolution, "channels": d.channels, "resize": resize}
    return run[TRAIN_SPLIT], run[TEST_SPLIT], images


def probe_run(workdir: str | Path, network: str, *, dataset: str | None = None,
              data_dir: str | None = None, num_train: int | None = None,
              num_test: int | None = None, random_init: bool = False, use_ema: bool = False,
              method: str | None = None, kwargs: dict | None = None, batch_size: int = 256,
              l2: float = 1e-4, k: int = 20) -> dict:
    """Linear-probe and k-NN accuracy of `network` of the run in `workdir`.

    Args:
      workdir: a run's workdir (its latest checkpoint is probed).
      network: the network's name in the run's game.
      dataset: TFDS dataset with labels and train / test splits (None: the run's).
      data_dir: TFDS data dir (None: the run's `data.data_dir`, else TFDS's default).
      num_train, num_test: the first this many images of each split (None: all).
      random_init: probe the run's initial parameters instead (its state at step 0).
      use_ema: the EMA weights of the network's team, where it keeps them.
      method, kwargs: how the network is called (`feature_call`).
      batch_size: images per network call.
      l2, k: the linear probe's weight decay, the k-NN's neighbours.
    Returns:
      The JSON-able results: `jgan.eval.probe.probe_encoder`'s (`linear`, `knn_top1`,
      `num_train`, `num_test`, `feature_dim`, `k`), with the run, the network, the call,
      the step, the images and the protocol.
    Raises:
      ProbeError (a ValueError): see `make_encode_fn`, and a dataset the run cannot take.
      FileNotFoundError: no run or no checkpoint in `workdir`.
    """
    from jgan.eval.probe import probe_encoder
    from jgan.runs import initial_state, load_run
    config, game, state = load_run(workdir)
    checkpoint_step = int(state.step)
    if random_init:
        state = initial_state(config, game)
    train, test, images = _image_sources(config, dataset, data_dir)
    image_shape = (config.data.resolution, config.data.resolution, config.data.channels)
    encode_fn, info = make_encode_fn(game, state, network, batch_size=batch_size,
                                     image_shape=image_shape, method=method, kwargs=kwargs,
                                     use_ema=use_ema)
    if use_ema and not info["ema"]:
        logging.warning("--use_ema: the team of %r keeps no EMA weights; probing its "
                        "weights.", network)
    result = probe_encoder(encode_fn, train, test, batch_size=batch_size, num_train=num_train,
                           num_test=num_test, l2=l2, k=k, temperature=KNN_TEMPERATURE)
    return {
        "workdir": str(Path(workdir).resolve()),
        "network": network,
        **{key: info[key] for key in ("module", "call", "method", "kwargs", "ema")},
        "random_init": bool(random_init),
        "step": int(state.step),
        "checkpoint_step": checkpoint_step,
        "images": {**images, "train_split": TRAIN_SPLIT, "test_split": TEST_SPLIT},
        **result,
        "protocol": {
            "features": "the network's output flattened to (N, D), float32, inference mode "
                        "(batch norm with running statistics), images in [-1, 1]",
            "examples": f"the first num_train of {TRAIN_SPLIT}, the first num_test of "
                        f"{TEST_SPLIT}",
            "linear": "multinomial logistic regression on train-standardized features, "
                      "L2-regularized, full-batch L-BFGS (jgan.eval.probe.linear_probe)",
            "linear_bn_crelu": "the same on BigBiGAN's second readout: each dimension "
                               "standardized with train statistics, then CReLU "
                               "[max(h, 0), max(-h, 0)] (jgan.eval.probe.readout)",
            "l2": float(l2),
            "knn": "weighted k-NN, cosine similarity, votes exp(s / T) (Wu et al. 2018; "
                   "jgan.eval.probe.knn_accuracy)",
            "k": int(k),
            "temperature": KNN_TEMPERATURE,
        },
    }


def default_out(workdir: str | Path, network: str, random_init: bool) -> Path:
    """`workdir/probe_NETWORK.json` (`probe_NETWORK_random_init.json` for the baseline)."""
    return Path(workdir) / f"probe_{network}{'_random_init' if random_init else ''}.json"


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    if not flags.FLAGS.workdir or not flags.FLAGS.network:
        raise UsageError("--workdir and --network are required.")
    result = probe_run(flags.FLAGS.workdir, flags.FLAGS.network, dataset=flags.FLAGS.dataset,
                       data_dir=flags.FLAGS.data_dir, num_train=flags.FLAGS.num_train,
                       num_test=flags.FLAGS.num_test, random_init=flags.FLAGS.random_init,
                       use_ema=flags.FLAGS.use_ema, method=flags.FLAGS.method or None,
                       kwargs=parse_kwargs(flags.FLAGS.features_kwarg), batch_size=flags.FLAGS.batch_size,
                       l2=flags.FLAGS.l2, k=flags.FLAGS.k)
    out = Path(flags.FLAGS.out or default_out(flags.FLAGS.workdir, flags.FLAGS.network, flags.FLAGS.random_init))
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({"network": result["network"], "random_init": result["random_init"],
                      "step": result["step"], "call": result["call"],
                      "linear_top1": result["linear"]["top1"],
                      "linear_bn_crelu_top1": result["linear_bn_crelu"]["top1"],
                      "knn_top1": result["knn_top1"], "num_train": result["num_train"],
                      "num_test": result["num_test"], "feature_dim": result["feature_dim"]},
                     indent=2))
    print(f"Wrote {out}")


if __name__ == "__main__":
    _define_flags()
    cli.run(main)
