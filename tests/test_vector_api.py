"""The public vector API model plugins use: Memory.search_vectors, get_many, embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import agentmem
from agentmem.errors import DimensionError, InvalidInputError


def test_search_vectors_is_exact_inside_the_scope_and_sees_short_term_items(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    with agentmem.Memory(tmp_path / "m", embedder="hash") as mem:
        vecs = rng.normal(size=(60, mem.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        ids = mem.remember_many([f"example {j}" for j in range(50)], [{"label": j % 2} for j in range(50)],
                                scope={"user": "a"}, embeddings=vecs[:50])
        other = mem.remember_many([f"other {j}" for j in range(5)], scope={"user": "b"}, embeddings=vecs[50:55])
        mem.consolidate()
        late = mem.remember("example late", {"label": 1}, scope={"user": "a"}, embedding=vecs[55])  # still in STM
        every = dict(zip([*ids, late], [*range(50), 55], strict=True))
        for q in (vecs[55], vecs[3]):
            want = sorted(every, key=lambda i: -float(vecs[every[i]] @ q))[:7]
            (got,) = mem.search_vectors(q, 7, scope={"user": "a"})
            assert [i for i, _ in got] == want and not set(other) & {i for i, _ in got}
            assert np.allclose([s for _, s in got], [vecs[every[i]] @ q for i in want], atol=1e-5)
        rows = mem.search_vectors(vecs[:3], 5, scope={"user": "a"}, filters={"label": 1})
        assert len(rows) == 3 and all(mem.get(i).metadata["label"] == 1 for row in rows for i, _ in row)
        items = mem.get_many([ids[0], late, 10**9])
        assert set(items) == {ids[0], late} and items[late].text == "example late"
        emb = mem.embeddings([ids[4], 10**9])
        assert list(emb) == [ids[4]] and np.allclose(emb[ids[4]], vecs[4], atol=1e-6)
        with pytest.raises(DimensionError):
            mem.search_vectors(np.ones(3), 5)
        for bad in ([[1.0] * 8, [1.0]], [[], []], "not a vector", [[1e308] * 8]):  # ragged, empty, text, overflow
            with pytest.raises(DimensionError):
                mem.search_vectors(bad, 5)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            mem.search_vectors(vecs[0], 0)
        with pytest.raises(InvalidInputError):
            mem.get_many(["1"])  # type: ignore[list-item]
