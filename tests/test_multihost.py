"""Runs over several processes (`jax.distributed`, CPU collectives over 127.0.0.1): the
same batches and the same result as one process, an exact continuation after SIGKILL,
and a checkpoint that resumes on another process count."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from helpers import REPO_ROOT, require_shared_tfds
from jgan.runs.load import load_run

STEPS = 8
CONFIG = "--config=experiments/configs/dcgan_mnist.py:runlocal"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _args(workdir: Path, data_dir: str, num_steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "experiments.main", CONFIG, f"--workdir={workdir}",
            f"--config.data.data_dir={data_dir}", f"--config.num_steps={num_steps}",
            "--config.checkpoint_every=2", "--config.sample_every=4", "--config.log_every=2",
            "--config.progress_bar=False", *extra]


def _env(devices: int) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT),
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _start(workdir: Path, data_dir: str, num_steps: int, *, processes: int,
           devices: int = 1) -> list[subprocess.Popen]:
    """`processes` processes of one run (each with `devices` CPU devices)."""
    if processes == 1:
        return [subprocess.Popen(_args(workdir, data_dir, num_steps), cwd=REPO_ROOT,
                                 env=_env(devices), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)]
    port = _free_port()
    return [subprocess.Popen(
        _args(workdir, data_dir, num_steps, f"--coordinator_address=127.0.0.1:{port}",
              f"--num_processes={processes}", f"--process_id={i}"),
        cwd=REPO_ROOT, env=_env(devices), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True) for i in range(processes)]


def _finish(procs: list[subprocess.Popen]) -> list[str]:
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    return outputs


def _run(workdir, data_dir, num_steps, **kwargs) -> list[str]:
    return _finish(_start(workdir, data_dir, num_steps, **kwargs))


def _final_state(workdir: Path):
    """The latest checkpoint's state as numpy arrays (restored onto this process's
    devices, whatever the processes and devices that saved it)."""
    return [np.asarray(x) for x in jax.tree.leaves(load_run(workdir)[-1])]


def _metrics(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One process with two devices, and two processes with one each: 8 steps of the
    same config."""
    data_dir = require_shared_tfds()
    root = tmp_path_factory.mktemp("multihost")
    _run(root / "one", data_dir, STEPS, processes=1, devices=2)
    outputs = _run(root / "two", data_dir, STEPS, processes=2)
    return data_dir, root, outputs


def test_two_processes_train_as_one_process_of_the_same_devices(reference):
    """Each process reads its half of every global batch; assembled, the batches, the
    steps and the final state are the one-process run's, bit for bit."""
    _, root, outputs = reference
    for one, two in zip(_final_state(root / "one"), _final_state(root / "two")):
        np.testing.assert_array_equal(one, two)
    assert _metrics(root / "two") == _metrics(root / "one")
    # Only process 0 writes: one record per logged step, one eval.json, its messages.
    assert [m["step"] for m in _metrics(root / "two") if "d_loss" in m] == [2, 4, 6, 8]
    assert sorted(p.name for p in (root / "two" / "samples").iterdir()) == [
        "step_0000004.png", "step_0000008.png"]
    assert json.loads((root / "two" / "eval.json").read_text())["step"] == STEPS
    assert "Done: step 8/8" in outputs[0] and "Done:" not in outputs[1]


def test_a_two_process_run_killed_with_sigkill_continues_exactly(reference, tmp_path):
    data_dir, root, _ = reference
    workdir = tmp_path / "killed"
    procs = _start(workdir, data_dir, STEPS, processes=2)
    deadline = time.time() + 240
    saved = []
    while time.time() < deadline and not saved and all(p.poll() is None for p in procs):
        time.sleep(0.05)
        if (workdir / "checkpoints").is_dir():
            saved = [int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()]
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    assert saved and max(saved) < STEPS, f"no checkpoint before the end to resume from: {saved}"
    outputs = _run(workdir, data_dir, STEPS, processes=2)
    assert "Resumed from" in outputs[0], outputs[0][-2000:]
    for resumed, uninterrupted in zip(_final_state(workdir), _final_state(root / "two")):
        np.testing.assert_array_equal(resumed, uninterrupted)


def test_a_two_process_checkpoint_resumes_on_one_process(reference, tmp_path):
    """Saved by two processes at step 4, continued by one process with one device: the
    same batches (the input position counts global batches), the same updates up to the
    float rounding of another device count."""
    data_dir, root, _ = reference
    workdir = tmp_path / "moved"
    _run(workdir, data_dir, STEPS // 2, processes=2)
    outputs = _run(workdir, data_dir, STEPS, processes=1, devices=1)
    assert "Resumed from" in outputs[0]
    def position(step):
        return json.loads((workdir / "checkpoints" / str(step) / "input" / "metadata").read_text())
    assert position(STEPS // 2) == {"global_batches": STEPS // 2, "process_count": 2}
    assert position(STEPS) == {"global_batches": STEPS, "process_count": 1}
    for moved, two in zip(_final_state(workdir), _final_state(root / "two")):
        np.testing.assert_allclose(moved, two, rtol=1e-4, atol=1e-5)
    assert [m["d_loss"] for m in _metrics(workdir) if "d_loss" in m] == pytest.approx(
        [m["d_loss"] for m in _metrics(root / "two") if "d_loss" in m], rel=1e-4)


def test_evaluate_over_two_processes_writes_what_one_process_does(tmp_path):
    """`jgan.evaluate` takes the same flags: both processes compute, process 0 writes,
    and the numbers are the one-process evaluation's."""
    run = tmp_path / "ring"
    subprocess.run([sys.executable, "-m", "experiments.main",
                    "--config=experiments/configs/mixture.py:ring,non_saturating,runlocal",
                    f"--workdir={run}", "--config.progress_bar=False"], cwd=REPO_ROOT,
                   env=_env(1), check=True, capture_output=True)
    command = [sys.executable, "-m", "jgan.evaluate", f"--workdir={run}"]
    subprocess.run([*command, f"--out={tmp_path / 'one.json'}"], cwd=REPO_ROOT, env=_env(2),
                   check=True, capture_output=True)
    port = _free_port()
    procs = [subprocess.Popen([*command, f"--out={tmp_path / 'two.json'}",
                               f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                               f"--process_id={i}"], cwd=REPO_ROOT, env=_env(1),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for i in range(2)]
    outputs = _finish(procs)
    assert "Wrote" in outputs[0] and "Wrote" not in outputs[1]
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert two == one
