"""Short-term memory: a bounded working buffer of recent items, their embeddings and activations.

Embeddings are rows of one preallocated (capacity, dim) tensor on ``agentmem.device()`` (an add
copies only its own rows; the capacity doubles when a batch overflows it). The buffer never evicts on its
own: ``full`` tells the owner to consolidate, and items leave only through ``remove`` (after they are
in long-term memory, or forgotten).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentmem.grams import gram_text, has_grams
from agentmem.lexicon import Lexicon, Terms, default_terms
from agentmem.types import Item

GRAMS_TOKENIZE = "unicode61"  # grams_fts's tokenizer (migration 6)


@dataclass
class STMEntry:
    item: Item
    activations: dict[str, Any] = field(default_factory=dict)  # name -> tensor, on device
    nbytes: int = 0


def _tensor_bytes(t: Any) -> int:
    return int(t.element_size() * t.nelement()) if hasattr(t, "element_size") else int(getattr(t, "nbytes", 0))


class ShortTermMemory:
    """Recent items, scanned exactly on recall. Not thread-safe for writes: the owning Memory's lock keeps writes
    apart from each other and from the recalls that scan it side by side."""

    def __init__(self, dim: int, max_items: int, max_bytes: int, lexicon: bool = False) -> None:
        """``lexicon=True`` also keeps the items' terms (``self.lexicon``) for lexical scans."""
        import torch

        from agentmem.devices import device

        self.dim, self.max_items, self.max_bytes = dim, max_items, max_bytes
        self.device = device()
        self._emb = torch.zeros((max(1, max_items), dim), dtype=torch.float32, device=self.device)  # rows [0, n)
        # On the CPU the same memory as a numpy array, used for every operation: one remember() runs
        # right after the embedder, when torch's dispatch is cold (one add there took ~90 us through
        # torch and ~30 us through numpy; ~6 us through torch when warm).
        self._np: np.ndarray | None = self._emb.numpy() if self.device.type == "cpu" else None
        self._entries: list[STMEntry] = []
        self._pos: dict[int, int] = {}
        self.nbytes = 0
        self.lexicon: Lexicon | None = Lexicon(default_terms()) if lexicon else None
        # the gram terms (agentmem.grams) of the items that have any, as grams_fts indexes them
        self.grams: Lexicon | None = Lexicon(Terms(GRAMS_TOKENIZE)) if lexicon else None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, item_id: int) -> bool:
        return item_id in self._pos

    @property
    def full(self) -> bool:
        return len(self._entries) >= self.max_items or self.nbytes >= self.max_bytes

    def entries(self) -> list[STMEntry]:
        return list(self._entries)

    def get(self, item_id: int) -> STMEntry | None:
        pos = self._pos.get(item_id)
        return None if pos is None else self._entries[pos]

    def add(self, items: list[Item], embeddings: np.ndarray,
            activations: list[dict[str, Any] | None] | None = None) -> None:
        """Append items with embeddings (len(items), dim); activations are kept as given (tensors)."""
        import torch

        n, k = len(self._entries), len(items)
        if n + k > len(self._emb):
            grown = torch.zeros((max(2 * len(self._emb), n + k), self.dim), dtype=torch.float32, device=self.device)
            grown[:n] = self._emb[:n]
            self._emb = grown
            self._np = grown.numpy() if self._np is not None else None
        rows = np.asarray(embeddings, dtype=np.float32).reshape(k, self.dim)
        if self._np is not None:
            self._np[n:n + k] = rows
        else:
            self._emb[n:n + k] = torch.from_numpy(np.ascontiguousarray(rows)).to(self.device)
        for j, item in enumerate(items):
            acts = (activations[j] if activations else None) or {}
            if acts:
                acts = {k: v.detach().to(self.device) if hasattr(v, "detach") else v for k, v in acts.items()}
            nbytes = len(item.text.encode()) + 4 * self.dim + sum(_tensor_bytes(v) for v in acts.values())
            self._pos[item.id] = len(self._entries)
            self._entries.append(STMEntry(item, acts, nbytes))
            self.nbytes += nbytes
        if self.lexicon is not None:
            self.lexicon.add(items)
        if self.grams is not None:
            self.grams.add([dataclasses.replace(i, text=gram_text(i.text)) for i in items if has_grams(i.text)])

    def attach(self, item_id: int, activations: dict[str, Any]) -> None:
        """Attach activation tensors to an item still in STM (counted against ``max_bytes``)."""
        entry = self.get(item_id)
        if entry is None:
            return
        for k, v in activations.items():
            t = v.detach().to(self.device) if hasattr(v, "detach") else v
            old = entry.activations.get(k)
            delta = _tensor_bytes(t) - (_tensor_bytes(old) if old is not None else 0)
            entry.activations[k] = t
            entry.nbytes += delta
            self.nbytes += delta

    def embeddings(self) -> np.ndarray:
        """(len(self), dim) float32, rows in insertion order: a copy (``remove`` compacts the buffer
        in place, so a view would change under its holder)."""
        if self._np is not None:
            return self._np[: len(self._entries)].copy()
        return self._emb[: len(self._entries)].detach().cpu().numpy()

    def remove(self, ids: set[int] | list[int]) -> list[STMEntry]:
        """Remove items; return their entries."""
        gone = set(ids) & set(self._pos)
        if not gone:
            return []
        keep = [j for j, e in enumerate(self._entries) if e.item.id not in gone]
        removed = [e for e in self._entries if e.item.id in gone]
        if keep:
            if self._np is not None:
                self._np[: len(keep)] = self._np[keep]
            else:
                self._emb[: len(keep)] = self._emb[keep]
        self._entries = [self._entries[j] for j in keep]
        self._pos = {e.item.id: j for j, e in enumerate(self._entries)}
        self.nbytes -= sum(e.nbytes for e in removed)
        if self.lexicon is not None:
            self.lexicon.remove(gone)
        if self.grams is not None:
            self.grams.remove(gone)
        return removed

    def search(self, query: np.ndarray, k: int, keep: Any = None) -> list[tuple[int, float]]:
        """Top-``k`` (id, cosine) among items for which ``keep(item)`` is true (all when None)."""
        import torch

        if not self._entries:
            return []
        if self._np is not None:
            scores = self._np[: len(self._entries)] @ np.asarray(query, dtype=np.float32)  # (n,)
        else:
            q = torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32)).to(self.device)
            scores = (self._emb[: len(self._entries)] @ q).cpu().numpy()
        rows = [j for j, e in enumerate(self._entries) if keep is None or keep(e.item)]
        rows.sort(key=lambda j: -scores[j])
        return [(self._entries[j].item.id, float(scores[j])) for j in rows[:k]]
