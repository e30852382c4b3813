"""First-party model plugins (cnn, lstm, transformer) through the registry: each model serves the
specs it documents, with the shapes its tasks rely on, and refuses the others with a typed error.
Also the inference steps of agentmem.compress (LoRA, pruning, dynamic quantization)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from agentmem import compress, plugins  # noqa: E402
from agentmem.errors import InvalidInputError  # noqa: E402

IMAGE_SPECS = [{"kind": "classifier", "input": "image", "shape": [1, 8, 8], "classes": 10, "quick": True},
               {"kind": "classifier", "input": "image", "shape": [1, 28, 28], "classes": 10, "quick": True}]
SEQ2SEQ = {"kind": "seq2seq", "src_vocab": 50, "tgt_vocab": 60, "pad": 0, "max_len": 32, "quick": True}
RECOMMENDER = {"kind": "recommender", "items": 40, "max_len": 12, "quick": True}


def build(name: str, spec: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    return plugins.get("models", name).obj(spec).eval()


def test_models_and_tasks_come_from_their_entry_point_packages() -> None:
    reg = plugins.registry()
    assert {n: reg["models"][n].plugin for n in ("cnn", "lstm", "transformer")} == \
        {"cnn": "cnn", "lstm": "lstm", "transformer": "transformer"}
    assert {n: reg["tasks"][n].plugin for n in ("classification", "translation", "recommendation")} == \
        {"classification": "classification", "translation": "translation", "recommendation": "recommendation"}
    owners = {n: reg["datasets"][n].options["task"] for n in ("fashion-mnist", "digits", "multi30k", "games")}
    assert owners == {"fashion-mnist": "classification", "digits": "classification", "multi30k": "translation",
                      "games": "recommendation"}


@pytest.mark.parametrize("name", ["cnn", "lstm", "transformer"])
@pytest.mark.parametrize("spec", IMAGE_SPECS, ids=["8x8", "28x28"])
def test_image_classifiers_expose_features_and_head(name: str, spec: dict) -> None:
    net = build(name, spec)
    x = torch.randn(5, *spec["shape"])
    feats = net.features(x)
    assert feats.shape == (5, net.feature_dim)
    assert torch.allclose(net(x), net.head(feats), atol=1e-5)
    assert net(x).shape == (5, 10)


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_seq2seq_models_decode_in_parallel_and_causally(name: str) -> None:
    net = build(name, SEQ2SEQ)
    src = torch.tensor([[2, 5, 6, 7, 3], [2, 9, 3, 0, 0]])
    tgt = torch.tensor([[2, 11, 12, 13], [2, 14, 15, 0]])
    enc = net.encode(src)
    hidden = net.decode(tgt, enc)
    assert hidden.shape == (2, 4, net.feature_dim)
    assert net(src, tgt).shape == (2, 4, 60)
    assert net.pool(enc).shape == (2, net.feature_dim)
    # a later target token never changes an earlier position's state (needed for greedy decoding)
    changed = tgt.clone()
    changed[:, -1] = 20
    assert torch.allclose(net.decode(changed, enc)[:, :-1], hidden[:, :-1], atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_recommenders_are_causal_over_left_padded_sequences(name: str) -> None:
    net = build(name, RECOMMENDER)
    seq = torch.tensor([[0, 0, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12], [0] * 9 + [3, 2, 1]])
    h = net(seq)
    assert h.shape == (2, 12, net.feature_dim)
    assert net.item_emb.num_embeddings == 41
    later = seq.clone()
    later[:, -1] = 30
    assert torch.allclose(net(later)[:, :-1], h[:, :-1], atol=1e-5)


def test_sasrec_states_do_not_depend_on_leading_padding() -> None:
    net = build("transformer", RECOMMENDER)
    assert net.pad_invariant
    seq = torch.tensor([[0, 0, 7, 3, 9], [0, 0, 0, 0, 5]])
    wider = torch.cat([torch.zeros(2, 7, dtype=torch.long), seq], dim=1)  # max_len 12
    assert torch.allclose(net(wider)[:, -5:], net(seq), atol=1e-5)
    with pytest.raises(ValueError, match="max_len"):
        net(torch.ones(1, 13, dtype=torch.long))


@pytest.mark.parametrize("name,spec", [("cnn", SEQ2SEQ), ("cnn", RECOMMENDER),
                                       ("lstm", {"kind": "classifier", "input": "audio"}),
                                       ("transformer", {"kind": "graph"})])
def test_a_model_refuses_a_spec_it_cannot_serve(name: str, spec: dict) -> None:
    with pytest.raises(InvalidInputError, match=r"pick another model|use 'lstm' or 'transformer'"):
        plugins.get("models", name).obj(spec)


def test_lora_starts_as_the_base_model_and_trains_only_adapters() -> None:
    net = build("cnn", IMAGE_SPECS[0])
    x = torch.randn(4, 1, 8, 8)
    before = net(x)
    tuned = compress.copy.deepcopy(net)
    wrapped = compress.add_lora(tuned, r=2)
    assert wrapped and torch.allclose(tuned(x), before, atol=1e-6)
    trainable = [n for n, p in tuned.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        for n, p in tuned.named_parameters():
            if n.endswith("lora_b"):
                p.normal_()
    assert not torch.allclose(tuned(x), before, atol=1e-3)
    assert torch.allclose(compress.merge_lora(tuned)(x), tuned(x), atol=1e-4)
    assert compress.state_bytes(compress.adapter_state(tuned)) < compress.model_bytes(net) / 10


def test_prune_and_quantize_shrink_the_model_and_keep_it_usable() -> None:
    net = build("lstm", IMAGE_SPECS[1])
    x = torch.randn(3, 1, 28, 28)
    pruned, info = compress.prune(net, 0.6)
    assert info["sparsity"] == pytest.approx(0.6, abs=0.01)
    assert info["sparse_bytes"] < info["dense_bytes"]
    q = compress.quantize(net)
    assert compress.model_bytes(q) < 0.4 * compress.model_bytes(net)
    with torch.inference_mode():
        ref, out = net(x), q(x)
    assert np.corrcoef(ref.ravel().numpy(), out.ravel().numpy())[0, 1] > 0.95
    assert pruned(x).shape == ref.shape
    assert compress.latency_ms(lambda: q(x), repeats=2) > 0
