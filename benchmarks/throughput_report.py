"""The measurement and report that the training-throughput benchmarks share.

Each side is a runner with `run(n) -> seconds for n steps` (waiting for the device);
jgan's runner also carries its compile times. Rounds alternate the order of the sides,
so that slow drifts of a shared machine hit both alike; medians are compared.
"""
from __future__ import annotations

import statistics
import time


def compare_runners(runners: dict, *, steps: int, warmup: int, rounds: int, batch: int,
                    digits: int = 0) -> dict[str, float]:
    """Times every runner and prints the rounds, a table and the jgan / other ratios.

    Args:
      runners: `{name: runner}`; "jgan" (with `compile_s`, `trace_s`, `xla_compile_s`)
        is compared with "torch" and "torch-lean" when present.
      steps: timed steps per round and runner.
      warmup: untimed steps first (jgan is already compiled by then).
      rounds: measurement rounds.
      batch: images per step.
      digits: decimals of the images/second figures.
    Returns:
      `{name: median images/second}`.
    """
    for r in runners.values():
        if warmup:
            r.run(warmup)
    rates = {name: [] for name in runners}
    cpu_ms = {name: [] for name in runners}
    for rnd in range(rounds):
        for name in (list(runners) if rnd % 2 == 0 else list(reversed(runners))):
            c0 = time.process_time()
            dt = runners[name].run(steps)
            cpu_ms[name].append(1e3 * (time.process_time() - c0) / steps)
            rates[name].append(steps * batch / dt)
        print(f"round {rnd + 1}: " + ", ".join(f"{n} {rates[n][-1]:.{digits}f} img/s"
                                               for n in runners))
    print(f"\n{'':11s} {'median img/s':>12s} {'best':>8s} {'ms/step':>8s} {'CPU ms/step':>12s}"
          f"  rounds (img/s)")
    med = {}
    for name, rs in rates.items():
        med[name] = statistics.median(rs)
        print(f"{name:11s} {med[name]:12.{digits}f} {max(rs):8.{digits}f} "
              f"{1e3 * batch / med[name]:8.1f} {statistics.median(cpu_ms[name]):12.1f}  "
              + " ".join(f"{r:.{digits}f}" for r in rs))
    print("(CPU ms/step: process CPU time, all threads. Much less than threads x ms/step "
          "means the run was starved by other processes.)")
    if "jgan" in med:
        jr = runners["jgan"]
        print(f"jgan compile time: {jr.compile_s:.2f} s (trace+lower {jr.trace_s:.2f} s + XLA "
              f"{jr.xla_compile_s:.2f} s), not included in img/s")
        for other in ("torch", "torch-lean"):
            if other in med:
                print(f"ratio jgan / {other}: {med['jgan'] / med[other]:.2f}x (median), "
                      f"{max(rates['jgan']) / max(rates[other]):.2f}x (best rounds)")
    return med
