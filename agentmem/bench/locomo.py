"""``agentmem bench locomo``: turn-level evidence recall on LoCoMo-format conversations.

Protocol (../shared/data/README.md): a fresh memory per conversation; every turn remembered, in
order, through ``remember_many`` as ``<speaker> said, "<text>"`` (+ `` and shared <caption>``) with
its dia_id, session, session date-time and speaker as metadata and the session date-time as event
time; every question answered through ``recall`` on that memory. recall@k is the share of a
question's evidence turns among the first k hits, averaged over questions. In the same run, two
plain baselines on the same turns: exact dense search (the memory's own embedder + FAISS
``IndexFlatIP``) and lexical BM25 alone (SQLite FTS5 over the turn texts, the whole question as query).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from agentmem.bench import bench
from agentmem.bench.locomo_data import CATEGORIES, Conversation, Question, load, recall_at_k

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "locomo" / "locomo-dev.json"
# Each component of recall switched off in turn (Memory options), for --ablation.
ABLATIONS: dict[str, dict[str, Any]] = {
    "full (defaults)": {},
    "- context windows": {"weight_context": 0.0},
    "- own-text lexical": {"weight_lexical": 0.0},
    "- dense": {"weight_vector": 0.0},
    "- time in queries": {"time_boost": 0.0},
    "- graph": {"graph_boost": 0.0, "weight_graph": 0.0},
    "+ diversity 0.3 (MMR)": {"diversity": 0.3},
}


@dataclass
class Run:
    """Per-question rankings (dia_ids, best first) of one system, with recall latencies."""

    rankings: list[list[str]] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class Ingested:
    """A conversation's memory, and how its item ids map back to dia_ids."""

    conv: Conversation
    path: Path
    dia_ids: dict[int, list[str]]  # item id (after dedup merges) -> dia_ids stored under it
    seconds: float
    merged: int


def score(questions: Sequence[Question], rankings: Sequence[Sequence[str]], ks: Sequence[int]
          ) -> dict[str, dict[str, float]]:
    """recall@k per group: "all", "1-4" and each category by name; {group: {str(k): mean}}."""
    groups: dict[str, list[list[float]]] = {"all": [], "1-4": []}
    for q, ranked in zip(questions, rankings, strict=True):
        row = [recall_at_k(ranked, q.evidence, k) for k in ks]
        groups["all"].append(row)
        if 1 <= q.category <= 4:
            groups["1-4"].append(row)
        groups.setdefault(CATEGORIES.get(q.category, f"category-{q.category}"), []).append(row)
    return {g: {str(k): round(float(np.mean([r[j] for r in rows])), 4) for j, k in enumerate(ks)}
            for g, rows in groups.items() if rows}


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0}
    return {"p50": round(float(np.percentile(values, 50)), 2), "p95": round(float(np.percentile(values, 95)), 2)}


def ingest(conv: Conversation, root: Path, options: dict[str, Any]) -> Ingested:
    """Remember every turn of ``conv`` in a fresh memory under ``root``; timed, consolidation included."""
    from agentmem.memory import Memory

    path = root / (conv.sample_id or "conversation")
    scope = {"user": conv.sample_id or "conversation"}
    texts = [t.text for t in conv.turns]
    metas = [{"dia_id": t.dia_id, "session": t.session, "date_time": t.date_time, "speaker": t.speaker}
             for t in conv.turns]
    start = time.perf_counter()
    with Memory(path, **options) as mem:
        ids = mem.remember_many(texts, metas, scope, times=[t.time for t in conv.turns], progress=False)
        mem.consolidate()
        seconds = time.perf_counter() - start
        dia_ids: dict[int, list[str]] = {}
        for item_id, turn in zip(ids, conv.turns, strict=True):
            dia_ids.setdefault(mem.journal.canonical(item_id) or item_id, []).append(turn.dia_id)
    return Ingested(conv, path, dia_ids, seconds, len(ids) - len(dia_ids))


def run_recall(ing: Ingested, k: int, options: dict[str, Any], embeddings: np.ndarray | None = None) -> Run:
    """Ask every question of the conversation through ``Memory.recall`` (timed one by one)."""
    from agentmem.memory import Memory

    out = Run()
    scope = {"user": ing.conv.sample_id or "conversation"}
    with Memory(ing.path, **options) as mem:
        for j, q in enumerate(ing.conv.questions):
            emb = None if embeddings is None else embeddings[j]
            start = time.perf_counter()
            hits = mem.recall(q.question, k=k, scope=scope, embedding=emb)
            out.latencies_ms.append((time.perf_counter() - start) * 1000)
            out.rankings.append([d for h in hits for d in ing.dia_ids.get(h.id, [])])
    return out


def run_baselines(ing: Ingested, k: int, options: dict[str, Any], queries: np.ndarray) -> tuple[Run, Run]:
    """Plain baselines on the same memory: exact dense (FAISS IndexFlatIP over the stored turn
    embeddings) and BM25 alone (the journal's FTS5 index, the raw question as query)."""
    import faiss

    from agentmem.memory import Memory

    dense, lexical = Run(), Run()
    scope = {"user": ing.conv.sample_id or "conversation"}
    with Memory(ing.path, read_only=True, **options) as mem:
        ids, vecs, _ = mem.journal.vectors(list(ing.dia_ids))
        index = faiss.IndexFlatIP(vecs.shape[1])
        index.add(vecs)
        _, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(ids)))
        for q, found in zip(ing.conv.questions, rows, strict=True):
            dense.rankings.append([d for r in found if r >= 0 for d in ing.dia_ids[int(ids[r])]])
            hits = mem.journal.text.lexical(q.question, k, scope)
            lexical.rankings.append([d for i, _ in hits for d in ing.dia_ids.get(i, [])])
    return dense, lexical


def evaluate(convs: list[Conversation], ks: list[int], options: dict[str, Any], ablation: bool,
             log: Any) -> dict[str, Any]:
    """The whole benchmark; returns every figure (the JSON written by --json)."""
    from agentmem.plugins import get_embedder

    embedder = get_embedder(options.get("embedder") or "minilm")
    embedder.embed_batch(["warm up"])  # model loading is not ingestion
    kmax = max(ks)
    questions = [q for c in convs for q in c.questions]
    product, dense, lexical, ablated = Run(), Run(), Run(), {name: Run() for name in ABLATIONS}
    ingested: list[Ingested] = []
    with tempfile.TemporaryDirectory(prefix="agentmem-locomo-") as tmp:
        for conv in convs:
            ing = ingest(conv, Path(tmp), options)
            ingested.append(ing)
            run = run_recall(ing, kmax, options)
            product.rankings += run.rankings
            product.latencies_ms += run.latencies_ms
            qvecs = np.asarray(embedder.embed_batch([q.question for q in conv.questions]), dtype=np.float32)
            d, lx = run_baselines(ing, kmax, options, qvecs)
            dense.rankings += d.rankings
            lexical.rankings += lx.rankings
            if ablation:
                for name, extra in ABLATIONS.items():
                    r = run_recall(ing, kmax, {**options, **extra}, qvecs)
                    ablated[name].rankings += r.rankings
                    ablated[name].latencies_ms += r.latencies_ms
            log(f"{conv.sample_id}: {len(conv.turns)} turns in {ing.seconds:.1f} s, {len(conv.questions)} "
                f"questions, recall p50 {np.percentile(run.latencies_ms, 50):.1f} ms")
    return _report(convs, ks, options, questions, ingested, product, dense, lexical,
                   ablated if ablation else {})


def _report(convs: list[Conversation], ks: list[int], options: dict[str, Any], questions: list[Question],
            ingested: list[Ingested], product: Run, dense: Run, lexical: Run, ablated: dict[str, Run]
            ) -> dict[str, Any]:
    largest = max(ingested, key=lambda i: len(i.conv.turns))
    start = sum(len(i.conv.questions) for i in ingested[: ingested.index(largest)])
    report: dict[str, Any] = {
        "questions": len(questions),
        "conversations": len(convs),
        "turns": sum(len(c.turns) for c in convs),
        "unanswerable_skipped": sum(c.unanswerable for c in convs),
        "evidence_ids_dropped": [e for c in convs for e in c.dropped_evidence],
        "merged_turns": sum(i.merged for i in ingested),
        "embedder": options.get("embedder") or "minilm",
        "ingest_s": round(sum(i.seconds for i in ingested), 2),
        "latency_ms": _percentiles(product.latencies_ms),
        "latency_ms_largest": {"turns": len(largest.conv.turns), **_percentiles(
            product.latencies_ms[start: start + len(largest.conv.questions)])},
        "recall": score(questions, product.rankings, ks),
        "baselines": {"dense": {"recall": score(questions, dense.rankings, ks)},
                      "lexical": {"recall": score(questions, lexical.rankings, ks)}},
    }
    if ablated:
        report["ablation"] = {
            name: {"recall": score(questions, run.rankings, ks),
                   "latency_ms_precomputed_query": _percentiles(run.latencies_ms)}
            for name, run in ablated.items()}
    return report


def format_table(report: dict[str, Any], ks: list[int]) -> str:
    """The human-readable tables: recall@k per group beside both baselines, then the ablation."""
    head = f"{'group':<13}" + "".join(f"{'R@' + str(k):>8}" for k in ks) + \
        f"  | {'dense R@' + str(ks[-2] if len(ks) > 1 else ks[0]):>10} {'lexical':>8}"
    lines = [f"LoCoMo evidence recall: {report['questions']} questions, {report['turns']} turns, "
             f"embedder {report['embedder']}", head, "-" * len(head)]
    ref = str(ks[-2] if len(ks) > 1 else ks[0])
    for group, row in report["recall"].items():
        lines.append(f"{group:<13}" + "".join(f"{row[str(k)]:>8.3f}" for k in ks) +
                     f"  | {report['baselines']['dense']['recall'][group][ref]:>10.3f}"
                     f" {report['baselines']['lexical']['recall'][group][ref]:>8.3f}")
    for name in ("dense", "lexical"):
        row = report["baselines"][name]["recall"]["all"]
        lines.append(f"baseline {name:<8} all: " + "  ".join(f"R@{k} {row[str(k)]:.3f}" for k in ks))
    lat, big = report["latency_ms"], report["latency_ms_largest"]
    lines.append(f"ingest {report['ingest_s']:.1f} s (all conversations, consolidation included); recall "
                 f"p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms; on the largest ({big['turns']} turns) "
                 f"p50 {big['p50']:.1f} ms, p95 {big['p95']:.1f} ms (query encoding included)")
    if "ablation" in report:
        cols = [("all", "1"), ("all", "10"), ("all", "25"), ("1-4", "10")]
        lines += ["", f"{'ablation':<24}" + "".join(f"{f'R@{k} {g}':>10}" for g, k in cols) + f"{'p50 ms*':>9}"]
        for name, row in report["ablation"].items():
            r = row["recall"]
            lines.append(f"{name:<24}" + "".join(f"{r[g].get(k, float('nan')):>10.3f}" for g, k in cols) +
                         f"{row['latency_ms_precomputed_query']['p50']:>9.1f}")
        lines.append("* recall latency with the query embedding precomputed (fusion, search and graph only)")
    return "\n".join(lines)


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as Config overrides; values are JSON when they parse, strings otherwise."""
    from agentmem.config import Config
    from agentmem.validate import pairs as parse_pairs

    out = parse_pairs(pairs, "--set")
    Config().updated(**out)  # unknown keys and bad values fail here, before any work
    return out


@bench.command("locomo")
@click.option("--data", "data", type=click.Path(dir_okay=False), default=None,
              help="LoCoMo-format JSON (default: ../shared/data/locomo/locomo-dev.json)")
@click.option("--k", "ks", default="1,5,10,25", show_default=True, help="comma-separated k values")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="write every figure here")
@click.option("--embedder", default=None, help="registered embedder name (default: minilm)")
@click.option("--ablation", is_flag=True, help="also rerun recall with each component switched off")
@click.option("--limit", type=int, default=None, help="only the first N conversations")
@click.option("--threads", type=int, default=None,
              help="torch threads (default: torch's own; 1 is steadier on a busy shared CPU)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a Config option for the whole run, e.g. --set lexical_budget=2000 (repeatable)")
def locomo(data: str | None, ks: str, json_out: str | None, embedder: str | None, ablation: bool,
           limit: int | None, threads: int | None, overrides: tuple[str, ...]) -> None:
    """Evidence recall@k on LoCoMo-format conversations, beside dense and lexical baselines."""
    import torch

    from agentmem.errors import InvalidInputError

    if threads is not None:
        if threads < 1:
            raise InvalidInputError("--threads must be >= 1")
        torch.set_num_threads(threads)

    try:
        k_list = sorted({int(x) for x in ks.split(",") if x.strip()})
    except ValueError as exc:
        raise InvalidInputError(f"--k must be comma-separated integers, got {ks!r}") from exc
    if not k_list or k_list[0] < 1:
        raise InvalidInputError("--k needs at least one k >= 1")
    convs = load(data or DEFAULT_DATA)[:limit]
    options: dict[str, Any] = {"embedder": embedder} if embedder else {}
    options.update(parse_overrides(overrides))
    report = evaluate(convs, k_list, options, ablation, lambda m: click.echo(m, err=True))
    report["data"] = str(data or DEFAULT_DATA)
    report["config_overrides"] = dict(parse_overrides(overrides))
    report["torch_threads"] = torch.get_num_threads()
    click.echo(format_table(report, k_list))
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_out}", err=True)
