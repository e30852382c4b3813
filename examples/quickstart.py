"""agentmem in one screen: remember, recall (scoped, filtered, time-bounded), get, consolidate, forget.

    python examples/quickstart.py

Offline, in a few seconds, with the default embedder (all-MiniLM-L6-v2, shipped with agentmem), in a
temporary directory removed at the end. Each step prints what it got.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import agentmem


def show(title: str, hits: list[agentmem.Hit]) -> None:
    print(f"{title}:")
    for h in hits:
        cosine = "-" if h.cosine is None else f"{h.cosine:.2f}"
        print(f"  #{h.id} {h.text!r}  score {h.score:.2f}  cosine {cosine}  matched {h.matched:.2f}  ({h.source})")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="agentmem-quickstart-") as tmp:
        path = Path(tmp) / "memory"
        u1 = {"user": "u1"}
        with agentmem.Memory(path) as mem:
            first = mem.remember("Caroline went to the support group on 7 May 2023",
                                 metadata={"speaker": "Caroline"}, scope=u1, time="2023-05-07")
            mem.remember_many(["Melanie painted a lake at sunrise for Caroline",
                               "Caroline is researching adoption agencies"],
                              metadatas=[{"speaker": "Melanie"}, {"speaker": "Caroline"}], scope=u1,
                              times=["2023-05-20", "2023-06-09"])
            mem.remember("The support group moved to Thursdays", scope={"user": "u2"})  # another user's memory

            # a recall sees only its scope: u2's item about the support group never comes back here
            show("recall in u1's scope", mem.recall("When did Caroline go to the support group?", k=3, scope=u1))
            show("only what Melanie said", mem.recall("what did she paint?", k=3, scope=u1,
                                                       filters={"speaker": "Melanie"}))
            show("only June 2023", mem.recall("Caroline", k=3, scope=u1, since="2023-06-01", until="2023-06-30"))

            item = mem.get(first)
            print(f"get({first}): {item.text!r} {item.metadata} tier {item.tier}")
            report = mem.consolidate()  # short-term -> long-term memory: dedup, importance, facts
            print(f"consolidated {len(report.promoted)} items; {report.facts} facts in the graph, e.g. "
                  f"{mem.graph.facts('Caroline', scope=u1)[:1]}")
            print(f"get({first}) after consolidation: tier {mem.get(first).tier}, importance "
                  f"{mem.get(first).importance:.2f}")
            print(f"forget({first}) removed {mem.forget(first)}")
            show("recall after forgetting", mem.recall("support group", k=3, scope=u1))

        with agentmem.Memory(path) as mem:  # everything acknowledged was durable
            print(f"reopened: {len(mem)} items")


if __name__ == "__main__":
    main()
