"""From fused ranks to hits: read the ranked items in small chunks, keep those the query allows
(plugin ids are re-checked: a scope is a partition), and say where each came from."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agentmem.recall.query import DIRECT, Context
from agentmem.recall.terms import matched, query_terms
from agentmem.types import Hit, Item, Source


def pick_hits(q: Context, ranked: Sequence[tuple[int, float, set[str]]],
              read: Callable[[list[int]], dict[int, Item]], in_stm: Callable[[int], bool]) -> list[Hit]:
    """The first ``q.k`` of ``ranked`` (id, fused score, the evidence that found it) that exist and
    pass ``q.keep``, as hits. ``read`` reads items by id; ``in_stm`` says whether an id is in STM.
    Items are read ``k + 4`` at a time: most ranks are kept, so one read usually suffices."""
    terms = query_terms(q.text)
    hits: list[Hit] = []
    step = q.k + 4
    for start in range(0, len(ranked), step):
        chunk = ranked[start: start + step]
        items = read([i for i, _, _ in chunk])
        for item_id, score, origin in chunk:
            item = items.get(item_id)
            if item is None or not q.keep(item) or len(hits) == q.k:
                continue
            source: Source = "stm" if in_stm(item_id) else (
                "graph" if origin and not origin & DIRECT else "ltm")
            cosine = q.cosines.get(item_id)
            hits.append(Hit(item_id, item.text, score, item.metadata, source, item.scope, item.event_time,
                            None if cosine is None else float(cosine), matched(terms, item.text),
                            tuple(sorted(origin or ()))))
        if len(hits) == q.k:
            break
    return hits
