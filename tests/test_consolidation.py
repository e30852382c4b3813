"""Consolidation's in-batch duplicate search (vectorised) against a brute-force reference, and the
public behaviour it serves: near-duplicates merge, the rest are promoted, across batch sizes."""

from __future__ import annotations

import numpy as np
import pytest

from agentmem import Memory
from agentmem.consolidation import _Batch
from agentmem.stm import STMEntry
from agentmem.types import Item


def _reference(embs: np.ndarray, scopes: list[str], kept: list[int], row: int) -> tuple[int | None, float]:
    """The most similar kept earlier row of the same scope, by brute force."""
    rows = [r for r in kept if r < row and scopes[r] == scopes[row]]
    if not rows:
        return None, -1.0
    sims = embs[rows] @ embs[row]
    j = int(np.argmax(sims))
    return rows[j], float(sims[j])


@pytest.mark.parametrize("n", [1, 7, 300, 2500])
def test_batch_nearest_matches_brute_force(n: int) -> None:
    rng = np.random.default_rng(n)
    base = rng.normal(size=(max(1, n // 3), 16)).astype(np.float32)
    embs = base[rng.integers(0, len(base), n)] + rng.normal(0, 0.05, size=(n, 16)).astype(np.float32)
    embs /= np.linalg.norm(embs, axis=1, keepdims=True)
    scopes = [str(s) for s in rng.integers(0, 3, n)]
    entries = [STMEntry(Item(i + 1, f"text {i}", {}, {"user": scopes[i]}, 0.0)) for i in range(n)]
    batch = _Batch(entries, embs)
    kept: list[int] = []
    for row in range(n):
        target, sim = batch.nearest(row, None)
        want_row, want_sim = _reference(embs, scopes, kept, row)
        if want_row is None:
            assert target is None
        else:
            assert target is not None and target.id == want_row + 1
            assert sim == pytest.approx(want_sim, abs=1e-5)
        if rng.random() < 0.7:  # keep most rows; the rest stand for merged ones
            batch.keep(row)
            kept.append(row)


@pytest.mark.parametrize("batch_size", [3, 512])
def test_near_duplicates_merge_across_batches(tmp_path, batch_size: int) -> None:
    texts = ["the kettle in room 517 is broken", "the kettle in room 517 is broken!",
             "my sister plays the cello", "the kettle in room 571 is broken", "my sister plays the cello."]
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 256))
    vecs = np.stack([a, a + 0.01, b, a + 0.02, b + 0.01]).astype(np.float32)
    with Memory(tmp_path / "m", embedder="hash") as mem:
        ids = mem.remember_many(texts, embeddings=vecs, batch_size=batch_size)
        report = mem.consolidate()
        merged = dict(mem.journal.conn.execute("SELECT merged_id, canonical_id FROM merges").fetchall())
        assert merged == {ids[1]: ids[0], ids[4]: ids[2]}  # 571 is a different room: kept apart
        assert sorted(i for i, _ in mem.vector.search(a / np.linalg.norm(a), 10)) == [ids[0], ids[2], ids[3]]
        assert report is not None


def test_a_failed_commit_leaves_nothing_in_the_vector_cache(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Promoted rows enter the vector cache before the journal commits (so HNSW insertion overlaps
    the commit); when the commit fails they are taken out again, and a later consolidation works."""
    from agentmem.ltm.journal import Journal

    with Memory(tmp_path / "m", embedder="hash") as mem:
        ids = mem.remember_many([f"note number {n} about topic {n * 7}" for n in range(20)])
        real = Journal.apply_consolidation

        def failing(self: Journal, *args: object, **kwargs: object) -> object:
            raise OSError("disk full")

        monkeypatch.setattr(Journal, "apply_consolidation", failing)
        with pytest.raises(OSError, match="disk full"):
            mem.consolidate()
        assert not any(i in mem.vector for i in ids) and len(mem.vector) == 0
        assert len(mem.stm) == 20 and mem.journal.counts()["ltm"] == 0
        assert [h.id for h in mem.recall("note number 3 about topic 21", k=1)] == [ids[3]]  # from STM
        monkeypatch.setattr(Journal, "apply_consolidation", real)
        report = mem.consolidate()
        assert sorted(report.promoted) == ids and all(i in mem.vector for i in ids) and len(mem.vector) == 20
        assert mem.vector.search(mem.vector.vectors_of([ids[5]])[0], 1)[0][0] == ids[5]
    with Memory(tmp_path / "m", embedder="hash") as mem:  # the saved cache agrees with the journal
        assert len(mem.vector) == 20 and not mem.notices
