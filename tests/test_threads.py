"""Native thread pools: consolidation and the HNSW worker run their native code on one thread each
(BLAS and FAISS's OpenMP threads spin-waited against each other on two cores), and leave every
other thread's settings as they were."""

from __future__ import annotations

import faiss
import numpy as np
from threadpoolctl import threadpool_info

from agentmem.ltm.vector import VectorIndex
from agentmem.threads import single_blas_thread, single_faiss_thread


def _blas_threads() -> list[int]:
    """numpy's BLAS (pthreads); FAISS's OpenMP-built one follows each thread's OpenMP setting instead."""
    return [i["num_threads"] for i in threadpool_info()
            if i["user_api"] == "blas" and i.get("threading_layer") == "pthreads"]


def test_single_thread_blocks_restore_the_settings() -> None:
    faiss.omp_set_num_threads(2)
    blas = _blas_threads()
    with single_blas_thread(), single_faiss_thread():
        assert faiss.omp_get_max_threads() == 1
        assert _blas_threads() and set(_blas_threads()) == {1}
    assert faiss.omp_get_max_threads() == 2
    assert _blas_threads() == blas


def test_the_insertion_worker_leaves_the_callers_faiss_threads_alone() -> None:
    faiss.omp_set_num_threads(2)
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((3000, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex(16, ann_threshold=1000)
    for start in range(0, 3000, 500):
        index.add(np.arange(start, start + 500), vecs[start:start + 500], [{}] * 500)
    index.wait()
    assert index.has_ann and index.ann_rows == 3000
    assert faiss.omp_get_max_threads() == 2  # the worker set its own thread's count only
    assert index.search(vecs[7], 1)[0][0] == 7
    index.close()
