"""The CUDA paths of the model pipelines: a mixed-precision training step, STM activations kept on the
GPU, and vector search on the GPU. Every test skips where CUDA is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_mixed_precision_training_step_updates_the_model() -> None:
    from agentmem import plugins
    from agentmem.training import autocast

    dev = torch.device("cuda")
    net = plugins.get("models", "cnn").obj({"kind": "classifier", "input": "image", "shape": [1, 28, 28],
                                            "classes": 10, "quick": True}).to(dev)
    x, y = torch.randn(32, 1, 28, 28, device=dev), torch.randint(0, 10, (32,), device=dev)
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    with autocast(dev):
        logits = net(x)
    assert logits.dtype == torch.bfloat16
    loss = torch.nn.functional.cross_entropy(logits.float(), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_stm_keeps_activations_on_the_gpu(tmp_path: Path) -> None:
    from agentmem.activations import capture
    from agentmem.devices import device
    from agentmem.training import StmRecorder, feature_memory

    assert device().type == "cuda"
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).cuda()

    def probe() -> tuple[dict, np.ndarray]:
        with torch.no_grad(), capture(net) as acts:
            out = net(torch.randn(5, 4, device="cuda"))
        return dict(acts), out.mean(0).cpu().numpy()

    with feature_memory(tmp_path / "m", 3) as mem:
        rec = StmRecorder(mem, "gpu", probe)
        i = rec.record("epoch", 1, {"loss": 1.0})
        entry = mem.stm.get(i)
        assert entry is not None and {t.device.type for t in entry.activations.values()} == {"cuda"}
        assert mem.stm.device.type == "cuda"


def test_vector_search_on_the_gpu_matches_exact_search() -> None:
    from agentmem.ltm.vector import VectorIndex

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((6000, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex(32)
    index.add(np.arange(6000), vecs, [{}] * 6000)
    q = vecs[123]
    hits = index.search(q, 5)
    expected = np.argsort(-(vecs @ q))[:5]
    assert [h[0] for h in hits] == expected.tolist()
    assert index._gpu is not None  # the copy on the GPU served the search
