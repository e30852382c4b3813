"""Sequential recommendation on SASRec's Amazon Games: a SASRec (or GRU) model ranks each user's
held-out item among 100 sampled negatives; the memory-augmented mode adds the user's long-term profile
(from the vector memory, LTM), random walks over the interaction graph (the knowledge graph, LTM) and
their current session (a short-term memory buffer, STM).

    python examples/recommend.py --quick
    python examples/recommend.py --epochs 30
"""

from __future__ import annotations

import argparse
import tempfile

from agentmem.runner import run_task
from agentmem.training import RunOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="transformer", choices=["transformer", "lstm"])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--path", default=None, help="memory directory (default: a temporary one)")
    args = parser.parse_args()
    path = args.path or tempfile.mkdtemp(prefix="agentmem-recommend-")
    opts = RunOptions(epochs=args.epochs, quick=args.quick, memory=True, progress=not args.quick)
    result = run_task("recommendation", args.model, "games", opts, path=path)
    for mode, m in (("plain", result["plain_metrics"]), ("STM+LTM", result["metrics"]),
                    ("popularity", result["baselines"]["popularity"])):
        print(f"{mode:<11} HR@10 {m['hr@10']:.4f}  NDCG@10 {m['ndcg@10']:.4f}")
    weights = ", ".join(f"{k} {v}" for k, v in result["memory_mode"]["weights"].items())
    print(f"memory weights: {weights} (chosen on validation items)")


if __name__ == "__main__":
    main()
