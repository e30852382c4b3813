"""Translation for agentmem: the task ``translation`` and the data set ``multi30k`` (English to German
image captions, evaluated with sacreBLEU on test2016).

Memory in the loop: every training pair is remembered (its source sentence as text, the target in
metadata, the encoder's mean state as the vector). The memory-augmented mode is a translation memory
in the style of kNN-MT: for each input the most similar past pairs are recalled, their decoder states
form a small token-level datastore, and each decoding step interpolates the model's distribution with
the distribution of the nearest stored states.
"""

from __future__ import annotations

from typing import Any

from agentmem import hookimpl


@hookimpl
def register_tasks(register: Any) -> None:
    from agentmem_translation.run import TranslationTask

    register("translation", TranslationTask, input="text", settings=("hparams",))


@hookimpl
def register_datasets(register: Any) -> None:
    from agentmem_translation.data import multi30k

    register("multi30k", multi30k, task="translation")
