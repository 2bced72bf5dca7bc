"""Command-line errors: an expected one is a line or two naming the problem and the fix,
with a non-zero status and no usage text; an unexpected one keeps its traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from absl import flags
from ml_collections import config_flags

from jgan import cli
from jgan.errors import ConfigError, MissingFileError, NonFiniteLossError, UsageError
from tests.helpers import REPO_ROOT

RING = "experiments/configs/mixture.py:ring,non_saturating,runlocal"


def _flag_values(argv, monkeypatch) -> flags.FlagValues:
    # ml_collections finds the `--config.KEY` overrides in sys.argv when the flag is defined.
    monkeypatch.setattr(sys, "argv", ["prog", *argv])
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "Config file.", flag_values=values,
                                    lock_config=True)
    flags.DEFINE_string("workdir", None, "Workdir.", flag_values=values)
    return values


def _parse_error(argv, capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(REPO_ROOT)  # config paths are relative to the repository, as in the README
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_flags(["prog", *argv], _flag_values(argv, monkeypatch))
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("argv,expected", [
    ([f"--config={RING}", "--config.num_stepz=3"], "num_stepz"),
    ([f"--config={RING}", "--config.batch_size=many"], "--config.batch_size=many: invalid literal"),
    (["--config=experiments/configs/mixture.py:rin,hinge"],
     "--config=experiments/configs/mixture.py:rin,hinge: mixture.py takes 'ring|grid,"),
    (["--config=experiments/configs/mixture.py:ring"], "mixture.py takes"),
    (["--config=experiments/configs/nope.py"],
     "--config: cannot load the config file: [Errno 2] No such file or directory: "
     "'experiments/configs/nope.py'"),
])
def test_flag_errors_are_one_line(argv, expected, capsys, monkeypatch):
    status, err = _parse_error(argv, capsys, monkeypatch)
    assert status == cli.USAGE_STATUS
    assert err.startswith("error: ") and expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_unknown_key_names_the_flag_and_the_guess_or_the_section_keys(monkeypatch):
    guess = AttributeError(KeyError("'num_stepz'\nDid you mean \"num_steps\" instead of \"num_stepz\"?"))
    assert cli.unknown_key_message(guess, ["--config=x.py", "--config.num_stepz=3"]) == (
        "--config.num_stepz: the config has no key 'num_stepz'. "
        "Did you mean \"num_steps\" instead of \"num_stepz\"?")
    argv = [f"--config={RING}", "--config.game.no_such_key=1"]
    monkeypatch.chdir(REPO_ROOT)
    message = cli.unknown_key_message(AttributeError(KeyError("'no_such_key'")), argv,
                                      _flag_values(argv, monkeypatch))
    assert message.startswith("--config.game.no_such_key: the config has no key 'no_such_key'. "
                              "Its keys there: d_steps, ema_decay, ")
    assert "loss_type" in message
    nested = cli.unknown_key_message(KeyError("'nosec'"), ["--config.nosec.key=1"])
    assert nested == "--config.nosec: the config has no key 'nosec'."


@pytest.mark.parametrize("error,status", [
    (ConfigError("config.game.loss_type: 'x' is not one of ('hinge',)."), 2),
    (UsageError("--workdir and --out are required."), 2),
    (MissingFileError("/w/config.json not found: is /w a jgan run's workdir?"), 1),
    (NonFiniteLossError("Step 7: d_loss is nan."), 1),
])
def test_expected_errors_exit_with_their_message_only(error, status, capsys):
    def main(argv):
        raise error
    with pytest.raises(SystemExit) as exit_info:
        cli.guarded(main)(["prog"])
    assert exit_info.value.code == status
    assert capsys.readouterr().err == f"error: {error}\n"


def test_unexpected_errors_keep_their_traceback():
    def main(argv):
        raise ZeroDivisionError("a bug")
    with pytest.raises(ZeroDivisionError, match="a bug"):
        cli.guarded(main)(["prog"])


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_programs_print_errors_without_usage_or_traceback(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (("experiments.main", f"--config={RING}", f"--workdir={a_file / 'run'}"),
         1, f"error: workdir {a_file / 'run'}: cannot create it (Not a directory)"),
        (("experiments.main", "--config=experiments/configs/dcgan_mnist.py:runlocal",
          f"--workdir={tmp_path / 'run'}", f"--config.data.data_dir={tmp_path / 'none'}"),
         1, f"error: TFDS dataset 'mnist' is not prepared under data_dir {tmp_path / 'none'}"),
        (("jgan.sample", f"--workdir={tmp_path}"), 2, "error: --workdir and --out are required."),
        (("jgan.evaluate", f"--workdir={tmp_path / 'none'}"), 1,
         f"error: {tmp_path / 'none' / 'config.json'} not found"),
    ]
    for args, status, expected in cases:
        done = _run(*args)
        assert done.returncode == status, (args, done.stderr[-2000:])
        assert done.stderr.startswith(expected), (args, done.stderr[-2000:])
        assert done.stderr.count("\n") <= 2 and "Traceback" not in done.stderr, done.stderr
        assert "USAGE" not in done.stdout + done.stderr and "--helpfull" not in done.stderr
