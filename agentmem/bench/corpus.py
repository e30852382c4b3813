"""The throughput benchmark's corpus: real utterances, stretched to any size, with embeddings.

Texts are the utterances of Synthetic-Persona-Chat (``../shared/data``; a built-in sentence
generator stands in when it is absent). Up to ``base`` distinct texts are embedded with the real
embedder; larger sizes reuse them as variants ("<text> (variant 3)") whose vectors mix the base vector
with a random partner's plus seeded noise (see :func:`expand`), so no two items share a vector and
every system is given the very same vectors.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

PERSONA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "synthetic-persona-chat"
NOISE = 0.0245  # per-dimension sigma: |noise| ~ 0.48 in 384 dims, cosine to the base ~ 0.9
CACHE = Path(os.environ.get("AGENTMEM_BENCH_CACHE", Path.home() / ".cache" / "agentmem-bench"))  # embeddings


def base_texts(limit: int) -> tuple[list[str], str]:
    """Up to ``limit`` distinct utterances and a word naming their source."""
    texts: list[str] = []
    seen: set[str] = set()
    files = sorted(PERSONA.glob("*.csv")) if PERSONA.exists() else []
    for file in files:
        with open(file, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                for line in row.get("Best Generated Conversation", "").splitlines():
                    text = line.split(":", 1)[-1].strip()
                    if len(text) > 3 and text not in seen:
                        seen.add(text)
                        texts.append(text)
                        if len(texts) >= limit:
                            return texts, "synthetic-persona-chat"
    if texts:
        return texts, "synthetic-persona-chat"
    rng = np.random.default_rng(0)
    words = ["garden", "dog", "river", "coffee", "bike", "piano", "market", "winter", "friend", "train", "book",
             "movie", "city", "paint", "cook", "travel", "music", "school", "doctor", "job", "sister", "beach"]
    while len(texts) < limit:
        texts.append(" ".join(rng.choice(words, size=int(rng.integers(5, 12)))).capitalize() + ".")
    return texts, "generated"


def expand(texts: list[str], vecs: np.ndarray, n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Stretch (texts, vecs) to ``n`` items: originals first, then variants. Variant ``i`` of base text
    ``a`` leans towards a random partner text ``p``: ``w * v[a] + (1 - w) * v[p]`` plus a little
    Gaussian noise, ``w`` uniform in [0.6, 0.9], renormalised. Noisy copies alone made a degenerate
    corpus at 1M (200 near-equal copies of each text, whose exact top 10 only the noise decides);
    mixing spreads the variants the way distinct sentences on related topics are spread."""
    b = len(texts)
    rng = np.random.default_rng(seed)
    out = np.empty((n, vecs.shape[1]), dtype=np.float32)
    out[: min(n, b)] = vecs[: min(n, b)]
    for start in range(b, n, 65536):
        end = min(n, start + 65536)
        base = vecs[np.arange(start, end) % b]
        partner = vecs[rng.integers(0, b, size=end - start)]
        w = rng.uniform(0.6, 0.9, size=(end - start, 1)).astype(np.float32)
        mixed = w * base + (1 - w) * partner + rng.normal(0.0, NOISE / 2, size=base.shape).astype(np.float32)
        out[start:end] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    all_texts = [texts[i % b] if i < b else f"{texts[i % b]} (variant {i // b})" for i in range(n)]
    return all_texts, out


def embed_cached(texts: list[str], embedder: object, cache_dir: Path) -> np.ndarray:
    """Embed ``texts`` (batch 64), cached on disk by content so repeated runs skip the model."""
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    name = "-".join(str(getattr(embedder, a, "")) for a in ("name", "backend")).strip("-") or "embedder"
    file = cache_dir / f"{name}-{key}.npy"
    if file.exists():
        return np.load(file, allow_pickle=False)
    from tqdm.auto import tqdm

    parts = [embedder.embed_batch(texts[i:i + 64])  # type: ignore[attr-defined]
             for i in tqdm(range(0, len(texts), 64), desc="embedding corpus", unit="batch")]
    vecs = np.concatenate(parts).astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp.npy")
    np.save(tmp, vecs)
    tmp.replace(file)
    return vecs


def queries(vecs: np.ndarray, n_queries: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(item indices, query vectors): items drawn at random, vectors perturbed like variants."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(vecs), size=min(n_queries, len(vecs)), replace=False)
    q = vecs[idx] + rng.normal(0.0, NOISE, size=(len(idx), vecs.shape[1])).astype(np.float32)
    return idx, (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vecs: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Ground truth: exact inner-product top-``k`` indices for each query, (n_queries, k)."""
    out = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), 64):
        scores = q[start:start + 64] @ vecs.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
        out[start:start + 64] = np.take_along_axis(part, order, axis=1)
    return out


def recall_at(found: list[list[int]], truth: np.ndarray, k: int = 10) -> float:
    """Mean share of the exact top-``k`` found among the first ``k`` results."""
    return float(np.mean([len(set(f[:k]) & set(t[:k].tolist())) / k for f, t in zip(found, truth, strict=True)]))


def sized(n: int, base: int = 40_000) -> tuple[list[str], np.ndarray]:
    """``n`` texts and their MiniLM vectors: up to ``base`` real ones (embedded once, cached in
    :data:`CACHE`), the rest variants of them (:func:`expand`)."""
    from agentmem.plugins import get_embedder

    texts, _ = base_texts(min(n, base))
    return expand(texts, embed_cached(texts, get_embedder("minilm"), CACHE), n)


def fill_by_user(mem: Any, texts: list[str], vecs: np.ndarray, users: int) -> None:
    """Remember ``texts`` (vectors given) spread round-robin over users ``u0``.. (item i is user
    ``i % users``'s), then consolidate and flush: a memory as the server and parallel benches query it."""
    for u in range(users):
        rows = list(range(u, len(texts), users))
        mem.remember_many([texts[r] for r in rows], scope={"user": f"u{u}"}, embeddings=vecs[rows], progress=False)
    mem.consolidate()
    mem.flush()
