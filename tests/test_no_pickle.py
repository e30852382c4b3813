"""No unsafe loading anywhere in the source tree: no pickle (or its relatives), ``torch.load`` only
with ``weights_only=True``, no ``allow_pickle=True``, no ``torch.save`` (weights are safetensors).
The check reads the syntax tree, so strings and comments that mention these names do not count."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "joblib", "marshal"}
TREES = ["agentmem", "plugins", "examples", "tests"]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _true(call: ast.Call, name: str) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords)


def unsafe_loads(source: str, filename: str = "<src>") -> list[str]:
    """Every unsafe-loading construct in ``source``, as 'file:line: what'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLERS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLERS:
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            last = name.rsplit(".", 1)[-1]
            if last == "load" and name.split(".")[0] == "torch" and not _true(node, "weights_only"):
                found.append(f"{where}: {name}() without weights_only=True")
            elif name in ("torch.save", "read_pickle") or last in ("to_pickle", "read_pickle"):
                found.append(f"{where}: {name}() writes or reads pickle")
            elif _true(node, "allow_pickle"):
                found.append(f"{where}: {name}(allow_pickle=True)")
    return found


def test_the_checker_sees_what_it_must() -> None:
    bad = ("import pickle\nfrom dill import loads\nimport torch\ntorch.load('m.pt')\n"
           "torch.load('m.pt', weights_only=False)\nnp.load('x.npy', allow_pickle=True)\ntorch.save(m, 'f')\n")
    assert len(unsafe_loads(bad)) == 6
    good = ("import torch\n# import pickle\ntorch.load('m.pt', weights_only=True)\n"
            "np.load('x.npz', allow_pickle=False)\ns = 'pickle.loads(data)'\n")
    assert unsafe_loads(good) == []


def test_source_tree_has_no_unsafe_loading() -> None:
    files = [p for tree in TREES for p in (ROOT / tree).rglob("*.py")
             if ".venv" not in p.parts and "build" not in p.parts]
    assert len(files) > 30, f"only {len(files)} Python files found under {ROOT}"
    problems = [hit for p in files for hit in unsafe_loads(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))]
    assert problems == [], "unsafe loading found:\n" + "\n".join(problems)


def test_packaging_has_no_pickle_files() -> None:
    shipped = [p for p in (ROOT / "agentmem").rglob("*") if p.suffix in {".pkl", ".pickle", ".pt", ".pth", ".bin"}]
    assert shipped == [], shipped
    assert Path(ROOT / "agentmem" / "ltm" / "weights.py").read_text().count("safetensors") >= 2
