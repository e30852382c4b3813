"""Image classification for agentmem: the task ``classification`` and the data sets ``fashion-mnist``
(Debian package ``dataset-fashion-mnist``) and ``digits`` (scikit-learn's 8x8 digits).

Memory in the loop: the penultimate features of every training image go into the vector memory, and
the memory-augmented mode interpolates the model's class probabilities with those of the k nearest
stored examples (kNN-LM style), with the weight and temperature chosen on the validation split.
"""

from __future__ import annotations

from typing import Any

from agentmem import hookimpl


@hookimpl
def register_tasks(register: Any) -> None:
    from agentmem_classification.task import ClassificationTask

    register("classification", ClassificationTask, input="image", settings=("hparams",))


@hookimpl
def register_datasets(register: Any) -> None:
    from agentmem_classification import data

    register("fashion-mnist", data.fashion_mnist, task="classification")
    register("digits", data.digits, task="classification")
