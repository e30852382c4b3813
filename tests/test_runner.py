"""``agentmem run`` options are checked before anything trains or is saved: each bad value is one
``error:`` line naming the flag (CLI) or an InvalidInputError (``RunOptions``, ``run_task``). Without
``--path`` each model configuration (task, model, data set, ``--quick``, hparams) has its own memory
directory, so reruns never mix two runs' memories; an explicit ``--path`` of another run is a typed error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agentmem.errors import EmbedderMismatchError, InvalidInputError, RunMemoryError
from agentmem.memory import Memory
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


# --- the default memory directory: one per model configuration -----------------------------------

FULL, QUICK, SMALL = ([], ["--quick"], ["--quick", "--set", 'hparams={"hidden": [32]}'])


def run_in(home: Path, tmp_path: Path, *args: str) -> dict[str, Any]:
    """``agentmem run classification --model cnn --dataset digits ARGS`` with ``AGENTMEM_HOME=home``
    and no ``--path``; the JSON result. A full run trains one epoch (digits is the smallest data set)."""
    from agentmem.cli import _load_plugin_commands, cli

    _load_plugin_commands()
    out = tmp_path / "out.json"
    res = CliRunner().invoke(cli, ["run", "classification", "--model", "cnn", "--dataset", "digits", "--epochs", "1",
                                   "--quiet", "--threads", "1", "--json", str(out), *args],
                             env={"AGENTMEM_HOME": str(home)})
    assert res.exit_code == 0, res.output
    return dict(json.loads(out.read_text()))


def checkpoints(path: str | Path) -> tuple[str, list[bool]]:
    """The embedder of a run directory and the ``quick`` flag of each checkpoint version in it."""
    with Memory(path, read_only=True) as mem:
        versions = mem.weights.versions("classification-cnn-digits")
        return mem.embedder_name, [bool(v.metadata["quick"]) for v in versions]


@pytest.mark.parametrize("first,second", [(FULL, QUICK), (QUICK, FULL), (QUICK, SMALL)],
                         ids=["full-then-quick", "quick-then-full", "two-sizes"])
def test_reruns_with_another_model_get_their_own_directory(tmp_path: Path, first: list[str],
                                                           second: list[str]) -> None:
    home = tmp_path / "home"
    a = run_in(home, tmp_path, *first)
    b = run_in(home, tmp_path, *second)
    assert a["memory_path"] != b["memory_path"]
    assert {Path(a["memory_path"]).parent, Path(b["memory_path"]).parent} == {home / "runs"}
    dims = {"full": "features-128", "quick": "features-64", "small": "features-32"}
    for result, args in ((a, first), (b, second)):
        kind = "small" if "--set" in args else "quick" if "--quick" in args else "full"
        assert result["weights"]["version"] == 1  # nothing of the other run in this directory
        assert checkpoints(result["memory_path"]) == (dims[kind], [kind != "full"])
        # --evaluate with the same flags finds the run again, and its figures
        again = run_in(home, tmp_path, *args, "--evaluate")
        assert again["metrics"] == result["metrics"]


def test_reruns_of_one_configuration_share_its_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = run_in(home, tmp_path, "--quick", "--set", 'hparams={"hidden": [32], "dropout": 0.1}')
    second = run_in(home, tmp_path, "--quick", "--seed", "1", "--set", 'hparams={"dropout": 0.1, "hidden": [32]}')
    assert second["memory_path"] == first["memory_path"]  # training knobs and key order do not matter
    assert second["weights"]["version"] == 2
    assert checkpoints(first["memory_path"]) == ("features-32", [True, True])


def test_an_explicit_path_holding_another_runs_memory_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "run"
    run_task("classification", "cnn", "digits", RunOptions(epochs=1, progress=False, threads=1), path=path)
    with pytest.raises(RunMemoryError, match="another run's memory") as info:
        run_task("classification", "cnn", "digits", RunOptions(quick=True, progress=False, threads=1), path=path)
    assert (info.value.stored, info.value.wanted) == ("features-128", "features-64")
    assert isinstance(info.value, EmbedderMismatchError)  # what callers caught before
    code, out = run_cli("--path", str(path))
    assert code == 1 and out.startswith("error: ") and "Traceback" not in out, out
    assert "leave out `agentmem run --path`" in out and "or pass a new one" in out, out
    assert checkpoints(path) == ("features-128", [False])  # the first run's memory is untouched


def test_evaluate_without_a_run_of_these_settings_names_the_runs_there_are(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run_in(home, tmp_path, "--quick")
    from agentmem.cli import _load_plugin_commands, cli

    _load_plugin_commands()
    res = CliRunner().invoke(cli, ["run", "classification", "--model", "cnn", "--dataset", "digits", "--evaluate"],
                             env={"AGENTMEM_HOME": str(home)})
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert "no classification run of cnn on digits with these settings" in res.output
    assert "runs of it: classification-cnn-digits-quick" in res.output
    assert not (home / "runs" / "classification-cnn-digits").exists()  # evaluating created nothing
