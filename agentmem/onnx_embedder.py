"""A sentence-transformers model (BERT encoder, mean pooling, L2 normalisation) run by ONNX Runtime.

On first use the local model is exported to ONNX with torch (the legacy TorchScript exporter, which needs
neither onnxscript nor a network), optionally quantized to int8 weights (onnxruntime's dynamic
quantization), and cached under ``$AGENTMEM_CACHE/onnx/`` (default ``~/.cache/agentmem/onnx/``; see
``cache_dir``) keyed by a hash of the model's weights and the mode. The file is written to a temporary
name and renamed into place, so processes exporting at once each leave a whole file; a cached file that
does not load (cut short, damaged) is exported again.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.embedders import CHARS_PER_TOKEN, Embedder, normalize
from agentmem.ltm.weights import file_sha256

log = logging.getLogger("agentmem")

# Bumped when the exported graph changes (inputs, outputs, opset, quantization settings): old files are
# then simply not found under the new key.
EXPORT_FORMAT = "1"
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def cache_dir() -> Path:
    """Where exported models are kept: ``$AGENTMEM_CACHE/onnx``, else ``$XDG_CACHE_HOME/agentmem/onnx``,
    else ``~/.cache/agentmem/onnx``."""
    root = os.environ.get("AGENTMEM_CACHE")
    if root:
        return Path(root).expanduser() / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "agentmem" / "onnx"


def require_onnx(what: str = "the ONNX embedder backend") -> None:
    """Raise ImportError naming the missing package when onnxruntime or onnx cannot be imported."""
    missing = []
    for module in ("onnxruntime", "onnx"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(f"{what} needs the package(s) {', '.join(missing)}: pip install "
                          f"{' '.join(missing)} (or choose AGENTMEM_EMBED_BACKEND=torch)")


def _quiet_quantizer(record: logging.LogRecord) -> bool:
    return "onnxruntime" not in record.pathname  # it logs advice and progress on the root logger


def _quantize(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization: int8 weights (QInt8) with one scale per output channel, activations
    quantized per call. Only MatMul (the linear layers) is quantized; the embedding table (Gather)
    stays float. Measured on 500 LoCoMo texts (cosine to the torch model's vectors): per-tensor
    weights (onnxruntime's default) mean 0.958, min 0.917; per-channel mean 0.992, min 0.971;
    per-channel MatMul only mean 0.993, min 0.983 (file 59 MB against 23 MB with the table quantized).
    Activations are quantized per batch, so a text's int8 vector depends slightly on its batch mates
    (cosine to torch 0.993 one text per call and batched alike)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    root.addFilter(_quiet_quantizer)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        root.removeFilter(_quiet_quantizer)


class OnnxEmbedder(Embedder):
    """all-MiniLM-style sentence-transformers model from a local directory, run by ONNX Runtime.

    ``quantize=True`` runs int8 weights (dynamic quantization); ``backend`` says which ("onnx" or
    "int8"). Nothing is downloaded: the model directory must hold the weights and tokenizer.json.
    """

    # Texts per call up to which the session runs on one thread, for the reason given on
    # SentenceTransformerEmbedder.small_batch: a single query is too small to split, and when another
    # process keeps a core busy a second intra-op thread only waits on it.
    small_batch = 4

    def __init__(self, name: str, path: str, quantize: bool = False, batch_size: int = 32,
                 cache: str | os.PathLike[str] | None = None) -> None:
        require_onnx("OnnxEmbedder")
        self.name = name
        self.backend = "int8" if quantize else "onnx"
        self.mode = "int8" if quantize else "fp32"
        self._path = Path(path)
        self._batch_size = batch_size
        self._cache = Path(cache) if cache is not None else None
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._sessions: dict[int, Any] = {}  # intra-op threads (0 = onnxruntime's default) -> session
        self._dim: int | None = None
        self.passage_chars = CHARS_PER_TOKEN * self.max_seq_length
        self.model_file: Path | None = None  # the .onnx file in use, once loaded
        self.exported = False  # whether this instance had to export (False: found in the cache)

    # -- configuration -----------------------------------------------------------------------

    def _config(self, rel: str) -> dict[str, Any]:
        p = self._path / rel
        if not p.is_file():
            return {}
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}

    @property
    def dim(self) -> int:
        # read from the configuration: opening a memory asks for the dimension, and that alone should not
        # export a model (checked against the session's output when it loads)
        if self._dim is None:
            pooling = self._config("1_Pooling/config.json").get("word_embedding_dimension")
            self._dim = int(pooling or self._config("config.json")["hidden_size"])
        return self._dim

    @property
    def max_seq_length(self) -> int:
        st = self._config("sentence_bert_config.json").get("max_seq_length")
        return int(st or self._config("config.json").get("max_position_embeddings", 512))

    def _weights(self) -> Path:
        for name in WEIGHT_FILES:
            if (self._path / name).is_file():
                return self._path / name
        raise FileNotFoundError(f"no model weights ({' or '.join(WEIGHT_FILES)}) in {self._path}")

    def cache_path(self) -> Path:
        """The cached .onnx file for this model and mode (it may not exist yet)."""
        key = hashlib.sha256(f"{file_sha256(self._weights())}|{self.mode}|{EXPORT_FORMAT}|{OPSET}".encode())
        return (self._cache or cache_dir()) / f"{self._path.name}-{self.mode}-{key.hexdigest()[:20]}.onnx"

    # -- export ------------------------------------------------------------------------------

    def _export_fp32(self, out: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        model = AutoModel.from_pretrained(str(self._path), attn_implementation="eager").eval()

        class Encoder(torch.nn.Module):
            """Keyword call of the HF model with exactly the three exported inputs."""

            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        # a padded example, so that tracing keeps the masking path for every shape
        ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
        mask = (ids != 0).long()
        dynamic = {n: {0: "batch", 1: "sequence"} for n in (*INPUTS, "last_hidden_state")}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notice and tracer warnings
            # dynamo=False: the TorchScript exporter, built into torch (the dynamo one needs onnxscript)
            torch.onnx.export(Encoder(model), (ids, mask, torch.zeros_like(ids)), str(out),
                              input_names=list(INPUTS), output_names=["last_hidden_state"],
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)

    def _export(self, target: Path) -> None:
        """Export (and quantize) into ``target`` atomically: temporary files in the same folder, then rename."""
        target.parent.mkdir(parents=True, exist_ok=True)
        self._sweep(target.parent)
        started = time.perf_counter()
        tmp = Path(tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp")[1])
        qtmp = tmp.with_suffix(".q.tmp")
        try:
            self._export_fp32(tmp)
            if self.mode == "int8":
                _quantize(tmp, qtmp)
                os.replace(qtmp, tmp)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would keep the cache from other users of a shared folder
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            for p in (tmp, qtmp):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        self.exported = True
        log.info("exported %s to %s (%s) in %.1f s", self._path.name, target, self.mode,
                 time.perf_counter() - started)

    @staticmethod
    def _sweep(folder: Path, age: float = 86400.0) -> None:
        """Remove temporary files of exports that died a day or more ago."""
        now = time.time()
        for p in folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime > age:
                    p.unlink()

    # -- loading -----------------------------------------------------------------------------

    def _session(self, threads: int) -> Any:
        import onnxruntime as ort

        assert self.model_file is not None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(self.model_file), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        width = session.get_outputs()[0].shape[-1]
        if sorted(names) != sorted(INPUTS) or width != self.dim:
            raise ValueError(f"{self.model_file} has inputs {names} and width {width}, expected {list(INPUTS)} "
                             f"and {self.dim}")
        return session

    def _load(self) -> None:
        with self._lock:
            if self._sessions:
                return
            from tokenizers import Tokenizer

            target = self.cache_path()
            tok = Tokenizer.from_file(str(self._path / "tokenizer.json"))
            tok.no_padding()  # tokenizer.json pads to a fixed 128; batches are padded to their longest text
            tok.enable_truncation(max_length=self.max_seq_length)
            if not target.exists():
                try:
                    self._export(target)
                except OSError as exc:  # a cache folder that cannot be written: export for this process only
                    folder = tempfile.mkdtemp(prefix="agentmem-onnx-")
                    atexit.register(shutil.rmtree, folder, True)
                    fallback = Path(folder) / target.name
                    log.warning("cannot write the ONNX cache %s (%s); exporting to %s", target.parent, exc,
                                fallback.parent)
                    target = fallback
                    self._export(target)
            self.model_file = target
            try:
                session = self._session(1)
            except Exception as exc:  # cut short or damaged: onnxruntime raises its own exception types
                if self.exported:
                    raise
                log.warning("cached ONNX model %s does not load (%s); exporting it again", target,
                            str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
                self._export(target)
                session = self._session(1)
            self._tokenizer = tok
            self._sessions[1] = session

    def _session_for(self, n: int) -> Any:
        self._load()
        threads = 1 if n <= self.small_batch else 0
        if threads not in self._sessions:
            with self._lock:
                if threads not in self._sessions:
                    self._sessions[threads] = self._session(threads)
        return self._sessions[threads]

    # -- embedding ---------------------------------------------------------------------------

    # A batch takes texts down to this fraction of its longest one. onnxruntime's CPU cost is per token,
    # padding included, and a call costs next to nothing more (all-MiniLM-L6-v2, one thread: about 7,000
    # tokens/s at batch 1 and at batch 32 alike), so padding is the only thing batching changes: 32 LoCoMo
    # turns padded to their longest took 0.57 s as one batch and 0.29 s one by one.
    min_fill = 0.8

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Row indices in batches: longest first, at most ``batch_size`` rows of like length each."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches: list[list[int]] = []
        for i in order:
            if batches and len(batches[-1]) < self._batch_size and \
                    lengths[i] >= self.min_fill * lengths[batches[-1][0]]:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        session = self._session_for(len(texts))
        encodings = self._tokenizer.encode_batch(list(texts)) if len(texts) > 1 else \
            [self._tokenizer.encode(texts[0])]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for rows in self._batches([len(e.ids) for e in encodings]):
            width = len(encodings[rows[0]].ids)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                seq = encodings[i].ids
                ids[r, :len(seq)] = seq
                mask[r, :len(seq)] = 1
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[rows] = normalize(pooled)
        return out
