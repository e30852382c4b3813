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


def _tied_model():  # an embedding and an output layer sharing one weight, as language models do
    torch = pytest.importorskip("torch")

    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(50, 16)
            self.out = torch.nn.Linear(16, 50)
            self.out.weight = self.emb.weight

    torch.manual_seed(0)
    return Tied()


def test_tied_weights_are_stored_once_and_load_back_under_every_key(hmem: agentmem.Memory) -> None:
    torch = pytest.importorskip("torch")
    model = _tied_model()
    state = model.state_dict()
    assert state["emb.weight"].data_ptr() == state["out.weight"].data_ptr()
    v = hmem.weights.save("tied", state, metadata={"acc": 0.5})
    loaded = hmem.weights.load("tied", version=v)
    assert set(loaded) == set(state)
    for key in state:
        assert torch.equal(loaded[key], state[key])
    assert loaded["emb.weight"] is loaded["out.weight"]  # tied again
    as_np = hmem.weights.load("tied", framework="np")
    assert set(as_np) == set(state) and np.array_equal(as_np["out.weight"], state["emb.weight"].numpy())
    (size,) = [x.size for x in hmem.weights.versions("tied")]
    assert size < 2 * 50 * 16 * 4  # the shared matrix once
    fresh = _tied_model().__class__()
    fresh.load_state_dict(loaded)
    assert torch.equal(fresh.out.weight, state["emb.weight"])


def test_overlapping_views_are_saved_as_copies(hmem: agentmem.Memory) -> None:
    torch = pytest.importorskip("torch")
    base = torch.arange(12, dtype=torch.float32)
    hmem.weights.save("views", {"all": base, "head": base[:4], "tail": base[6:].view(2, 3)})
    loaded = hmem.weights.load("views")
    assert torch.equal(loaded["head"], base[:4]) and torch.equal(loaded["tail"], base[6:].view(2, 3))


def test_a_failed_save_is_a_typed_error_and_leaves_nothing_behind(hmem: agentmem.Memory) -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(errors.InvalidInputError, match="meta device"):
        hmem.weights.save("ghost", {"w": torch.empty(3, device="meta")})
    assert not (hmem.path / "weights" / "ghost").exists()
    assert hmem.weights.names() == []
