"""Sequential recommendation for agentmem: the task ``recommendation`` and the data set ``games``
(SASRec's Amazon Games), evaluated leave-one-out with 100 sampled negatives (HR@10, NDCG@10).

Memory in the loop: every user's long-term profile (mean embedding of the items in their history) is
remembered in the vector memory under the user's scope (LTM); at prediction time the user's recent
items form a session held in a short-term memory buffer (STM). The memory-augmented mode adds the
profile's and the session's affinity for each candidate to the sequence model's score, in the spirit
of STAMP, with the two weights chosen on the validation items.
"""

from __future__ import annotations

from typing import Any

from agentmem import hookimpl


@hookimpl
def register_tasks(register: Any) -> None:
    from agentmem_recommendation.run import RecommendationTask

    register("recommendation", RecommendationTask, input="items", settings=("hparams", "negatives"))


@hookimpl
def register_datasets(register: Any) -> None:
    from agentmem_recommendation.data import games

    register("games", games, task="recommendation")
