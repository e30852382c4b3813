"""Multi30k (task 1) English-German: tokenisation, vocabularies and id tensors."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agentmem.training import find_data

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Words (keeping inner hyphens and apostrophes) and single punctuation marks; case is kept."""
    return _TOKEN.findall(text)


def detokenize(tokens: Sequence[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r" ([.,!?;:)\]%])", r"\1", text)
    return re.sub(r"([(\[]) ", r"\1", text)


class Vocab:
    """Token <-> id, specials first, then tokens by falling frequency (ties alphabetical)."""

    def __init__(self, sentences: Sequence[Sequence[str]], min_freq: int = 2) -> None:
        counts = Counter(t for s in sentences for t in s)
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        self.itos = SPECIALS + ranked
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [BOS, *(self.stoi.get(t, UNK) for t in tokens), EOS]

    def decode(self, ids: Sequence[int]) -> list[str]:
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS, UNK):
                out.append(self.itos[i])
        return out


@dataclass
class Split:
    src: list[str]  # raw sentences
    tgt: list[str]
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]


@dataclass
class TranslationData:
    name: str
    src_lang: str
    tgt_lang: str
    src_vocab: Vocab
    tgt_vocab: Vocab
    train: Split
    val: Split
    test: Split


def _read(folder: Path, name: str) -> list[str]:
    with gzip.open(folder / f"{name}.gz", "rt", encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh]


def multi30k(quick: bool = False, seed: int = 0, src: str = "en", tgt: str = "de") -> TranslationData:
    """Multi30k train (29,000) / val (1,014) / test2016 (1,000). ``quick`` keeps 1,000 / 50 / 100
    pairs and every token of them in the vocabularies."""
    folder = find_data("multi30k/raw", "Multi30k (multi30k/raw/train.en.gz, ...)")
    raw = {split: (_read(folder, f"{split}.{src}"), _read(folder, f"{split}.{tgt}"))
           for split in ("train", "val", "test_2016_flickr")}
    if quick:
        keep = {"train": 1000, "val": 50, "test_2016_flickr": 100}
        raw = {k: (a[:keep[k]], b[:keep[k]]) for k, (a, b) in raw.items()}
    tok = {k: ([tokenize(s) for s in a], [tokenize(s) for s in b]) for k, (a, b) in raw.items()}
    min_freq = 1 if quick else 2
    sv, tv = Vocab(tok["train"][0], min_freq), Vocab(tok["train"][1], min_freq)

    def split(key: str) -> Split:
        return Split(raw[key][0], raw[key][1], [sv.encode(t) for t in tok[key][0]],
                     [tv.encode(t) for t in tok[key][1]])

    return TranslationData("multi30k", src, tgt, sv, tv, split("train"), split("val"), split("test_2016_flickr"))
