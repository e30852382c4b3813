"""Interaction sequences split leave-one-out, with seeded negative samples for evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agentmem.training import find_data


@dataclass
class Interactions:
    """``train[u]``: the user's items in time order without the last two; ``val[u]`` / ``test[u]``: the
    held-out second-to-last / last item (users with fewer than 3 actions are trained on, never
    evaluated). Item ids run from 1 to ``items``."""

    name: str
    items: int
    train: dict[int, list[int]]
    val: dict[int, int]
    test: dict[int, int]

    def evaluated(self) -> list[int]:
        return sorted(self.test)

    def candidates(self, users: list[int], split: str, seed: int, n_neg: int = 100) -> np.ndarray:
        """(len(users), 1 + n_neg) item ids: the held-out item first, then ``n_neg`` items drawn
        uniformly among those the user never interacted with (seeded, so every mode sees the same)."""
        rng = np.random.default_rng(seed + (0 if split == "val" else 1))
        target = self.val if split == "val" else self.test
        out = np.zeros((len(users), 1 + n_neg), dtype=np.int64)
        for row, u in enumerate(users):
            seen = set(self.train[u]) | {self.val[u], self.test[u]}
            negs: list[int] = []
            while len(negs) < n_neg:
                for i in rng.integers(1, self.items + 1, size=2 * n_neg):
                    if int(i) not in seen and len(negs) < n_neg:
                        negs.append(int(i))
                        seen.add(int(i))
            out[row, 0], out[row, 1:] = target[u], negs
        return out

    def history(self, u: int, split: str) -> list[int]:
        """What the model may see before predicting the held-out item of ``split``."""
        return self.train[u] if split == "val" else [*self.train[u], self.val[u]]


def games(quick: bool = False, seed: int = 0) -> Interactions:
    """SASRec's Games set (``user item`` per line, in time order). ``quick`` keeps the first 1,000 users."""
    path = find_data("sasrec-amazon-games/Video.txt", "SASRec Games (sasrec-amazon-games/Video.txt)")
    pairs = np.loadtxt(path, dtype=np.int64).reshape(-1, 2)
    seqs: dict[int, list[int]] = {}
    for u, i in pairs.tolist():
        seqs.setdefault(u, []).append(i)
    if quick:
        seqs = {u: s for u, s in seqs.items() if u <= 1000}
    train, val, test = {}, {}, {}
    for u, s in seqs.items():
        if len(s) < 3:
            train[u] = s
        else:
            train[u], val[u], test[u] = s[:-2], s[-2], s[-1]
    return Interactions("games", int(pairs[:, 1].max()), train, val, test)
