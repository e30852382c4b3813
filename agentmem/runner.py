"""``agentmem run TASK --model NAME --dataset NAME``: train and evaluate a task plugin's pipeline with a
model plugin, memory in the loop, and write the figures as JSON.

Each run keeps its memory (checkpoints in the weight memory, training-example embeddings in the vector
memory, training notes in STM/LTM) in ``--path``, by default one directory per model configuration
under ``$AGENTMEM_HOME/runs`` (:func:`default_path`).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import click

from agentmem.config import default_home, memory_path
from agentmem.errors import InvalidInputError, NotFoundError
from agentmem.training import RunOptions, check_settings


def default_path(task: str, model: str, dataset: str, *, quick: bool = False,
                 hparams: dict[str, Any] | None = None) -> Path:
    """``$AGENTMEM_HOME/runs/TASK-MODEL-DATASET[-quick][-hparams-HASH]``: one directory per model
    configuration. ``--quick`` and ``hparams`` change the model's architecture, hence its feature
    size, and a memory is pinned to the embedder (``features-<dim>``) it was built with; reruns that
    differ only in training knobs (seed, epochs, lr, ...) build the same model and share the directory,
    each adding a checkpoint version."""
    name = f"{task}-{model}-{dataset}" + ("-quick" if quick else "")
    if hparams:
        canonical = json.dumps(hparams, sort_keys=True, separators=(",", ":"))
        name += "-hparams-" + hashlib.sha256(canonical.encode()).hexdigest()[:8]
    return default_home() / "runs" / name


def run_task(task: str, model: str, dataset: str, options: RunOptions | None = None, *,
             path: str | Path | None = None, evaluate: bool = False, version: int | None = None) -> dict[str, Any]:
    """Run (or, with ``evaluate=True``, re-evaluate from the weight memory) one pipeline; returns the
    result dict that ``--json`` writes: task, model, dataset, metrics, train_s, weights, ..."""
    from agentmem.plugins import get

    options = options or RunOptions()
    task_entry = get("tasks", task)
    check_settings(task, task_entry.options.get("settings"), options.extra)
    get("models", model)
    data_entry = get("datasets", dataset)
    owner = data_entry.options.get("task")
    if owner is not None and owner != task:
        raise InvalidInputError(f"dataset {dataset!r} belongs to task {owner!r}, not {task!r}; "
                                f"run `agentmem run {owner} --dataset {dataset} ...`")
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    if path is not None:
        where = memory_path(path)
    else:
        where = default_path(task, model, dataset, quick=options.quick, hparams=options.extra.get("hparams"))
        if evaluate and not where.exists():
            raise _no_run(task, model, dataset, where)
    runner = task_entry.obj()
    start = time.perf_counter()
    if evaluate:
        result = runner.evaluate(path=where, model=model, dataset=dataset, options=options, version=version)
    else:
        result = runner.run(path=where, model=model, dataset=dataset, options=options)
    result["wall_s"] = round(time.perf_counter() - start, 2)
    result["options"] = options.to_dict()
    return result


def _no_run(task: str, model: str, dataset: str, where: Path) -> NotFoundError:
    base = f"{task}-{model}-{dataset}"
    others = sorted(p.name for p in where.parent.glob(f"{base}*") if p.is_dir()
                    and (p.name == base or p.name.startswith(f"{base}-")))
    found = f"; runs of it: {', '.join(others)}" if others else ""
    return NotFoundError(f"no {task} run of {model} on {dataset} with these settings in {where}{found}; "
                         "train it first (leave out --evaluate), or evaluate with the --quick and --set hparams "
                         "of the run (or its --path)")


@click.command("run")
@click.argument("task")
@click.option("--model", required=True, help="a registered model (see `agentmem plugins`)")
@click.option("--dataset", required=True, help="a registered data set, e.g. fashion-mnist, digits, multi30k, games")
@click.option("--memory", "use_memory", is_flag=True, help="also run the memory-augmented mode and compare")
@click.option("--epochs", type=int, default=None, help="maximum epochs (default: the task's recipe)")
@click.option("--quick", is_flag=True, help="tiny data and model: a smoke run in seconds")
@click.option("--compress", "do_compress", is_flag=True, help="measure LoRA fine-tuning, pruning, quantization")
@click.option("--evaluate", "evaluate_only", is_flag=True, help="re-evaluate the checkpoint in the weight memory")
@click.option("--version", type=int, default=None, help="checkpoint version for --evaluate (default: current)")
@click.option("--path", default=None, help="memory directory (default: one per model configuration, "
              "$AGENTMEM_HOME/runs/TASK-MODEL-DATASET[-quick][-hparams-HASH])")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--patience", type=int, default=None, help="early-stopping patience (default: the recipe's)")
@click.option("--threads", type=int, default=None, help="torch CPU threads")
@click.option("--tensorboard", default=None, help="write TensorBoard logs to this directory")
@click.option("--set", "extra", multiple=True, help="task-specific option KEY=VALUE (repeatable)")
@click.option("--json", "json_out", default=None, help="write the result as JSON to this file ('-' = stdout)")
@click.option("--quiet", is_flag=True, help="no progress bars or per-epoch lines")
def run(task: str, model: str, dataset: str, use_memory: bool, epochs: int | None, quick: bool, do_compress: bool,
        evaluate_only: bool, version: int | None, path: str | None, seed: int, batch_size: int | None,
        lr: float | None, patience: int | None, threads: int | None, tensorboard: str | None, extra: tuple[str, ...],
        json_out: str | None, quiet: bool) -> None:
    """Train and evaluate TASK (classification, translation, recommendation, ...) with a model plugin."""
    options = RunOptions(epochs=epochs, quick=quick, memory=use_memory, compress=do_compress, seed=seed,
                         batch_size=batch_size, lr=lr, patience=patience, progress=not quiet,
                         tensorboard=tensorboard, threads=threads, extra=_parse_extra(extra))
    result = run_task(task, model, dataset, options, path=path, evaluate=evaluate_only, version=version)
    text = json.dumps(result, indent=2, default=_jsonable)
    if json_out == "-":
        click.echo(text)
        return
    if json_out:
        Path(json_out).write_text(text + "\n")
    _summary(result)


def _parse_extra(items: tuple[str, ...]) -> dict[str, Any]:
    from agentmem.validate import pairs

    return pairs(items, "--set")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _summary(result: dict[str, Any]) -> None:
    def fmt(metrics: dict[str, Any]) -> str:
        return "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())

    click.echo(f"{result['task']} / {result['model']} / {result['dataset']}")
    if "plain_metrics" in result:
        click.echo(f"  plain   {fmt(result['plain_metrics'])}")
        click.echo(f"  memory  {fmt(result['metrics'])}")
    else:
        click.echo(f"  {fmt(result['metrics'])}")
    for step, row in result.get("compression", {}).items():
        click.echo(f"  {step:<9} " + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                              for k, v in row.items()))
    weights = result.get("weights", {})
    click.echo(f"  weights {weights.get('name')} v{weights.get('version')}"
               + (f"  train {result['train_s']:.1f}s" if "train_s" in result else ""))
