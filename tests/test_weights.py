"""Weight memory: versions, metadata, sha256, rollback, names."""

from __future__ import annotations

import numpy as np
import pytest

import agentmem
from agentmem import errors


def test_versions_rollback_numpy_and_torch(hmem: agentmem.Memory) -> None:
    torch = pytest.importorskip("torch")
    w = hmem.weights
    v1 = w.save("clf", {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, metadata={"acc": 0.5})
    v2 = w.save("clf", {"w": torch.ones(2, 3)}, metadata={"acc": 0.9})
    assert (v1, v2) == (1, 2)
    assert torch.equal(w.load("clf")["w"], torch.ones(2, 3))
    assert np.array_equal(w.load("clf", version=1, framework="np")["w"], np.arange(6).reshape(2, 3))
    w.rollback("clf", 1)
    assert [(v.version, v.current, v.metadata["acc"]) for v in w.versions("clf")] == [(1, True, 0.5), (2, False, 0.9)]
    assert w.load("clf", framework="np")["w"][0, 1] == 1.0
    assert w.names() == ["clf"]
    assert all(len(v.sha256) == 64 and v.size > 0 for v in w.versions("clf"))


def test_bad_names_and_missing(hmem: agentmem.Memory) -> None:
    for bad in ("../escape", "a/b", "", ".hidden", "x" * 200, "a..b"):
        with pytest.raises(errors.InvalidInputError, match="weight name"):
            hmem.weights.save(bad, {"w": np.zeros(1)})
    with pytest.raises(errors.NotFoundError):
        hmem.weights.load("never-saved")
    hmem.weights.save("m", {"w": np.zeros(1)})
    with pytest.raises(errors.NotFoundError, match="no version 9"):
        hmem.weights.load("m", version=9)
    with pytest.raises(errors.InvalidInputError, match="JSON"):
        hmem.weights.save("m", {"w": np.zeros(1)}, metadata={"x": object()})
    assert not list((hmem.path / "weights").rglob("*.tmp"))


def test_damaged_file_is_refused(hmem: agentmem.Memory) -> None:
    hmem.weights.save("m", {"w": np.zeros(100)})
    f = next((hmem.path / "weights" / "m").glob("v1.safetensors"))
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(errors.CorruptionError, match="sha256"):
        hmem.weights.load("m")
    assert hmem.weights.verify() == ["weights m v1: sha256 mismatch in m/v1.safetensors"]
