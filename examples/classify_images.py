"""Image classification with memory in the loop: train a LeNet on Fashion-MNIST (or digits), keep every
training image's features in the vector memory, and compare plain predictions with kNN-interpolated
ones. Then reload the checkpoint from the weight memory and check the figures are reproduced.

    python examples/classify_images.py --quick            # seconds, on digits
    python examples/classify_images.py --dataset fashion-mnist --model cnn --epochs 15
"""

from __future__ import annotations

import argparse
import tempfile

from agentmem.runner import run_task
from agentmem.training import RunOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "fashion-mnist"])
    parser.add_argument("--model", default="cnn", choices=["cnn", "lstm", "transformer"])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--path", default=None, help="memory directory (default: a temporary one)")
    args = parser.parse_args()
    path = args.path or tempfile.mkdtemp(prefix="agentmem-classify-")
    opts = RunOptions(epochs=args.epochs, quick=args.quick, memory=True, progress=not args.quick)
    result = run_task("classification", args.model, args.dataset, opts, path=path)
    print(f"plain accuracy  {result['plain_metrics']['accuracy']:.4f}")
    print(f"kNN + model     {result['metrics']['accuracy']:.4f}  "
          f"(lambda {result['memory_mode']['lambda']}, tau {result['memory_mode']['tau']})")
    again = run_task("classification", args.model, args.dataset, opts, path=path, evaluate=True)
    print(f"reloaded {again['weights']['name']} v{again['weights']['version']}: "
          f"accuracy {again['metrics']['accuracy']:.4f} (memory at {path})")


if __name__ == "__main__":
    main()
