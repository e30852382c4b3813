"""``agentmem run --quick`` for every task/model pair on real data: the JSON result has the documented
keys, the memory-augmented and plain modes are both reported, the weight memory holds the checkpoint,
and reloading it reproduces the evaluation exactly. Also what the run leaves in memory (training
examples in the vector memory, per-epoch notes with gradient statistics in STM/LTM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import agentmem
from agentmem.errors import InvalidInputError, NotFoundError
from agentmem.runner import run_task
from agentmem.training import RunOptions
from tests.conftest import shared

PAIRS = [("classification", "cnn", "digits"), ("classification", "lstm", "digits"),
         ("classification", "transformer", "digits"), ("translation", "transformer", "multi30k"),
         ("translation", "lstm", "multi30k"), ("recommendation", "transformer", "games"),
         ("recommendation", "lstm", "games")]
METRICS = {"classification": {"accuracy"}, "translation": {"bleu"}, "recommendation": {"hr@10", "ndcg@10"}}
DATA = {"multi30k": "multi30k/raw/train.en.gz", "games": "sasrec-amazon-games/Video.txt"}


def quick(**kw: object) -> RunOptions:
    return RunOptions(quick=True, memory=True, progress=False, threads=1, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("task,model,dataset", PAIRS, ids=["-".join(p[1:]) for p in PAIRS])
def test_quick_run_reports_both_modes_and_reloads_identically(tmp_path: Path, task: str, model: str,
                                                              dataset: str) -> None:
    if dataset in DATA:
        shared(DATA[dataset])
    result = run_task(task, model, dataset, quick(), path=tmp_path / "run")
    assert {"task", "model", "dataset", "metrics", "plain_metrics", "train_s", "weights"} <= set(result)
    assert (result["task"], result["model"], result["dataset"]) == (task, model, dataset)
    assert set(result["metrics"]) == set(result["plain_metrics"]) == METRICS[task]
    for value in [*result["metrics"].values(), *result["plain_metrics"].values()]:
        assert 0.0 <= value <= (100.0 if task == "translation" else 1.0)
    mode = result["memory_mode"]
    assert mode["val_memory"] >= mode["val_plain"]  # weights are chosen on validation; zero is allowed
    assert result["weights"] == {"name": f"{task}-{model}-{dataset}", "version": 1}
    json.dumps(result)  # everything in it is JSON

    again = run_task(task, model, dataset, quick(), path=tmp_path / "run", evaluate=True)
    assert again["metrics"] == result["metrics"]
    assert again["plain_metrics"] == result["plain_metrics"]


def test_cli_run_writes_json_and_the_memory_holds_examples_and_training_notes(tmp_path: Path) -> None:
    from agentmem.cli import _load_plugin_commands, cli

    _load_plugin_commands()
    out, path = tmp_path / "out.json", tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "classification", "--model", "cnn", "--dataset", "digits", "--quick",
                                   "--quiet", "--threads", "1", "--path", str(path), "--json", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert "plain_metrics" not in result and set(result["metrics"]) == {"accuracy"}
    assert "accuracy" in res.output
    with agentmem.Memory(path, read_only=True) as mem:
        assert [v.version for v in mem.weights.versions("classification-cnn-digits")] == [1]
        items = list(mem)
        examples = [i for i in items if i.metadata.get("split") == "train"]
        assert len(examples) == result["examples"]["count"] == 600
        assert {i.scope["session"] for i in examples} == {result["examples"]["scope"]["session"]}
        notes = [i for i in items if i.metadata.get("kind") == "epoch"]
        assert len(notes) == result["epochs"]
        assert all(n.metadata["grad/conv"] > 0 and "val" in n.metadata for n in notes)
        assert len(mem.vector) == len([i for i in items if i.tier == "ltm"])
        (inference,) = [i for i in items if i.metadata.get("kind") == "inference"]
        assert inference.tier == "stm" and inference.metadata["accuracy"] == result["metrics"]["accuracy"]


def test_fit_records_activations_and_gradient_norms_in_stm(tmp_path: Path) -> None:
    import numpy as np
    import torch

    from agentmem.activations import capture
    from agentmem.training import StmRecorder, feature_memory, fit

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x, y = torch.randn(64, 4), (torch.arange(64) % 2)
    x[y == 1] += 1.5

    def probe() -> tuple[dict, np.ndarray]:
        with torch.no_grad(), capture(net) as acts:
            out = net(x[:8])
        return dict(acts), out.mean(0).numpy()

    def accuracy() -> float:
        with torch.no_grad():
            return float((net(x).argmax(1) == y).float().mean())

    with feature_memory(tmp_path / "m", 2) as mem:
        rec = StmRecorder(mem, "toy", probe)
        res = fit(net, lambda e: [np.arange(i, i + 16) for i in range(0, 64, 16)],
                  lambda m, idx: torch.nn.functional.cross_entropy(m(x[idx]), y[idx]), accuracy,
                  RunOptions(progress=False, patience=50), epochs=15, lr=0.05, recorder=rec)
        assert res.epochs == 15 and res.best == max(h["val"] for h in res.history) >= 0.9
        assert accuracy() == res.best  # the best epoch's weights are restored
        entry = mem.stm.get(rec.ids[-1])
        assert entry is not None and set(entry.activations) == {"0", "1", "2"}
        assert entry.activations["2"].shape == (8, 2)
        assert entry.item.metadata["grad/0"] > 0 and entry.item.metadata["grad/2"] > 0
        with pytest.raises(InvalidInputError, match="cannot embed text"):
            mem.remember("text needs a model feature vector here")


def test_compress_measures_lora_pruning_and_quantization(tmp_path: Path) -> None:
    result = run_task("classification", "cnn", "digits", quick(compress=True), path=tmp_path / "run")
    c = result["compression"]
    assert set(c) == {"base", "lora", "prune", "quantize"}
    assert c["lora"]["trainable_params"] < c["lora"]["total_params"] / 5
    assert c["lora"]["adapter_bytes"] < c["base"]["bytes"] / 5
    assert c["prune"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert c["prune"]["sparse_bytes"] < c["prune"]["dense_bytes"]
    assert c["quantize"]["bytes"] < c["base"]["bytes"]
    assert all(0.0 <= c[k]["metric"] <= 1.0 for k in c)
    with agentmem.Memory(tmp_path / "run", read_only=True) as mem:
        (adapter,) = mem.weights.versions("classification-cnn-digits.lora")
        assert adapter.metadata["base_version"] == result["weights"]["version"]
        assert set(mem.weights.load("classification-cnn-digits.lora")) == {
            k for k in mem.weights.load("classification-cnn-digits.lora") if "lora_" in k}


def test_a_dataset_of_another_task_or_an_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="belongs to task 'classification'"):
        run_task("translation", "transformer", "digits", quick(), path=tmp_path)
    with pytest.raises(NotFoundError, match="available: cnn, lstm, transformer"):
        run_task("classification", "resnet", "digits", quick(), path=tmp_path)


def test_a_model_that_cannot_serve_the_task_is_a_clear_error(tmp_path: Path) -> None:
    shared("multi30k/raw/train.en.gz")  # the data loads before the model is built
    with pytest.raises(InvalidInputError, match="image classifiers only"):
        run_task("translation", "cnn", "multi30k", quick(), path=tmp_path / "x")


def test_evaluate_without_a_checkpoint_says_so(tmp_path: Path) -> None:
    with pytest.raises(agentmem.errors.AgentMemError):
        run_task("classification", "cnn", "digits", quick(), path=tmp_path / "none", evaluate=True)
