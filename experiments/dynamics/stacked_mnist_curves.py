"""Stacked MNIST mode coverage over training, for several runs on one plot.

Reads each run's `metrics.jsonl` (the `eval/stacked_mnist_*` entries that
`eval.metrics=stacked_mnist` with `eval.every` writes) and plots the modes covered and
KL(p || uniform) against the step, with PacGAN's reported figures and the real data's
finite-sample floor for reference.

    python -m experiments.dynamics.stacked_mnist_curves \
        --run=DCGAN=workdirs/stacked/dcgan --run=PacDCGAN2=workdirs/stacked/pacdcgan2 \
        --out=docs/figures/stacked_mnist_kl.png
"""
from __future__ import annotations

import json
from pathlib import Path

from absl import flags

from experiments.dynamics.figures import save_figure
from jgan import cli
from jgan.errors import UsageError

_RUNS = flags.DEFINE_multi_string("run", [], "LABEL=WORKDIR of a run with stacked_mnist evals.")
_OUT = flags.DEFINE_string("out", "docs/figures/stacked_mnist_kl.png", "Output PNG.")
_REAL_KL = flags.DEFINE_float("real_kl", 0.0246, "KL of 26,000 real Stacked MNIST examples "
                              "(benchmarks/stacked_mnist_real.py), drawn as the floor.")


def read_curve(workdir: str | Path) -> dict[str, list]:
    """`{"step": [...], "modes": [...], "kl": [...]}` from a run's metrics.jsonl."""
    path = Path(workdir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {workdir} a run's workdir?")
    curve = {"step": [], "modes": [], "kl": []}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if "eval/stacked_mnist_kl" in r:
            curve["step"].append(r["step"])
            curve["modes"].append(r["eval/stacked_mnist_modes"])
            curve["kl"].append(r["eval/stacked_mnist_kl"])
    if not curve["step"]:
        raise ValueError(f"{path} has no eval/stacked_mnist_* entries (eval.metrics=stacked_mnist "
                         "with eval.every > 0 writes them).")
    return curve


def main(argv):
    del argv
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = {}
    for item in _RUNS.value:
        label, _, workdir = item.rpartition("=")  # labels may hold "="
        if not workdir:
            raise UsageError(f"--run takes LABEL=WORKDIR, got {item!r}.")
        runs[label] = read_curve(workdir)
    fig, (ax_m, ax_kl) = plt.subplots(1, 2, figsize=(11, 4))
    for label, c in runs.items():
        ax_m.plot(c["step"], c["modes"], marker=".", label=label)
        ax_kl.plot(c["step"], c["kl"], marker=".", label=label)
    ax_m.set(xlabel="step", ylabel="modes covered (of 1,000)", title="Stacked MNIST: modes")
    ax_kl.axhline(0.07, color="gray", ls="--", lw=1, label="PacGAN's best (0.07)")
    ax_kl.axhline(_REAL_KL.value, color="black", ls=":", lw=1, label="real data, 26k samples")
    ax_kl.set(xlabel="step", ylabel="KL(p || uniform)", yscale="log",
              title="Stacked MNIST: KL to uniform over modes")
    ax_m.legend(), ax_kl.legend()
    save_figure(fig, _OUT.value)
    for label, c in runs.items():
        print(f"{label}: step {c['step'][-1]}: {c['modes'][-1]:.0f} modes, KL {c['kl'][-1]:.4f}")


if __name__ == "__main__":
    cli.run(main)
