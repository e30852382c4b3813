"""English-to-German translation on Multi30k with a translation memory: every training pair is
remembered, and decoding can lean on the decoder states of the most similar past pairs (kNN-MT style).
Prints sacreBLEU on test2016 for plain and memory-assisted decoding, and a few translations.

    python examples/translate.py --quick
    python examples/translate.py --epochs 12 --hparams '{"d": 256, "layers": 2, "ff": 512}'
"""

from __future__ import annotations

import argparse
import json
import tempfile

from agentmem.runner import run_task
from agentmem.training import RunOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="transformer", choices=["transformer", "lstm"])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--hparams", default="{}", help="model size, e.g. '{\"d\": 256, \"layers\": 2}'")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--path", default=None, help="memory directory (default: a temporary one)")
    args = parser.parse_args()
    path = args.path or tempfile.mkdtemp(prefix="agentmem-translate-")
    opts = RunOptions(epochs=args.epochs, quick=args.quick, memory=True, progress=not args.quick,
                      extra={"hparams": json.loads(args.hparams)})
    result = run_task("translation", args.model, "multi30k", opts, path=path)
    print(f"BLEU plain {result['plain_metrics']['bleu']:.2f}  with translation memory {result['metrics']['bleu']:.2f}")

    import agentmem

    with agentmem.Memory(path, read_only=True) as mem:  # what the translation memory holds
        scope = result["examples"]["scope"]
        for item in [i for i in mem if i.scope.get("session") == scope["session"]][:3]:
            print(f"  remembered: {item.text!r} -> {item.metadata['target']!r}")


if __name__ == "__main__":
    main()
