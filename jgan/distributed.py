"""Several processes, one program: `jax.distributed` set up from flags or the environment.

Every command that trains or evaluates (`experiments.main`, `jgan.evaluate`) takes
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I`, or reads
`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` where the flags are
not given; `--multihost` leaves all three to JAX's cluster detection (SLURM, Open MPI,
Cloud TPU pods, Kubernetes). Without any of them the command runs as one process.

The processes then see every device of every process (`jax.devices()`), and the run's
mesh spans them all: each process reads its rows of every global batch, the jitted step
runs on the global arrays, orbax saves and restores collectively, and only process 0
writes logs, samples and eval.json.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from absl import flags

from jgan.errors import UsageError

ENV_VARS = {"coordinator_address": "JAX_COORDINATOR_ADDRESS",
            "num_processes": "JAX_NUM_PROCESSES", "process_id": "JAX_PROCESS_ID"}

_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None,
    "HOST:PORT of process 0's coordinator, for a run over several processes "
    "(else $JAX_COORDINATOR_ADDRESS).")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Processes of the run (else $JAX_NUM_PROCESSES).")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index in [0, num_processes) (else $JAX_PROCESS_ID).")
_MULTIHOST = flags.DEFINE_bool(
    "multihost", False, "Several processes found by JAX's cluster detection (SLURM, Open "
    "MPI, Cloud TPU pods): jax.distributed.initialize() without arguments.")


@dataclasses.dataclass(frozen=True)
class ProcessSettings:
    """Where a process finds the others: the coordinator, how many there are, which it is."""
    coordinator_address: str
    num_processes: int
    process_id: int


def process_settings(coordinator_address: str | None = None, num_processes: int | None = None,
                     process_id: int | None = None, *,
                     environ: Mapping[str, str] = os.environ) -> ProcessSettings | None:
    """The settings of a run over several processes: each argument, else its environment
    variable (`ENV_VARS`); None where none of the three is set (one process).

    Raises:
      UsageError: some but not all are set, or a value is malformed (naming the flag
        and its variable).
    """
    given = {"coordinator_address": coordinator_address, "num_processes": num_processes,
             "process_id": process_id}
    for name, value in given.items():
        if value is None and environ.get(ENV_VARS[name]):
            given[name] = environ[ENV_VARS[name]]
    if all(v is None for v in given.values()):
        return None
    missing = [f"--{k} (or ${ENV_VARS[k]})" for k, v in given.items() if v is None]
    if missing:
        raise UsageError(f"a run over several processes needs {', '.join(missing)} as well.")
    numbers = {}
    for name in ("num_processes", "process_id"):
        try:
            numbers[name] = int(given[name])
        except ValueError:
            raise UsageError(f"--{name} (or ${ENV_VARS[name]}): {given[name]!r} is not an "
                             "integer.") from None
    if numbers["num_processes"] < 1 or not 0 <= numbers["process_id"] < numbers["num_processes"]:
        raise UsageError(f"--process_id={numbers['process_id']} is not in [0, "
                         f"--num_processes={numbers['num_processes']}).")
    if ":" not in str(given["coordinator_address"]):
        raise UsageError(f"--coordinator_address={given['coordinator_address']!r}: expected "
                         "HOST:PORT (process 0's host, a free port; the same on every process).")
    return ProcessSettings(str(given["coordinator_address"]), **numbers)


def initialize(settings: ProcessSettings | None, *, detect: bool = False) -> bool:
    """Joins the run's processes with `jax.distributed.initialize` (before any JAX
    computation). `settings` None and `detect`: JAX's cluster detection. Returns whether
    the run spans several processes."""
    import jax
    if settings is not None:
        jax.distributed.initialize(settings.coordinator_address, settings.num_processes,
                                   settings.process_id)
    elif detect:
        jax.distributed.initialize()
    else:
        return False
    return jax.process_count() > 1


def initialize_from_flags() -> bool:
    """`initialize` from the command's flags and the environment (see the module)."""
    settings = process_settings(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    if settings is not None and _MULTIHOST.value:
        raise UsageError("--multihost detects the processes itself; drop it, or drop "
                         "--coordinator_address/--num_processes/--process_id (and $JAX_*).")
    return initialize(settings, detect=_MULTIHOST.value)
