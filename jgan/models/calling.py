"""How wrappers and the game call a flax module they did not define: only with the
keyword arguments its `__call__` declares (an MLP has no `train`, a DCGAN has)."""
from __future__ import annotations

import inspect

import flax.linen as nn


def accepts(module: nn.Module, keyword: str, method=None) -> bool:
    """Whether `module.__call__` declares the parameter `keyword`; with `method` (a
    method name, or a function `fn(module, ...)` as `nn.Module.apply` takes), whether
    that method does (an encoder's `features(x)` may lack the `train` of its `__call__`)."""
    if method is None:
        function = type(module).__call__
    elif isinstance(method, str):
        function = getattr(type(module), method, None)
    else:
        function = method
    try:
        return keyword in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def train_kwargs(module: nn.Module, train: bool) -> dict:
    """`{"train": train}` for a module that takes `train`, else `{}`."""
    return {"train": train} if accepts(module, "train") else {}


def feature_kwargs(module: nn.Module, *, features: bool, with_features: bool) -> dict:
    """The feature flags a wrapper forwards to the discriminator it wraps: only those
    asked for, so that a discriminator without them still takes a plain call.

    Raises:
      TypeError: a flag is asked for and `module` does not declare it.
    """
    kwargs = {}
    for name, wanted in (("features", features), ("with_features", with_features)):
        if wanted:
            if not accepts(module, name):
                raise TypeError(f"{type(module).__name__} takes no {name}=True: it does not "
                                "expose its features.")
            kwargs[name] = True
    return kwargs
