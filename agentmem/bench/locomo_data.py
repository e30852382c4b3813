"""LoCoMo-format data for ``agentmem bench locomo``: loading, turn texts, evidence ids and recall@k.

A LoCoMo file is a JSON list of samples ``{sample_id, conversation: {speaker_a, speaker_b, session_N:
[turns], session_N_date_time}, qa: [{question, evidence: [dia_id], category}]}``; a turn is
``{speaker, dia_id "D<session>:<turn>", text, optional blip_caption}``. Nothing here knows any
particular conversation: any file of that shape works.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentmem.errors import InvalidInputError, NotFoundError

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
_SESSION = re.compile(r"^session_(\d+)$")
_DIA_ID = re.compile(r"^D(\d+):(\d+)$")
_SPLIT = re.compile(r"[;,\s]+")
_DATE_FORMATS = ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y", "%I:%M %p on %B %d, %Y")


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    text: str  # as remembered: '<speaker> said, "<text>"' (+ ' and shared <caption>')
    session: int
    date_time: str  # the session's date-time string, as given
    time: datetime | None  # the same, parsed (UTC), None when unparsable


@dataclass(frozen=True)
class Question:
    question: str
    category: int
    evidence: tuple[str, ...]  # normalised ids that exist in the conversation


@dataclass
class Conversation:
    sample_id: str
    turns: list[Turn]
    questions: list[Question]
    dropped_evidence: list[str] = field(default_factory=list)  # ids that could not be used, as given
    unanswerable: int = 0  # questions left without usable evidence (not scored)


def turn_text(speaker: str, text: str, caption: str | None = None) -> str:
    """The protocol's text for one turn: ``<speaker> said, "<text>"`` plus `` and shared <caption>``."""
    out = f'{speaker} said, "{text}"'
    return f"{out} and shared {caption}" if caption else out


def parse_session_time(value: str) -> datetime | None:
    """LoCoMo's session stamps ("1:56 pm on 8 May, 2023") as a UTC datetime; None if unrecognised."""
    text = " ".join(str(value).split())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def normalise_evidence(raw: Sequence[Any]) -> tuple[list[str], list[str]]:
    """Split and normalise evidence ids: ``'D8:6; D9:17'`` -> D8:6, D9:17; ``'D:11:26'`` -> D11:26;
    ``'D30:05'`` -> D30:5. Returns (ids in order without duplicates, pieces that are not ids)."""
    ids: list[str] = []
    bad: list[str] = []
    for entry in raw:
        for piece in _SPLIT.split(str(entry).strip()):
            if not piece:
                continue
            digits = re.findall(r"\d+", piece)
            if not piece.upper().startswith("D") or len(digits) != 2:
                bad.append(piece)
                continue
            dia_id = f"D{int(digits[0])}:{int(digits[1])}"
            if dia_id not in ids:
                ids.append(dia_id)
    return ids, bad


def recall_at_k(ranked: Sequence[str], evidence: Sequence[str], k: int) -> float:
    """Share of ``evidence`` ids among the first ``k`` of ``ranked`` (duplicates count once)."""
    if not evidence:
        raise InvalidInputError("recall@k needs at least one evidence id")
    top = set(ranked[:k])
    return sum(1 for e in set(evidence) if e in top) / len(set(evidence))


def _turns(conv: dict[str, Any]) -> list[Turn]:
    sessions = sorted(int(m.group(1)) for key in conv if (m := _SESSION.match(key)))
    turns = []
    for n in sessions:
        stamp = str(conv.get(f"session_{n}_date_time", ""))
        when = parse_session_time(stamp)
        for raw in conv[f"session_{n}"] or []:
            caption = raw.get("blip_caption")
            dia_ids, _ = normalise_evidence([raw["dia_id"]])
            turns.append(Turn(dia_ids[0] if dia_ids else str(raw["dia_id"]), str(raw["speaker"]),
                              turn_text(str(raw["speaker"]), str(raw["text"]), caption), n, stamp, when))
    return turns


def _conversation(sample: dict[str, Any]) -> Conversation:
    turns = _turns(sample["conversation"])
    known = {t.dia_id for t in turns}
    conv = Conversation(str(sample.get("sample_id", "")), turns, [])
    for qa in sample.get("qa", []):
        ids, bad = normalise_evidence(qa.get("evidence") or [])
        conv.dropped_evidence += bad + [i for i in ids if i not in known]
        usable = tuple(i for i in ids if i in known)
        if not usable:
            conv.unanswerable += 1
            continue
        conv.questions.append(Question(str(qa["question"]), int(qa["category"]), usable))
    return conv


def load(path: str | Path) -> list[Conversation]:
    """Read a LoCoMo-format JSON file. Evidence ids are normalised; ids missing from their
    conversation and questions without any usable evidence are set aside (and counted)."""
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"{p} does not exist; pass --data with a LoCoMo-format JSON file "
                            "(e.g. ../shared/data/locomo/locomo-dev.json)")
    try:
        samples = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{p} is not JSON: {exc}") from exc
    if not isinstance(samples, list) or not all(isinstance(s, dict) and "conversation" in s for s in samples):
        raise InvalidInputError(f"{p} is not in LoCoMo format: expected a list of samples with "
                                "'conversation' and 'qa'")
    return [_conversation(s) for s in samples]
