"""How much of a training step each device computes under data parallelism.

For each shipped config (its small variant, or as shipped with `--full`; batch 64, or
64 x d_steps where D's updates split the batch), compiles the step the way the trainer does on several devices
(`jax.jit` over a one-axis mesh, the batch split, the state replicated) and prints XLA's
FLOP count per device as a fraction of the one-device step's, twice:

* "no mesh in context": plain `jit` with shardings. Only the real batch is split; the
  latents, labels and codes a loss draws for itself are replicated, and with them
  every pass over the fakes (jgan before `jgan.sharding`).
* "trainer": the same, traced with the mesh in context (`jgan.sharding.on_mesh`), so
  `shard_examples` splits every network's inputs.

The ideal is 1/N, plus the replicated optimizer updates. FLOP counts are a property of
the compiled program, not a timing, so this needs no idle machine and no accelerator;
on N real accelerators the step time follows the per-device work.

  PYTHONPATH=. python benchmarks/data_parallel_split.py --devices 8
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

CONFIGS = (("dcgan_mnist", ""), ("wgan_gp_mnist", ""), ("sngan_mnist", ""),
           ("dcgan_stacked_mnist", ""), ("mixture", "ring,non_saturating"),
           ("mixture", "grid,wgan_gp"), ("conditional", "cgan,mnist"),
           ("conditional", "acgan,mnist"), ("conditional", "projection,mnist"),
           ("conditional", "infogan,mnist"), ("conditional", "infogan,mnist,augmented"))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=8,
                   help="devices of the mesh (fake CPU devices when the backend is the CPU).")
    p.add_argument("--full", action="store_true",
                   help="the configs as shipped, not their small (runlocal) variants.")
    return p.parse_args(argv)


def random_batch(config, batch_size: int) -> dict:
    """A batch of the config's shape with random values (FLOPs do not depend on them)."""
    import jax.numpy as jnp
    import numpy as np
    rng = np.random.default_rng(0)
    if config.data.kind == "mixture":
        return {"image": jnp.asarray(rng.normal(size=(batch_size, 2)), jnp.float32)}
    r, c = config.data.resolution, config.data.channels
    return {"image": jnp.asarray(rng.uniform(-1, 1, (batch_size, r, r, c)), jnp.float32),
            "label": jnp.asarray(rng.integers(0, config.model.num_classes, batch_size),
                                 jnp.int32)}


def step_flops(config, num_devices: int) -> tuple[float, float, float]:
    """(one-device FLOPs, per-device fraction without the mesh in context, with it)."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    from jgan.sharding import on_mesh
    from jgan.train import builders

    game = builders.build_game(config)
    d_steps = config.game.d_steps
    batch = random_batch(config, 64 * d_steps)
    state = game.init(jax.random.key(0), batch)
    step_fn = builders.build_step(config, game)
    flops = lambda lowered: lowered.compile().cost_analysis()["flops"]
    one = flops(jax.jit(step_fn).lower(state, batch))
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("data",))
    rep, split = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    sharded = jax.jit(step_fn, in_shardings=(rep, split), out_shardings=(rep, rep))
    args = (jax.device_put(state, rep), jax.device_put(batch, split))
    without = flops(sharded.lower(*args))
    trainer = flops(on_mesh(mesh, sharded.lower)(*args))
    return one, without / one, trainer / one


def main(args):
    import jax
    if jax.device_count() < args.devices:
        sys.exit(f"--devices={args.devices}, but JAX has {jax.device_count()} device(s).")
    print(f"jax {jax.__version__}, {jax.default_backend()}; FLOPs per device on "
          f"{args.devices} devices as a fraction of the one-device step (ideal "
          f"{1 / args.devices:.3f} plus the replicated optimizer updates)")
    print(f"{'config':45s} {'one-device GFLOP':>16s} {'no mesh in context':>19s} "
          f"{'trainer':>8s}")
    for module, arg in CONFIGS:
        if not args.full:
            arg = ",".join(filter(None, (arg, "runlocal")))
        config = importlib.import_module(f"experiments.configs.{module}").get_config(arg)
        one, without, trainer = step_flops(config, args.devices)
        name = f"{module}:{arg}" if arg else module
        print(f"{name:45s} {one / 1e9:16.3f} {without:19.3f} {trainer:8.3f}",
              flush=True)


if __name__ == "__main__":
    ARGS = parse_args()
    flag = f"--xla_force_host_platform_device_count={ARGS.devices}"
    if flag not in os.environ.get("XLA_FLAGS", ""):  # before jax initializes its backend
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()
    main(ARGS)
