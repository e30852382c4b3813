"""The vector cache: exact and HNSW search, scope masks, tombstones, save/load."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest

from agentmem.ltm.vector import VectorIndex


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_rows_are_found_while_the_worker_is_still_inserting_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vecs = unit(rng, 12_000, 32)
    ids = np.arange(1, 12_001, dtype=np.int64)
    index = VectorIndex(32, ann_threshold=1000)
    for start in range(0, 12_000, 2000):
        index.add(ids[start:start + 2000], vecs[start:start + 2000], [{"user": "u"}] * 2000)
        # every row is searchable at once: those HNSW lacks so far are searched exactly
        probe = np.arange(start, start + 2000, 97)
        assert [h[0][0] for h in index.search_batch(vecs[probe], 1)] == (probe + 1).tolist()
    index.wait()  # counted as blocked on the worker while it waits (the worker then uses every core)
    assert index.hnsw.waiters == 0  # and no longer after: a leaked count would keep it on every core
    index.save(tmp_path / "v.npz")  # finishes the insertions first
    assert index.ann_rows == 12_000
    index.close()
    assert not index.hnsw.working
    loaded = VectorIndex.load(tmp_path / "v.npz", 32, ann_threshold=1000)
    assert loaded.ann_rows == 12_000 and loaded.search(vecs[11_999], 1)[0][0] == 12_000


@pytest.mark.parametrize("threshold", [10**9, 500])  # exact only, then HNSW past 500 rows
def test_search_masks_and_persistence(tmp_path: Path, threshold: int) -> None:
    rng = np.random.default_rng(0)
    vecs = unit(rng, 2000, 32)
    ids = np.arange(10, 2010, dtype=np.int64)
    scopes = [{"user": "a" if i % 2 else "b"} for i in range(2000)]
    index = VectorIndex(32, ann_threshold=threshold, exact_subset_limit=100)
    index.add(ids[:1500], vecs[:1500], scopes[:1500])
    index.add(ids[1500:], vecs[1500:], scopes[1500:])
    index.wait()  # HNSW insertion runs on a worker thread
    assert index.has_ann == (threshold == 500)
    top = index.search(vecs[7], 5)
    assert top[0][0] == 17 and top[0][1] == pytest.approx(1.0, abs=1e-5)
    assert all(a[1] >= b[1] for a, b in itertools.pairwise(top))
    in_a = index.search(vecs[8], 10, index.mask({"user": "a"}))  # row 8 is scope "b"
    assert in_a and all((i - 10) % 2 == 1 for i, _ in in_a)
    assert index.search(vecs[8], 10, index.mask({"user": "nobody"})) == []
    allowed = np.array([20, 30, 40], dtype=np.int64)
    assert sorted(i for i, _ in index.search(vecs[10], 10, index.mask({}, allowed))) == [20, 30, 40]
    index.remove([17])
    assert 17 not in [i for i, _ in index.search(vecs[7], 5, index.mask({}))] and len(index) == 1999
    batch = index.search_batch(vecs[[100, 200]], 1, index.mask({}))
    assert [b[0][0] for b in batch] == [110, 210]
    index.save(tmp_path / "v.npz")
    again = VectorIndex.load(tmp_path / "v.npz", 32, ann_threshold=threshold, exact_subset_limit=100)
    assert len(again) == 1999 and 17 not in again
    assert again.search(vecs[100], 3, again.mask({})) == index.search(vecs[100], 3, index.mask({}))
    with pytest.raises(ValueError):
        VectorIndex.load(tmp_path / "v.npz", 64)  # another dimension


def test_hnsw_recall_against_exact() -> None:
    rng = np.random.default_rng(1)
    vecs = unit(rng, 5000, 48)
    exact = VectorIndex(48, ann_threshold=10**9)
    approx = VectorIndex(48, ann_threshold=1000)
    for index in (exact, approx):
        index.add(np.arange(5000), vecs, [{}] * 5000)
    q = unit(rng, 50, 48)
    overlap = np.mean([len({i for i, _ in exact.search(x, 10)} & {i for i, _ in approx.search(x, 10)}) / 10
                       for x in q])
    assert overlap >= 0.95


def test_compaction_drops_tombstones() -> None:
    rng = np.random.default_rng(2)
    vecs = unit(rng, 3000, 8)
    index = VectorIndex(8, ann_threshold=10**9)
    index.add(np.arange(3000), vecs, [{}] * 3000)
    index.remove(list(range(0, 3000, 2)))  # > 20% dead and > 1024: compacts
    assert index.n == 1500 and index.dead == 0 and len(index) == 1500
    assert index.search(vecs[3], 1)[0][0] == 3


def test_time_bounds_mask_rows_and_survive_save_and_compaction(tmp_path: Path) -> None:
    vecs = unit(np.random.default_rng(5), 40, 8)
    index = VectorIndex(8)
    index.add(np.arange(1, 41), vecs, [{}] * 40, times=np.arange(40, dtype=np.float64) * 10)
    index.add(np.array([41]), vecs[:1], [{}])  # time unknown: outside any bound
    m = index.mask({}, None, 100.0, 200.0)
    assert m is not None and sorted(index.row_ids[: index.n][m].tolist()) == list(range(11, 22))
    assert {i for i, _ in index.search(vecs[0], 40, m)} == set(range(11, 22))
    assert index.unknown_times().tolist() == [41]
    index.set_times(np.array([41, 999]), np.array([150.0, 1.0]))  # an id not cached is ignored
    assert index.time_of(41) == 150.0
    index.save(tmp_path / "v.npz")
    loaded = VectorIndex.load(tmp_path / "v.npz", 8)
    assert loaded.time_of(41) == 150.0 and loaded.time_of(12) == 110.0
    loaded.remove([12])
    loaded.compact()
    m = loaded.mask({}, None, 100.0, 200.0)
    assert m is not None and sorted(loaded.row_ids[: loaded.n][m].tolist()) == [11, *range(13, 22), 41]


def test_hnsw_goes_to_its_own_file_and_old_archives_still_load(tmp_path: Path) -> None:
    import io
    import json

    import faiss

    vecs = unit(np.random.default_rng(6), 300, 16)
    index = VectorIndex(16, ann_threshold=100)
    index.add(np.arange(1, 301), vecs, [{}] * 300, times=np.zeros(300))
    path = tmp_path / "vectors.npz"
    index.save(path)
    (rows_file,), (graph_file,) = tmp_path.glob("*.f32"), tmp_path.glob("*.hnsw")
    index.add(np.array([301]), vecs[:1], [{}], times=np.zeros(1))
    index.save(path)
    assert len(list(tmp_path.iterdir())) == 3
    # the rows file is appended to; the graph file is new and the old one gone
    assert list(tmp_path.glob("*.f32")) == [rows_file] and rows_file.stat().st_size == 301 * 16 * 4
    (new_graph,) = tmp_path.glob("*.hnsw")
    assert new_graph != graph_file
    files = [new_graph.name]
    loaded = VectorIndex.load(path, 16, ann_threshold=100)
    assert loaded.ann_rows == 301 and np.allclose(loaded.vectors_of([5]), vecs[4:5])
    # an archive written before the separate file (the index serialised inside) still loads
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    arrays["ann"] = faiss.serialize_index(faiss.read_index(str(tmp_path / meta.pop("ann_file"))))
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (tmp_path / "old.npz").write_bytes(buf.getvalue())
    old = VectorIndex.load(tmp_path / "old.npz", 16, ann_threshold=100)
    assert old.ann_rows == 301 and [i for i, _ in old.search(vecs[9], 1)] == [10]
    # the HNSW file gone: unreadable, so the memory rebuilds the cache from its journal
    (tmp_path / files[0]).unlink()
    with pytest.raises(ValueError, match="missing"):
        VectorIndex.load(path, 16, ann_threshold=100)


def test_a_reader_racing_a_save_reads_the_archive_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The archive a reader opened can name an HNSW file a writer's save has just replaced and deleted;
    the reader then reads the (new) archive again instead of giving up on the cache."""
    from agentmem.ltm import vector

    vecs = unit(np.random.default_rng(8), 150, 8)
    index = VectorIndex(8, ann_threshold=100)
    index.add(np.arange(1, 151), vecs, [{}] * 150, times=np.zeros(150))
    path = tmp_path / "vectors.npz"
    index.save(path)
    stale = path.read_bytes()  # what the reader saw: an archive naming the first HNSW file
    index.save(path)  # the writer's save: a new file, the old one deleted
    fresh = path.read_bytes()
    real_load = VectorIndex._load.__func__  # type: ignore[attr-defined]
    calls = []

    def racing_load(cls: type, p: Path, dim: int, **kw: object) -> VectorIndex:
        p.write_bytes(stale if not calls else fresh)
        calls.append(p)
        return real_load(cls, p, dim, **kw)

    monkeypatch.setattr(vector.VectorIndex, "_load", classmethod(racing_load))
    loaded = VectorIndex.load(path, 8, ann_threshold=100)
    assert len(calls) == 2 and loaded.ann_rows == 150


def test_a_loaded_cache_has_room_to_grow_without_copying(tmp_path: Path) -> None:
    """The first add after opening must not reallocate the arrays (at 1M rows that copy stalled the
    first consolidation for 3.5 s)."""
    rng = np.random.default_rng(5)
    vecs = rng.standard_normal((3000, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex(8, ann_threshold=1000)
    index.add(np.arange(3000), vecs, [{}] * 3000)
    index.save(tmp_path / "v.npz")
    index.close()
    loaded = VectorIndex.load(tmp_path / "v.npz", 8, ann_threshold=1000)
    before = loaded.matrix
    loaded.add(np.arange(3000, 4000), vecs[:1000], [{}] * 1000)
    assert loaded.matrix is before  # same buffer: no copy
    assert loaded.search(vecs[3], 1)[0][0] == 3 and 3000 in loaded
    loaded.close()


def test_hnsw_candidates_come_back_with_exact_cosines_and_its_file_holds_the_graph_alone(tmp_path: Path) -> None:
    """The HNSW index stores bfloat16 vectors; the scores a search returns are float32 cosines all the
    same, and the saved HNSW file holds no vectors (the archive holds the float32 rows once)."""
    rng = np.random.default_rng(11)
    vecs = unit(rng, 3000, 48)
    index = VectorIndex(48, ann_threshold=1000, exact_subset_limit=100)
    index.add(np.arange(3000), vecs, [{"user": "a" if i % 3 else "b"} for i in range(3000)])
    index.wait()
    assert index.ann_rows == 3000
    q = unit(rng, 20, 48)
    for x in q:
        hits = index.search(x, 10)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        assert np.allclose([s for _, s in hits], vecs[[i for i, _ in hits]] @ x, atol=1e-6)
    for x, hits in zip(q, index.search_batch(q, 5, index.mask({"user": "a"})), strict=True):
        assert all(i % 3 for i, _ in hits)
        assert np.allclose([s for _, s in hits], vecs[[i for i, _ in hits]] @ x, atol=1e-6)
    index.save(tmp_path / "v.npz")
    (graph,) = tmp_path.glob("*.hnsw")
    import faiss

    # the whole index serialised is the graph file plus the 3000 bfloat16 vectors
    assert len(faiss.serialize_index(index.hnsw.index)) - graph.stat().st_size >= 3000 * 48 * 2
    loaded = VectorIndex.load(tmp_path / "v.npz", 48, ann_threshold=1000, exact_subset_limit=100)
    assert np.array_equal(loaded.vectors_of(list(range(3000))), vecs)
    assert [loaded.search(x, 10) for x in q] == [index.search(x, 10) for x in q]


def test_format_1_archives_still_load_and_are_saved_again_in_format_2(tmp_path: Path) -> None:
    """Format 1 kept the float32 rows inside a float32 HNSW index (IndexHNSWFlat) and not in the
    archive; such a cache loads with its index as it is, and its next save writes format 2."""
    import io
    import json

    import faiss

    vecs = unit(np.random.default_rng(12), 400, 16)
    ann = faiss.IndexHNSWFlat(16, 32, faiss.METRIC_INNER_PRODUCT)
    ann.add(vecs)
    faiss.write_index(ann, str(tmp_path / "vectors.0123456789ab.hnsw"))
    meta = {"format": 1, "dim": 16, "n": 400, "dead": 0, "interned": [[] for _ in range(3)],
            "ann_file": "vectors.0123456789ab.hnsw"}
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), ids=np.arange(1, 401),
             alive=np.ones(400, bool), codes=np.zeros((400, 3), np.int32), times=np.zeros(400))
    path = tmp_path / "vectors.npz"
    path.write_bytes(buf.getvalue())
    old = VectorIndex.load(path, 16, ann_threshold=100)
    assert isinstance(old.hnsw.index, faiss.IndexHNSWFlat)
    assert np.array_equal(old.vectors_of(list(range(1, 401))), vecs)
    assert old.search(vecs[9], 1)[0][0] == 10
    old.add(np.array([401]), vecs[:1], [{}], times=np.zeros(1))
    old.save(path)
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
    assert meta["format"] == 2 and (tmp_path / meta["vec_file"]).stat().st_size == 401 * 16 * 4
    again = VectorIndex.load(path, 16, ann_threshold=100)
    assert isinstance(again.hnsw.index, faiss.IndexHNSWFlat) and again.ann_rows == 401
    assert np.array_equal(again.vectors_of(list(range(1, 401))), vecs)
    assert [i for i, _ in again.search(vecs[0], 2)] in ([1, 401], [401, 1])


def test_the_rows_file_is_only_appended_to_and_read_up_to_the_archives_count(tmp_path: Path) -> None:
    """A save appends new rows to the rows file; rows a crashed save appended past the archive's count
    are never read and are cut off by the next save; a short file is damage (ValueError: the memory
    rebuilds the cache from its journal); a compaction writes a new file."""
    vecs = unit(np.random.default_rng(13), 600, 8)
    path = tmp_path / "vectors.npz"
    index = VectorIndex(8, ann_threshold=10**9)
    index.add(np.arange(1, 301), vecs[:300], [{}] * 300)
    index.save(path)
    (rows_file,) = tmp_path.glob("*.f32")
    with open(rows_file, "ab") as fh:  # a save that crashed after appending, before its archive
        fh.write(b"\xff" * 4 * 8 * 7)
    loaded = VectorIndex.load(path, 8, ann_threshold=10**9)
    assert loaded.n == 300 and np.array_equal(loaded.vectors_of(list(range(1, 301))), vecs[:300])
    loaded.add(np.arange(301, 401), vecs[300:400], [{}] * 100)
    loaded.save(path)
    assert list(tmp_path.glob("*.f32")) == [rows_file] and rows_file.stat().st_size == 400 * 8 * 4
    again = VectorIndex.load(path, 8, ann_threshold=10**9)
    assert np.array_equal(again.vectors_of(list(range(1, 401))), vecs[:400])
    again.remove(list(range(1, 301)))
    again.compact()  # rows renumbered
    again.add(np.arange(401, 601), vecs[400:], [{}] * 200)
    again.save(path)
    (new_rows,) = tmp_path.glob("*.f32")
    assert new_rows != rows_file and new_rows.stat().st_size == 300 * 8 * 4
    assert np.array_equal(VectorIndex.load(path, 8).vectors_of(list(range(401, 601))), vecs[400:])
    with open(new_rows, "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(ValueError, match="holds 100 bytes"):
        VectorIndex.load(path, 8)
    new_rows.unlink()
    with pytest.raises(ValueError, match="missing"):
        VectorIndex.load(path, 8)


def _hold_saver(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hold a background save at its first sync until the returned event is set."""
    import agentmem.ltm.vector_files as vector

    release = threading.Event()
    real_fsync = vector.os.fsync

    def slow_fsync(fd: int) -> None:
        if threading.current_thread().name == "agentmem-save":
            release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(vector.os, "fsync", slow_fsync)
    return release


def test_a_background_save_holds_the_rows_hnsw_had_and_loads_whole(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``save(background=True)`` fixes the rows HNSW holds at the call and writes them on a saver
    thread while adds go on; the next save waits for it; the archive loads with exact rows."""
    vecs = unit(np.random.default_rng(21), 9000, 16)
    ids = np.arange(1, 9001, dtype=np.int64)
    path = tmp_path / "vectors.npz"
    index = VectorIndex(16, ann_threshold=1000)
    index.add(ids[:4000], vecs[:4000], [{"user": "u"}] * 4000)
    index.wait()
    release = _hold_saver(monkeypatch)
    index.save(path, background=True)  # returns at once: the saver waits at its first sync
    assert not path.exists() and index.files.saving
    index.add(ids[4000:6000], vecs[4000:6000], [{"user": "u"}] * 2000)  # adds go on meanwhile
    assert index.search(vecs[5999], 1)[0][0] == 6000
    release.set()
    index.wait_saved()
    saved = VectorIndex.load(path, 16, ann_threshold=1000)
    assert saved.n == 4000 and saved.ann_rows == 4000  # the rows HNSW held at the call
    assert np.array_equal(saved.vectors_of(ids[:4000].tolist()), vecs[:4000])
    index.add(ids[6000:], vecs[6000:], [{"user": "u"}] * 3000)
    index.save(path)  # a plain save: every row, the rows file appended to
    assert len(list(tmp_path.glob("*.f32"))) == 1 and len(list(tmp_path.glob("*.hnsw"))) == 1
    index.close()
    loaded = VectorIndex.load(path, 16, ann_threshold=1000)
    assert loaded.n == 9000 and np.array_equal(loaded.vectors_of(ids.tolist()), vecs)
    assert loaded.search(vecs[8999], 1)[0][0] == 9000


def test_a_failed_background_save_leaves_the_old_archive_and_is_redone(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    import agentmem.ltm.vector_files as vector

    vecs = unit(np.random.default_rng(22), 3000, 16)
    ids = np.arange(1, 3001, dtype=np.int64)
    path = tmp_path / "vectors.npz"
    index = VectorIndex(16, ann_threshold=1000)
    index.add(ids[:1500], vecs[:1500], [{}] * 1500)
    index.save(path)
    index.add(ids[1500:], vecs[1500:], [{}] * 1500)
    index.wait()
    real_replace = vector.os.replace

    def no_space(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(vector.os, "replace", no_space)
    with caplog.at_level("WARNING", logger="agentmem"):
        index.save(path, background=True)
        index.wait_saved()
    assert "background save of the vector cache" in caplog.text and "No space left" in caplog.text
    assert VectorIndex.load(path, 16, ann_threshold=1000).n == 1500  # the old archive, whole
    assert len(list(tmp_path.glob("*.hnsw"))) == 1  # the failed save's graph file was removed
    monkeypatch.setattr(vector.os, "replace", real_replace)
    index.save(path)
    index.close()
    assert VectorIndex.load(path, 16, ann_threshold=1000).n == 3000
    assert len(list(tmp_path.glob("*.f32"))) == 1 and len(list(tmp_path.glob("*.hnsw"))) == 1


def test_a_compaction_during_a_background_save_starts_a_new_rows_file(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    vecs = unit(np.random.default_rng(23), 4000, 16)
    ids = np.arange(1, 4001, dtype=np.int64)
    path = tmp_path / "vectors.npz"
    index = VectorIndex(16, ann_threshold=1000)
    index.add(ids[:3000], vecs[:3000], [{}] * 3000)
    index.wait()
    release = _hold_saver(monkeypatch)
    index.save(path, background=True)
    index.remove(list(range(1, 2001)))  # past a fifth dead: compacted, rows renumbered
    assert index.dead == 0 and index.n == 1000
    release.set()
    index.wait_saved()
    assert index.files.rows_file is None  # the finished save was of the old numbering: not continued
    index.add(ids[3000:], vecs[3000:], [{}] * 1000)
    index.save(path)
    index.close()
    loaded = VectorIndex.load(path, 16, ann_threshold=1000)
    assert loaded.n == 2000 and np.array_equal(loaded.vectors_of(ids[2000:].tolist()), vecs[2000:])
    assert len(list(tmp_path.glob("*.f32"))) == 1


def test_a_memory_saves_its_cache_in_the_background_while_ingesting(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Periodic saves during a long ``remember_many`` run on the saver thread; the archive a reader
    finds meanwhile loads, and after close everything reopens without repairs."""
    import agentmem.memory as memory
    from agentmem.ltm import long_term

    monkeypatch.setattr(long_term, "SAVE_EVERY", 1000)
    vecs = unit(np.random.default_rng(24), 6000, 16)
    texts = [f"entry {i} of the ledger, line {i * 13 % 997}" for i in range(6000)]
    with memory.Memory(tmp_path / "m", embedder="hash", ann_threshold=1500) as mem:
        saves = []
        real = mem.vector.save
        monkeypatch.setattr(mem.vector, "save", lambda path, background=False: (saves.append(background),
                                                                                 real(path, background))[1])
        ids = mem.remember_many(texts, embeddings=np.pad(vecs, ((0, 0), (0, mem.dim - 16))), batch_size=500)
        assert saves.count(True) >= 4
        mem.flush()  # the save in flight too
        assert not mem.vector.files.saving
        during = VectorIndex.load(tmp_path / "m" / long_term.VECTOR_FILE, mem.dim)
        assert 0 < during.n <= len(mem.vector)
    with memory.Memory(tmp_path / "m", embedder="hash") as mem:
        assert not mem.notices and len(mem.vector) == mem.journal.counts()["ltm"] == len(set(ids))
        assert mem.recall("entry 4321 of the ledger", k=1)[0].id == ids[4321]


def test_a_small_k_search_keeps_the_best_exact_cosines_of_a_wider_candidate_set() -> None:
    """The HNSW index ranks by bfloat16 scores; a search for k < RESCORE takes RESCORE candidates and
    keeps the k with the highest exact cosines, so its answer is the head of a wider search's."""
    from agentmem.ltm.hnsw import RESCORE

    rng = np.random.default_rng(31)
    base = unit(rng, 3000, 24)
    near = unit(rng, 1, 24)[0]
    vecs = np.concatenate([base, unit(rng, 200, 24) * 0.05 + near])  # a tight cluster: close neighbours
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex(24, ann_threshold=1000, background=False)
    index.add(np.arange(1, len(vecs) + 1), vecs, [{}] * len(vecs))
    assert index.has_ann
    for k in (1, 5, 10):
        small, wide = index.search(near, k), index.search(near, RESCORE)
        assert small == wide[:k]
        assert [s for _, s in small] == sorted((s for _, s in small), reverse=True)
        assert np.allclose([s for _, s in small], vecs[[i - 1 for i, _ in small]] @ near, atol=1e-6)
    batch = index.hnsw.search_batch(np.stack([near, vecs[7]]), 5, None, None)  # the batched HNSW path
    single = index.search(near, 5)
    assert [i for i, _ in batch[0]] == [i for i, _ in single] and batch[1][0][0] == 8
    assert np.allclose([s for _, s in batch[0]], [s for _, s in single], atol=1e-6)


def test_a_large_scopes_sample_is_reused_only_while_it_is_the_scopes() -> None:
    """The sample of a named scope is kept, and dropped once a row is forgotten or the memory grows."""
    rng = np.random.default_rng(5)
    vecs = unit(rng, 9000, 16)
    index = VectorIndex(16, ann_threshold=10**9)
    index.add(np.arange(1, 9001), vecs, [{"user": "a" if j % 3 else "b"} for j in range(9000)])
    q = vecs[0]
    mask = index.mask({"user": "a"})
    rows = np.flatnonzero(mask)
    want = vecs[rows[:: len(rows) // 2048][:2048]] @ q
    key = (("user", "a"),)
    assert np.array_equal(index.sample_scores(q, mask, 2048, key), want)
    assert np.array_equal(index.sample_scores(q, mask, 2048, key), want)  # from the kept copy
    assert index.sample_scores(q, index.mask({"user": "b"}), 2048, (("user", "b"),)).shape == (2048,)
    index.remove([int(rows[0]) + 1])  # a forgotten row leaves the sample at once
    mask = index.mask({"user": "a"})
    rows = np.flatnonzero(mask)
    assert np.array_equal(index.sample_scores(q, mask, 2048, key), vecs[rows[:: len(rows) // 2048][:2048]] @ q)
    index.add(np.arange(9001, 9201), unit(rng, 200, 16), [{"user": "a"}] * 200)  # grown by over 1%
    mask = index.mask({"user": "a"})
    rows = np.flatnonzero(mask)
    assert np.array_equal(index.sample_scores(q, mask, 2048, key),
                          index.vectors_of((rows[:: len(rows) // 2048][:2048] + 1).tolist()) @ q)


def test_a_small_scopes_mask_is_the_same_however_it_is_built() -> None:
    """From 50k rows a small scope's mask is built from its own rows: the same rows as comparing every
    row's scope, through adds, forgetting, time bounds, allowed ids and compaction."""
    rng = np.random.default_rng(9)
    index = VectorIndex(8, ann_threshold=10**9)
    scopes: list[dict[str, str]] = []

    def add(count: int) -> None:
        start = index.n
        new = [{"user": f"u{rng.integers(0, 400)}",
                **({"session": f"s{rng.integers(0, 3)}"} if rng.random() < 0.5 else {})}
               if rng.random() < 0.9 else {"user": "big"} for _ in range(count)]
        scopes.extend(new)
        index.add(np.arange(start + 1, start + count + 1), unit(rng, count, 8), new,
                  times=np.arange(start, start + count, dtype=np.float64))

    def check(alive: set[int]) -> None:
        for scope, allowed, since in [({"user": "u7"}, None, None), ({"user": "u7", "session": "s1"}, None, None),
                                      ({"user": "u8"}, np.arange(1, 30_000), 100.0), ({"user": "nobody"}, None, None),
                                      ({"session": "s2"}, None, None), ({"user": "big"}, None, None)]:
            want = [i for i in sorted(alive) if all(scopes[i - 1].get(k) == v for k, v in scope.items())
                    and (allowed is None or i < 30_000) and (since is None or i - 1 >= since)]
            m = index.mask(scope, allowed, since)
            assert m is not None and sorted(i for i, _ in index.search(np.ones(8) / 8 ** 0.5, 10**6, m)) == want, scope

    add(60_000)
    alive = set(range(1, 60_001))
    check(alive)
    add(3000)  # grouped on the next mask
    alive |= set(range(60_001, 63_001))
    gone = [int(i) for i in rng.choice(63_000, 500, replace=False) + 1]
    index.remove(gone)
    alive -= set(gone)
    check(alive)
    index.compact()  # rows renumbered
    check(alive)


def test_a_selective_mask_is_searched_exactly_and_a_broad_one_through_hnsw() -> None:
    """A scope holding under 1/16 of the rows is searched exactly even past ``exact_subset_limit``
    (HNSW with so selective a filter lost recall: 0.84 for a 1% scope at 1M rows); a broad one
    goes to HNSW. Both return the exact top-k here."""
    rng = np.random.default_rng(11)
    n = 8000
    vecs = unit(rng, n, 32)
    users = ["small" if i % 40 == 0 else "broad" if i % 2 else "other" for i in range(n)]  # 2.5% / 50%
    index = VectorIndex(32, ann_threshold=1000, exact_subset_limit=100, background=False)
    index.add(np.arange(n), vecs, [{"user": u} for u in users])
    assert index.has_ann
    calls: list[int] = []
    ann_batch = index.hnsw.search_batch

    def counted(*args: object, **kwargs: object) -> list[list[tuple[int, float]]]:
        calls.append(1)
        return ann_batch(*args, **kwargs)  # type: ignore[arg-type]

    index.hnsw.search_batch = counted  # type: ignore[method-assign]
    for user, through_hnsw in (("small", False), ("broad", True)):
        rows = np.array([i for i in range(n) if users[i] == user])
        calls.clear()
        for q in unit(rng, 20, 32):
            got = [i for i, _ in index.search(q, 10, index.mask({"user": user}))]
            want = rows[np.argsort(-(vecs[rows] @ q), kind="stable")[:10]].tolist()
            if not through_hnsw:
                assert got == want, user
            else:
                assert len(set(got) & set(want)) >= 8, user
        assert bool(calls) == through_hnsw, user
        batch = index.search_batch(unit(rng, 3, 32), 5, index.mask({"user": user}))
        assert all(len(b) == 5 and all(users[i] == user for i, _ in b) for b in batch)
