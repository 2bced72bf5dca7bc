"""Runs an experiment: `python -m experiments.main --config=CONFIG[:ARG] --workdir=DIR`.

Config values can be overridden with `--config.key=value`; unknown keys and values of
the wrong type fail while flags are parsed, before anything compiles. Rerunning the
same command resumes from the workdir's latest checkpoint.
"""
from absl import app, flags, logging
from ml_collections import config_flags

from jgan.train import builders, trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.")
_MULTIHOST = flags.DEFINE_bool("multihost", False,
                               "Call jax.distributed.initialize() (several hosts).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if _MULTIHOST.value:
        import jax
        jax.distributed.initialize()
    # orbax and grain log every file operation at INFO.
    logging.set_verbosity(logging.WARNING)
    config = _CONFIG.value
    try:
        builders.validate(config)
    except builders.ConfigError as e:
        raise app.UsageError(str(e))
    trainer.train_and_evaluate(config, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
