"""A memory directory written by the code before issue 16's refactors opens with today's code,
recalls the same hits with the same scores, and stays writable: the refactors moved code, not
formats (journal schema, vectors.npz with its rows and HNSW files, weights, LOCK)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

import agentmem

REPO = Path(__file__).resolve().parents[1]
BEFORE = "ac50b2c"  # the last commit before issue 16's refactors (LongTermMemory, the splits)
QUERIES = [("the ledger entry about harbour fees", {"user": "u0"}, None),
           ("ferry tickets to the island", {"user": "u1"}, {"kind": "b"}),
           ("a note on the garden", {}, None)]

WRITE_AND_RECALL = """
import json, sys
import numpy as np
import agentmem
path, queries = sys.argv[1], json.loads(sys.argv[2])
assert agentmem.__file__.startswith(sys.argv[3]), agentmem.__file__  # the old code, not this checkout
mem = agentmem.Memory(path, embedder="hash", ann_threshold=300, stm_items=200)
topics = ["harbour fees", "ferry tickets", "the garden", "a ledger entry", "island weather"]
for u in range(3):
    texts = [f"note {i} for user {u}: {topics[i % 5]} and line {i * 7 % 101}" for i in range(300)]
    mem.remember_many(texts, metadatas=[{"kind": "ab"[i % 2], "n": i} for i in range(300)],
                      scope={"user": f"u{u}"}, times=[1.7e9 + 3600 * i for i in range(300)])
dup = mem.remember("note 5 for user 0: harbour fees and line 35", scope={"user": "u0"},
                   metadata={"kind": "b", "n": 5}, time=1.7e9 + 3600 * 5)
merged = mem.consolidate().merged
mem.forget(7)
mem.weights.save("model", {"w": np.arange(6, dtype=np.float32)})
hits = [[[h.id, h.score] for h in mem.recall(q, k=8, scope=s, filters=f)] for q, s, f in queries]
print(json.dumps({"hits": hits, "vector_index": mem.stats()["vector_index"], "dup": dup,
                  "merged": merged.get(dup)}))
mem.close()
"""


@pytest.fixture(scope="module")
def old_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE, "agentmem"], capture_output=True)
    if archive.returncode:
        pytest.skip(f"commit {BEFORE} is not in this clone (a shallow clone?): {archive.stderr.decode()[:200]}")
    root = tmp_path_factory.mktemp("before")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    return root


def test_a_directory_written_before_the_refactors_opens_the_same_and_stays_writable(
        old_code: Path, tmp_path: Path) -> None:
    path = tmp_path / "mem"
    env = {**os.environ, "PYTHONPATH": str(old_code), "AGENTMEM_LOAD_PLUGINS": ""}
    done = subprocess.run([sys.executable, "-c", WRITE_AND_RECALL, str(path), json.dumps(QUERIES), str(old_code)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    before = json.loads(done.stdout.strip().splitlines()[-1])
    assert before["vector_index"] == "hnsw" and (path / "vectors.npz").exists()

    with agentmem.Memory(path) as mem:  # the embedder comes from the journal
        assert mem.notices == [] and mem.stats()["vector_index"] == "hnsw"
        for (q, s, f), want in zip(QUERIES, before["hits"], strict=True):
            got = [[h.id, h.score] for h in mem.recall(q, k=8, scope=s, filters=f)]
            assert [i for i, _ in got] == [i for i, _ in want], q
            assert np.allclose([x for _, x in got], [x for _, x in want], rtol=0, atol=1e-9), q
        with pytest.raises(agentmem.errors.NotFoundError):
            mem.get(7)
        assert before["merged"] is not None and mem.get(before["dup"]).merged_into == before["merged"]
        assert mem.weights.load("model", framework="np")["w"].tolist() == [0, 1, 2, 3, 4, 5]
        new = mem.remember("a brand new note on lighthouse keepers", scope={"user": "u2"})
        mem.consolidate()
        assert mem.recall("lighthouse keepers", k=1, scope={"user": "u2"})[0].id == new
        assert new > max(i for hits in before["hits"] for i, _ in hits)
    with agentmem.Memory(path) as again:
        assert again.notices == [] and again.get(new).text == "a brand new note on lighthouse keepers"
        assert again.journal.integrity() == []
