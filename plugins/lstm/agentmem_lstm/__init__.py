"""Recurrent models for agentmem: an LSTM classifier reading images row by row, a seq2seq encoder-decoder
with attention, and a GRU session recommender (GRU4Rec-style). Registered as the model ``lstm``;
``spec["hparams"]["cell"]`` chooses ``"lstm"`` or ``"gru"``."""

from __future__ import annotations

from typing import Any

from agentmem import hookimpl
from agentmem.errors import InvalidInputError

KINDS = ("classifier", "seq2seq", "recommender")


def build(spec: dict[str, Any]) -> Any:
    """Build the recurrent model for a task ``spec`` (``spec["kind"]`` one of :data:`KINDS`)."""
    from agentmem.training import model_kwargs
    from agentmem_lstm import models

    kind, quick = spec.get("kind"), bool(spec.get("quick"))
    if kind == "classifier" and spec.get("input") == "image":
        return models.RowClassifier(tuple(spec["shape"]), int(spec["classes"]), quick=quick,
                                    **model_kwargs(models.RowClassifier, spec, "lstm"))
    if kind == "seq2seq":
        return models.AttentionSeq2Seq(int(spec["src_vocab"]), int(spec["tgt_vocab"]), pad=int(spec.get("pad", 0)),
                                       quick=quick, **model_kwargs(models.AttentionSeq2Seq, spec, "lstm",
                                                                   set_by_task=("pad",)))
    if kind == "recommender":
        return models.SessionRecommender(int(spec["items"]), quick=quick,
                                         **model_kwargs(models.SessionRecommender, spec, "lstm"))
    raise InvalidInputError(f"model 'lstm' serves {', '.join(KINDS)} (classifier: image input); "
                            f"got kind={kind!r} input={spec.get('input')!r}: pick another model")


@hookimpl
def register_models(register: Any) -> None:
    register("lstm", build, kinds=KINDS)
