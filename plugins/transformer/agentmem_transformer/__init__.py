"""Transformer models for agentmem: an encoder classifier over image patches, an encoder-decoder for
translation and a SASRec-style causal recommender. Registered as the model ``transformer``."""

from __future__ import annotations

from typing import Any

from agentmem import hookimpl
from agentmem.errors import InvalidInputError

KINDS = ("classifier", "seq2seq", "recommender")
SEQ2SEQ = ("pad", "max_len")  # set from the spec, not hparams


def build(spec: dict[str, Any]) -> Any:
    """Build the Transformer for a task ``spec`` (``spec["kind"]`` one of :data:`KINDS`)."""
    from agentmem.training import model_kwargs

    kind = spec.get("kind")
    if kind == "classifier" and spec.get("input") == "image":
        from agentmem_transformer.classifier import PatchClassifier

        return PatchClassifier(tuple(spec["shape"]), int(spec["classes"]), quick=bool(spec.get("quick")),
                               **model_kwargs(PatchClassifier, spec, "transformer"))
    if kind == "seq2seq":
        from agentmem_transformer.seq2seq import Seq2SeqTransformer

        return Seq2SeqTransformer(int(spec["src_vocab"]), int(spec["tgt_vocab"]), pad=int(spec.get("pad", 0)),
                                  max_len=int(spec.get("max_len", 128)), quick=bool(spec.get("quick")),
                                  **model_kwargs(Seq2SeqTransformer, spec, "transformer", set_by_task=SEQ2SEQ))
    if kind == "recommender":
        from agentmem_transformer.sasrec import SASRec

        return SASRec(int(spec["items"]), max_len=int(spec.get("max_len", 50)), quick=bool(spec.get("quick")),
                      **model_kwargs(SASRec, spec, "transformer", set_by_task=("max_len",)))
    raise InvalidInputError(f"model 'transformer' serves {', '.join(KINDS)} (classifier: image input); "
                            f"got kind={kind!r} input={spec.get('input')!r}: pick another model")


@hookimpl
def register_models(register: Any) -> None:
    register("transformer", build, kinds=KINDS)
