"""Process settings of a run over several processes: from flags, else the environment."""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO_ROOT
from jgan.distributed import ProcessSettings, process_settings
from jgan.errors import UsageError


def test_one_process_without_flags_or_environment():
    assert process_settings(environ={}) is None


def test_flags_win_over_the_environment():
    env = {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
    assert process_settings(environ=env) == ProcessSettings("h:1", 4, 3)
    assert process_settings("127.0.0.1:9", None, 1, environ=env) == ProcessSettings(
        "127.0.0.1:9", 4, 1)


@pytest.mark.parametrize("args,env,message", [
    (("h:1", 2, None), {}, r"needs --process_id \(or \$JAX_PROCESS_ID\) as well"),
    ((None, None, None), {"JAX_NUM_PROCESSES": "2"}, "needs --coordinator_address"),
    (("h:1", 2, 2), {}, r"--process_id=2 is not in \[0, --num_processes=2\)"),
    ((None, None, None), {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two",
                          "JAX_PROCESS_ID": "0"}, "'two' is not an integer"),
    (("localhost", 2, 0), {}, "expected HOST:PORT"),
])
def test_incomplete_or_malformed_settings_name_the_flag(args, env, message):
    with pytest.raises(UsageError, match=message):
        process_settings(*args, environ=env)


@pytest.mark.parametrize("command", ["experiments.main", "jgan.evaluate"])
def test_commands_start_no_backend_before_joining_the_processes(command):
    """jax.distributed.initialize must come before the backend starts: importing the
    commands and loading the shipped configs (flag parsing) must not start it."""
    code = """
import glob, importlib, sys
import jax
from jax._src import xla_bridge
def refuse(*a, **k):
    raise SystemExit("backend started")
xla_bridge.backends = refuse
importlib.import_module(sys.argv[1])
import importlib.util
for path in sorted(glob.glob("experiments/configs/*.py")):
    spec = importlib.util.spec_from_file_location("c", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "get_config"):
        module.get_config()
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code, command], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
