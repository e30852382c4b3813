"""`import agentmem` stays light: heavy libraries load lazily."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_fast_and_lazy() -> None:
    code = ("import time, sys; t = time.perf_counter(); import agentmem; dt = time.perf_counter() - t; "
            "heavy = [m for m in ('torch', 'faiss', 'sentence_transformers', 'networkx') if m in sys.modules]; "
            "print(dt, heavy)")
    best = min(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout.split()[0]) for _ in range(3))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]"), out
    assert best < 0.3, f"import agentmem took {best:.3f}s"
