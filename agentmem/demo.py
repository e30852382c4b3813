"""The demo behind ``make demo`` / ``agentmem demo``: a shipped three-session conversation goes through
the agent loop, is consolidated, questioned, reopened and questioned again."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from agentmem.types import Event

SCOPE = {"user": "demo"}


def load_conversation() -> dict[str, Any]:
    return dict(json.loads(resources.files("agentmem").joinpath("data/demo_conversation.json").read_text()))


def events(conv: dict[str, Any]) -> list[Event]:
    out = []
    for session in conv["sessions"]:
        start = datetime.fromisoformat(session["time"])
        for n, (speaker, text) in enumerate(session["turns"]):
            out.append(Event(text=f"{speaker}: {text}", scope=SCOPE, time=start + timedelta(minutes=n),
                             metadata={"speaker": speaker, "session": session["session"], "turn": n}))
    return out


def run_demo(path: str | None = None, echo: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Run the demo in ``path`` (a temporary directory by default); return what it measured."""
    from agentmem.loop import Agent
    from agentmem.memory import Memory

    say = echo or (lambda _s: None)
    conv = load_conversation()
    with tempfile.TemporaryDirectory(prefix="agentmem-demo-") as tmp:
        where = Path(path) if path else Path(tmp) / "memory"
        t0 = time.perf_counter()
        mem = Memory(where)
        t_open = time.perf_counter() - t0
        say(f"memory at {where} (embedder {mem.embedder_name}, {mem.dim} dims), opened in {t_open:.1f}s")
        agent = Agent(mem, scope=SCOPE, recall_k=0)
        stream = events(conv)
        t0 = time.perf_counter()
        agent.run(stream, progress=echo is not None)
        t_ingest = time.perf_counter() - t0
        say(f"remembered {len(stream)} turns through the agent loop in {t_ingest:.2f}s; "
            f"{len(mem.stm)} waiting in short-term memory")
        report = agent.sleep()
        say(f"sleep: {len(report.promoted)} promoted to long-term memory, {len(report.merged)} merged, "
            f"{report.facts} facts extracted")
        answers = _ask(mem, conv["questions"], say)
        facts = mem.graph.facts("Ana", scope=SCOPE)
        say("graph: Ana -> " + ", ".join(sorted({f.object for f in facts if f.subject == "Ana"})))
        say(f"graph: Tomas is linked to {', '.join(mem.graph.neighbours('Tomas', scope=SCOPE))}")
        stats = mem.stats()
        say(f"stats: {stats['items']} items, {stats['vectors']} vectors ({stats['vector_index']}), "
            f"{stats['graph_entities']} entities, {stats['graph_facts']} facts, {stats['disk_bytes']:,} bytes")
        first = mem.recall(conv["questions"][0][0], k=1, scope=SCOPE)[0]
        mem.close()
        with Memory(where) as again:
            reopened = again.recall(conv["questions"][0][0], k=1, scope=SCOPE)[0]
            same = reopened.id == first.id and again.stats()["items"] == stats["items"]
        say(f"closed and reopened: {'same' if same else 'DIFFERENT'} answer -> {reopened.text!r}")
        found = sum(a["found"] for a in answers)
        say(f"{found}/{len(answers)} answers in the top 3")
        return {"turns": len(stream), "open_s": t_open, "ingest_s": t_ingest, "promoted": len(report.promoted),
                "facts": report.facts, "answers": answers, "found_in_top3": found, "stats": stats,
                "reopened_same": same}


def _ask(mem: Any, questions: list[list[str]], say: Callable[[str], None]) -> list[dict[str, Any]]:
    answers = []
    for question, expected in questions:
        t0 = time.perf_counter()
        hits = mem.recall(question, k=3, scope=SCOPE)
        ms = (time.perf_counter() - t0) * 1000
        found = any(expected.lower() in h.text.lower() for h in hits)
        say(f"Q: {question}\n   -> {hits[0].text}  [{hits[0].source}, {ms:.0f} ms]"
            f"{'' if found else '  (expected answer not in top 3)'}")
        answers.append({"question": question, "top": hits[0].text, "found": found, "ms": ms})
    return answers
