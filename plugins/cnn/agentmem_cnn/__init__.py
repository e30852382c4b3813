"""LeNet-5 family convolutional classifiers for agentmem, registered as the model ``cnn``.

Two convolution blocks (conv, batch norm, ReLU, 2x2 max-pool) and a fully connected stack, as in
LeNet-5, widened (32/64 channels) and regularised (dropout) for modern data sets. ``features(x)`` is the
penultimate layer; ``head`` maps it to class logits.
"""

from __future__ import annotations

from typing import Any

from agentmem import hookimpl
from agentmem.errors import InvalidInputError


def build(spec: dict[str, Any]) -> Any:
    """A LeNet for ``{"kind": "classifier", "input": "image", "shape": (C, H, W), "classes": K}``."""
    if spec.get("kind") != "classifier" or spec.get("input") != "image":
        raise InvalidInputError(f"model 'cnn' serves image classifiers only; got kind={spec.get('kind')!r} "
                                f"input={spec.get('input')!r}: use 'lstm' or 'transformer' for sequences")
    from agentmem.training import model_kwargs
    from agentmem_cnn.lenet import LeNet

    return LeNet(tuple(spec["shape"]), int(spec["classes"]), quick=bool(spec.get("quick")),
                 **model_kwargs(LeNet, spec, "cnn"))


@hookimpl
def register_models(register: Any) -> None:
    register("cnn", build, kinds=("classifier",))
