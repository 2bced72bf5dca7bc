"""Writes the small torch.save files that tests/test_inception.py reads without torch.

    python tests/data/make_torch_fixtures.py   # needs the local CPU torch, once

torch_state_{zip,legacy}.pth: a state dict of tensors with views, dtypes and a
Parameter; torch_state_expected.npz: what torch says they hold.
evil_{zip,legacy}.pth: a state dict whose pickle calls os.makedirs("jgan_pickle_ran"):
a reader that executes pickled code would create that folder in the working directory.
"""
import collections
import os
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


class _SideEffect:
    def __reduce__(self):
        return (os.makedirs, ("jgan_pickle_ran",))


def main():
    torch.manual_seed(0)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = collections.OrderedDict([
        ("a", base), ("transposed", base.t()), ("view", base[1:3, 2:5]),
        ("long", torch.tensor([1, -2, 3])), ("scalar", torch.tensor(7)),
        ("half", torch.randn(3, 2).half()), ("bool", torch.tensor([True, False])),
        ("empty", torch.zeros(0, 3)), ("param", torch.nn.Parameter(torch.ones(2))),
    ])
    for fmt, zip_format in (("zip", True), ("legacy", False)):
        torch.save(state, HERE / f"torch_state_{fmt}.pth", _use_new_zipfile_serialization=zip_format)
        torch.save({"w": torch.ones(2), "evil": _SideEffect()}, HERE / f"evil_{fmt}.pth",
                   _use_new_zipfile_serialization=zip_format)
    np.savez(HERE / "torch_state_expected.npz",
             **{k: v.detach().numpy() for k, v in state.items()})


if __name__ == "__main__":
    main()
