"""Running shipped experiment configs from figure scripts: each run is `python -m
experiments.main` in its own workdir (a rerun resumes one that stopped), timed."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def run(command: list[str]) -> float:
    """Runs `command` (echoed), failing loudly; returns its wall-clock seconds."""
    print("+", " ".join(command), flush=True)
    start = time.time()
    subprocess.run(command, check=True)
    return time.time() - start


def train_command(config: str, workdir: Path, *, data_dir: str, num_steps: int | None = None,
                  overrides: dict | None = None) -> list[str]:
    """The command training `experiments/configs/{config}` (e.g. "vae.py:mnist") in
    `workdir` on the TFDS data under `data_dir`; `num_steps` shortens it (the schedules
    scale with it) and `overrides` are `--config.KEY=VALUE` pairs."""
    command = [sys.executable, "-m", "experiments.main",
               f"--config=experiments/configs/{config}", f"--workdir={workdir}",
               f"--config.data.data_dir={data_dir}", "--config.progress_bar=False"]
    if num_steps:
        command.append(f"--config.num_steps={num_steps}")
    return command + [f"--config.{k}={v}" for k, v in (overrides or {}).items()]
