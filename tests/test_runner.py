"""``agentmem run`` options are checked before anything trains or is saved: each bad value is one
``error:`` line naming the flag (CLI) or an InvalidInputError (``RunOptions``, ``run_task``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from agentmem.errors import InvalidInputError
from agentmem.runner import run_task
from agentmem.training import RunOptions


def run_cli(*args: str) -> tuple[int, str]:
    from agentmem.cli import _load_plugin_commands, cli

    _load_plugin_commands()
    result = CliRunner().invoke(cli, ["run", "classification", "--model", "cnn", "--dataset", "digits",
                                      "--quick", "--quiet", "--threads", "1", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("args,needle", [
    (["--epochs", "-3"], "--epochs must be >= 1, got -3"),
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--lr", "-1"], "--lr must be a positive number, got -1.0"),
    (["--lr", "nan"], "--lr must be a positive number, got nan"),
    (["--patience", "0"], "--patience must be >= 1, got 0"),
    (["--threads", "0"], "--threads must be >= 1, got 0"),
    (["--set", "bogus=1"], "unknown --set key 'bogus' for task 'classification'; valid: hparams"),
    (["--set", "hparams=5"], "--set hparams must be a JSON object"),
    (["--set", 'hparams={"bad": 1}'],
     "unknown hparams key 'bad' for model 'cnn' (LeNet); valid: channels, dropout, hidden"),
])
def test_bad_run_options_are_one_error_line_and_save_nothing(tmp_path: Path, args: list[str], needle: str) -> None:
    path = tmp_path / "run"
    code, out = run_cli("--path", str(path), *args)
    assert code == 1 and out.startswith("error: ") and "Traceback" not in out, out
    assert needle in out, out
    assert not (path / "weights").exists()  # no untrained model became the current version


def test_run_options_are_checked_in_python_too(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="epochs must be >= 1"):
        RunOptions(epochs=-3)
    with pytest.raises(InvalidInputError, match="lr must be a positive number"):
        RunOptions(lr=0.0)
    with pytest.raises(InvalidInputError, match="valid: hparams, negatives"):
        run_task("recommendation", "lstm", "games", RunOptions(quick=True, extra={"negative": 8}),
                 path=tmp_path / "run")


def test_declared_settings_still_run(tmp_path: Path) -> None:
    result = run_task("classification", "cnn", "digits",
                      RunOptions(quick=True, epochs=1, progress=False, threads=1,
                                 extra={"hparams": {"dropout": 0.1}}), path=tmp_path / "run")
    assert result["epochs"] == 1 and result["weights"]["version"] == 1
