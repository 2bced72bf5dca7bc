"""Runs an experiment: `python -m experiments.main --config=CONFIG[:ARG] --workdir=DIR`.

Config values can be overridden with `--config.key=value`; unknown keys and values of
the wrong type fail while flags are parsed, before anything compiles. Rerunning the
same command resumes from the workdir's latest checkpoint. The config's `task` says
what is trained: "gan" (`jgan.train.trainer`) or "classifier" (the evaluation
classifier, `jgan.train.classifier_trainer`). Over several processes, each runs the
same command with `--coordinator_address=HOST:PORT --num_processes=N --process_id=I`
(or `$JAX_COORDINATOR_ADDRESS`, `$JAX_NUM_PROCESSES`, `$JAX_PROCESS_ID`; `--multihost`:
JAX's cluster detection), `jgan.distributed`.
"""
from absl import flags, logging
from ml_collections import config_flags

from jgan import cli, distributed
from jgan.errors import UsageError
from jgan.train import builders, classifier_trainer, trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.")
flags.mark_flags_as_required(["config", "workdir"])

# task -> (validate, train_and_evaluate)
TASKS = {"gan": (builders.validate, trainer.train_and_evaluate),
         "classifier": (classifier_trainer.validate, classifier_trainer.train_and_evaluate)}


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"Unexpected arguments: {argv[1:]}")
    distributed.initialize_from_flags()  # several processes: jgan.distributed
    # orbax and grain log every file operation at INFO.
    logging.set_verbosity(logging.WARNING)
    config = _CONFIG.value
    task = config.get("task", "gan")
    if task not in TASKS:
        raise UsageError(f"config.task: {task!r} is not one of {tuple(TASKS)}.")
    validate, train_and_evaluate = TASKS[task]
    validate(config)  # ConfigError: one line, before anything compiles (jgan.cli)
    train_and_evaluate(config, _WORKDIR.value)


if __name__ == "__main__":
    cli.run(main)
