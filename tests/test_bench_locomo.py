"""The LoCoMo benchmark's own correctness: loading, evidence-id normalisation, recall@k, the command.

Everything runs on a tiny LoCoMo-format file written here (our own text), with the hashing embedder.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agentmem.bench.locomo import score
from agentmem.bench.locomo_data import (
    Question,
    load,
    normalise_evidence,
    parse_session_time,
    recall_at_k,
    turn_text,
)
from agentmem.cli import _load_plugin_commands, cli
from agentmem.errors import InvalidInputError, NotFoundError


def _turn(speaker: str, dia_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"speaker": speaker, "dia_id": dia_id, "text": text, **extra}


def tiny_locomo() -> list[dict[str, Any]]:
    """Two short conversations in LoCoMo's format, with the data set's known evidence-id quirks."""
    first = {
        "speaker_a": "Ada", "speaker_b": "Ben",
        "session_1_date_time": "9:15 am on 3 March, 2021",
        "session_1": [
            _turn("Ada", "D1:1", "Morning Ben! I started learning the cello last week."),
            _turn("Ben", "D1:2", "Nice! Which teacher did you pick?"),
            _turn("Ada", "D1:3", "Mrs Okafor from the conservatory, she is very patient.",
                  img_url=["x"], blip_caption="a photo of a cello by a window"),
        ],
        "session_2_date_time": "6:40 pm on 20 April, 2021",
        "session_2": [
            _turn("Ben", "D2:1", "I adopted a grey rabbit called Pebble."),
            _turn("Ada", "D2:2", "Pebble is a lovely name for a rabbit!"),
        ],
    }
    qa = [
        {"question": "What instrument is Ada learning?", "answer": "cello", "evidence": ["D1:1"], "category": 4},
        {"question": "Who teaches Ada?", "answer": "Mrs Okafor", "evidence": ["D1:2; D1:3"], "category": 1},
        {"question": "What pet did Ben adopt?", "answer": "a rabbit", "evidence": ["D:2:1", "D"], "category": 2},
        {"question": "What is the rabbit called?", "answer": "Pebble", "evidence": ["D02:01", "D9:9"],
         "category": 5},
        {"question": "Does Ada like music?", "answer": "yes", "evidence": [], "category": 3},
    ]
    second = {
        "speaker_a": "Cy", "speaker_b": "Dee",
        "session_1_date_time": "not a date",
        "session_1": [_turn("Cy", "D1:1", "My marathon is in October."),
                      _turn("Dee", "D1:2", "Good luck with the marathon training!")],
    }
    qa2 = [{"question": "When is Cy's marathon?", "answer": "October", "evidence": ["D1:1"], "category": 2}]
    return [{"sample_id": "t-1", "conversation": first, "qa": qa},
            {"sample_id": "t-2", "conversation": second, "qa": qa2}]


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-locomo.json"
    path.write_text(json.dumps(tiny_locomo()), encoding="utf-8")
    return path


@pytest.mark.parametrize(("raw", "ids", "bad"), [
    (["D1:3"], ["D1:3"], []),
    (["D8:6; D9:17"], ["D8:6", "D9:17"], []),  # two ids in one string
    (["D:11:26"], ["D11:26"], []),  # stray colon
    (["D30:05"], ["D30:5"], []),  # zero-padded turn
    (["D1:2", "D", "D1:2"], ["D1:2"], ["D"]),  # a bare "D" is no id; duplicates count once
    (["d4:2,D5:1"], ["D4:2", "D5:1"], []),
    (["S1:2"], [], ["S1:2"]),
])
def test_evidence_ids_are_normalised(raw: list[str], ids: list[str], bad: list[str]) -> None:
    assert normalise_evidence(raw) == (ids, bad)


def test_load_keeps_usable_evidence_and_counts_the_rest(tiny_file: Path) -> None:
    first, second = load(tiny_file)
    assert [t.dia_id for t in first.turns] == ["D1:1", "D1:2", "D1:3", "D2:1", "D2:2"]
    assert first.turns[2].text == ('Ada said, "Mrs Okafor from the conservatory, she is very patient." '
                                   "and shared a photo of a cello by a window")
    assert first.turns[3].time == datetime(2021, 4, 20, 18, 40, tzinfo=UTC)
    assert second.turns[0].time is None  # unparsable session stamp: no event time, still remembered
    assert [q.evidence for q in first.questions] == [("D1:1",), ("D1:2", "D1:3"), ("D2:1",), ("D2:1",)]
    assert first.unanswerable == 1  # the question with no evidence is not scored
    assert sorted(first.dropped_evidence) == ["D", "D9:9"]  # not an id; an id missing from the turns


def test_turn_text_and_session_time_follow_the_protocol() -> None:
    assert turn_text("Ada", "Hi") == 'Ada said, "Hi"'
    assert turn_text("Ada", "Look", "a photo of a dog") == 'Ada said, "Look" and shared a photo of a dog'
    assert parse_session_time("1:56 pm on 8 May, 2023") == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert parse_session_time("12:48 am on 1 February, 2023") == datetime(2023, 2, 1, 0, 48, tzinfo=UTC)
    assert parse_session_time("someday") is None


def test_recall_at_k_is_the_share_of_evidence_in_the_top_k() -> None:
    ranked = ["D1:2", "D1:5", "D1:1", "D1:2"]
    assert recall_at_k(ranked, ["D1:1", "D1:2"], 1) == 0.5
    assert recall_at_k(ranked, ["D1:1", "D1:2"], 2) == 0.5
    assert recall_at_k(ranked, ["D1:1", "D1:2"], 3) == 1.0
    assert recall_at_k([], ["D1:1"], 10) == 0.0
    with pytest.raises(InvalidInputError):
        recall_at_k(ranked, [], 5)


def test_score_averages_per_question_and_per_category() -> None:
    questions = [Question("q1", 4, ("D1:1", "D1:2")), Question("q2", 5, ("D2:1",)),
                 Question("q3", 1, ("D3:1", "D3:2", "D3:3", "D3:4"))]
    rankings = [["D1:2", "D1:5", "D1:1"], ["D1:1", "D2:1"], ["D3:4", "D3:9"]]
    got = score(questions, rankings, [1, 5])
    # by hand: q1 R@1 1/2, R@5 2/2; q2 R@1 0, R@5 1; q3 R@1 1/4, R@5 1/4
    assert got["all"] == {"1": round((0.5 + 0 + 0.25) / 3, 4), "5": round((1 + 1 + 0.25) / 3, 4)}
    assert got["1-4"] == {"1": 0.375, "5": 0.625}
    assert got["single-hop"] == {"1": 0.5, "5": 1.0}
    assert got["adversarial"] == {"1": 0.0, "5": 1.0}
    assert got["multi-hop"] == {"1": 0.25, "5": 0.25}
    assert "temporal" not in got


def test_bench_command_runs_on_a_tiny_file(tiny_file: Path, tmp_path: Path) -> None:
    _load_plugin_commands()
    out = tmp_path / "locomo.json"
    result = CliRunner().invoke(cli, ["bench", "locomo", "--data", str(tiny_file), "--embedder", "hash",
                                      "--k", "1,3,25", "--json", str(out), "--ablation"])
    assert result.exit_code == 0, result.output
    assert "R@25" in result.output and "ablation" in result.output
    report = json.loads(out.read_text())
    assert report["questions"] == 5 and report["turns"] == 7 and report["unanswerable_skipped"] == 1
    # 25 hits cover every turn of these conversations: recall@25 must be exactly 1 wherever ids map back
    assert report["recall"]["all"]["25"] == 1.0
    assert report["baselines"]["dense"]["recall"]["all"]["25"] == 1.0
    assert set(report["recall"]) == {"all", "1-4", "single-hop", "multi-hop", "temporal", "adversarial"}
    assert 0.0 <= report["baselines"]["lexical"]["recall"]["all"]["1"] <= 1.0
    assert report["latency_ms"]["p50"] > 0 and report["ingest_s"] > 0
    assert set(report["ablation"]) >= {"full (defaults)", "- context windows", "- graph"}
    # "What is the rabbit called?" shares "rabbit" with D2:1's window: lexical evidence ranks it first
    assert report["recall"]["adversarial"]["1"] == 1.0


def test_bench_command_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="--data"):
        load(tmp_path / "absent.json")
    _load_plugin_commands()
    result = CliRunner().invoke(cli, ["bench", "locomo", "--data", str(tmp_path / "absent.json")])
    assert result.exit_code == 1 and "--data" in result.output
