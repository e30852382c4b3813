"""Hostile and bad input, property-based: every public call and every CLI command either works or
raises a typed ``agentmem.errors`` exception (the CLI: exit 1 with one ``error:`` line, or click's
usage error 2), and nothing already stored is lost or altered. Strings that look like SQL or paths
go everywhere a string goes (texts, scopes, metadata, entity and weight names)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentmem
from agentmem import errors
from tests.conftest import LONG

EXAMPLES = 1000 if LONG else 80
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
DIM = 256  # the hash embedder's

HOSTILE = ["'; DROP TABLE items; --", "\" OR 1=1 --", "../../../etc/passwd", "/etc/passwd", "C:\\Windows\\x",
           "a/../../b", "%s%n%x", "NEAR(a b)", "text:*", "\"unbalanced", "items_fts", "*", "?", "#",
           "\u202e\u0647\u200d", "💥" * 50, "\ud800", "a\x00b", "", " ", "\n\t", "x" * 300]
hostile = st.sampled_from(HOSTILE)
texts = st.one_of(hostile, st.text(max_size=300), st.text(st.characters(codec="utf-8"), max_size=50),
                  st.integers(1, 4000).map(lambda n: "word " * n))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                                     hostile),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=8)
odd_values = st.one_of(st.binary(max_size=5), st.sets(st.integers(), max_size=2), st.just(object()),
                       st.just(datetime(2020, 1, 1)), st.just(float("nan")), st.just(2**70))
metadatas = st.one_of(st.none(), st.dictionaries(st.one_of(st.text(max_size=10), hostile), json_values, max_size=4),
                      st.dictionaries(st.text(max_size=5), odd_values, min_size=1, max_size=2),
                      st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
                      st.lists(st.integers(), max_size=2), st.text(max_size=5))
scope_keys = st.one_of(st.sampled_from(["user", "agent", "session"]), hostile, st.text(max_size=5))
scopes = st.one_of(st.none(), st.dictionaries(scope_keys, st.one_of(hostile, st.text(max_size=300), st.integers(),
                                                                     st.none()), max_size=3),
                   st.dictionaries(st.sampled_from(["user", "agent", "session"]), hostile, max_size=3),
                   st.sampled_from(["user", ["user"], 1]))
finite = st.floats(-1e30, 1e30, allow_nan=False)
vectors = st.one_of(st.none(),
                    st.lists(finite, min_size=DIM, max_size=DIM).map(np.array),
                    st.sampled_from([np.full(DIM, np.nan), np.full(DIM, np.inf), np.zeros(DIM), np.full(DIM, 1e38),
                                     np.full(DIM, 1e-42), np.ones(DIM + 1), np.ones(3), np.ones((2, DIM)), "vec"]))
times = st.one_of(st.none(), st.floats(), st.integers(-2**70, 2**70), st.datetimes(), hostile,
                  st.sampled_from(["2023-05-07", "2023-05-07T13:56:00+02:00", "yesterday"]))
ks = st.one_of(st.integers(-5, 20), st.sampled_from([0, 10_000, 10_001, 2**63, -2**70, 1.5, "3", None, True]))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[agentmem.Memory, dict[int, Any]]]:
    """One memory for every example, with canaries whose survival is checked after each call."""
    root = tmp_path_factory.mktemp("fuzz")
    mem = agentmem.Memory(root / "mem", embedder="hash", stm_items=32)
    stored: dict[int, Any] = {}
    for n in range(10):
        scope = {"user": f"canary{n % 3}"}
        stored[mem.remember(f"canary number {n} sings", metadata={"n": n}, scope=scope)] = (
            f"canary number {n} sings", {"n": n}, scope)
    yield mem, stored
    mem.close()
    assert sorted(p.name for p in root.iterdir()) == ["mem"], "something was written outside the memory"


def intact(mem: agentmem.Memory, stored: dict[int, Any]) -> None:
    """Everything acknowledged so far reads back exactly by its id, merged into another item or not."""
    for i, (text, meta, scope) in stored.items():
        item = mem.get(i)
        assert item.id == i and item.text == text and item.scope == scope and item.metadata == meta


def expect_typed(call: Any) -> Any:
    """Run ``call``; an exception must be one of ours. Returns the result or None."""
    try:
        return call()
    except errors.AgentMemError:
        return None


@SETTINGS
@given(text=texts, meta=metadatas, scope=scopes, when=times, vec=vectors)
def test_remember_anything(fuzzed: Any, text: Any, meta: Any, scope: Any, when: Any, vec: Any) -> None:
    mem, stored = fuzzed
    before = len(mem)
    i = expect_typed(lambda: mem.remember(text, metadata=meta, scope=scope, time=when, embedding=vec))
    if i is None:
        assert len(mem) == before, "a rejected call stored something"
    else:
        assert isinstance(text, str) and text.strip()
        stored[i] = (text, json.loads(json.dumps(meta or {})), dict(scope or {}))
        item = mem.get(i)
        assert item.text == text and item.metadata == stored[i][1] and item.scope == stored[i][2]
        if vec is not None:
            cached = mem.journal.vectors([item.merged_into or i])[1][0]  # a merged item's vector is its group's
            assert np.isfinite(cached).all() and math.isclose(float(np.linalg.norm(cached)), 1.0, rel_tol=1e-4)
    intact(mem, stored)


@SETTINGS
@given(query=texts, k=ks, scope=scopes, filters=st.one_of(metadatas, st.dictionaries(hostile, json_values)),
       since=times, until=times, vec=vectors)
def test_recall_anything(fuzzed: Any, query: Any, k: Any, scope: Any, filters: Any, since: Any, until: Any,
                         vec: Any) -> None:
    mem, stored = fuzzed
    hits = expect_typed(lambda: mem.recall(query, k=k, scope=scope, filters=filters, since=since, until=until,
                                           embedding=vec))
    if hits is not None:
        assert len(hits) <= k
        assert all(all(h.scope.get(key) == v for key, v in (scope or {}).items()) for h in hits)
    canary = next(iter(stored))
    assert canary in [h.id for h in mem.recall("canary number 0 sings", k=5, scope={"user": "canary0"})]
    intact(mem, stored)


ids = st.one_of(st.integers(-2**70, 2**70), st.integers(-3, 3), st.sampled_from([None, "1", 1.0, True, [1]]),
                st.integers(0, 10).map(np.int64))


@SETTINGS
@given(item=ids)
def test_get_and_forget_any_id(fuzzed: Any, item: Any) -> None:
    mem, stored = fuzzed
    got = expect_typed(lambda: mem.get(item))
    is_id = isinstance(item, int | np.integer) and not isinstance(item, bool)
    assert got is None or is_id
    if is_id and int(item) in stored:
        assert got is not None
    elif got is None and is_id:
        victim = expect_typed(lambda: mem.forget(item))
        assert victim is None  # forgetting what is not there is a NotFoundError, nothing else
    intact(mem, stored)


names = st.one_of(hostile, st.text(max_size=40), st.integers(), st.none(), st.just("x" * 600))


@SETTINGS
@given(s=names, r=names, o=names, item=st.one_of(st.none(), ids), scope=scopes, depth=st.one_of(st.integers(-2, 5),
                                                                                                  st.just("2")))
def test_graph_anything(fuzzed: Any, s: Any, r: Any, o: Any, item: Any, scope: Any, depth: Any) -> None:
    mem, stored = fuzzed
    fact = expect_typed(lambda: mem.graph.add_fact(s, r, o, item=item, scope=scope))
    if fact is not None:
        assert fact in mem.graph.facts(fact.subject)
        assert (fact.subject, fact.relation, fact.object) == (s.strip(), r.strip(), o.strip())
    expect_typed(lambda: mem.graph.facts(s, scope=scope))
    expect_typed(lambda: mem.graph.neighbours(s, depth=depth, scope=scope))
    expect_typed(lambda: mem.graph.path(s, o, scope=scope))
    expect_typed(lambda: mem.recall(f"{s} {o}", k=3, scope=scope))
    intact(mem, stored)


states = st.one_of(st.dictionaries(st.text(max_size=10), st.sampled_from(
    [np.zeros(3, np.float32), np.arange(4), np.array([True]), np.zeros((2, 2), ">f4"), "text", None,
     np.array(["a"]), np.array([object()]), [1, 2], 3.5]), max_size=3),
    st.sampled_from([None, [], {1: np.zeros(2)}, "state"]))


@SETTINGS
@given(name=names, state=states, meta=metadatas)
def test_weights_anything(fuzzed: Any, name: Any, state: Any, meta: Any) -> None:
    mem, stored = fuzzed
    v = expect_typed(lambda: mem.weights.save(name, state, metadata=meta))
    if v is not None:
        loaded = mem.weights.load(name, version=v, framework="np")
        assert set(loaded) == set(state)
        for key, value in state.items():
            assert np.array_equal(loaded[key], np.asarray(value))
    expect_typed(lambda: mem.weights.load(name))
    expect_typed(lambda: mem.weights.versions(name))
    weights = mem.path / "weights"
    if weights.exists():  # every file sits at weights/<valid name>/v<n>.safetensors: no traversal
        for p in weights.rglob("*"):
            assert p.resolve().is_relative_to(weights.resolve())
            assert p.is_dir() or (p.parent.parent == weights and p.name.startswith("v"))
    intact(mem, stored)


# --- the command line ----------------------------------------------------------------------------

cli_args = st.one_of(hostile, st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30),
                     st.sampled_from(["-1", "0", "1e309", "nan", "²", "١٢٣", "--json", "-k", "{}", "[]", "{\"a\":"]))


@settings(SETTINGS, max_examples=500 if LONG else 50)
@given(command=st.sampled_from(["remember", "recall", "forget", "stats", "consolidate", "doctor"]),
       args=st.lists(cli_args, max_size=3),
       opts=st.lists(st.tuples(st.sampled_from(["--user", "--session", "--metadata", "--time", "-k", "--filter",
                                                "--since"]), cli_args), max_size=3))
def test_cli_anything(tmp_path_factory: pytest.TempPathFactory, command: str, args: list[str],
                      opts: list[tuple[str, str]]) -> None:
    from click.testing import CliRunner

    from agentmem.cli import _load_plugin_commands, cli

    _load_plugin_commands()
    path = tmp_path_factory.getbasetemp() / "cli-fuzz"
    runner = CliRunner()
    if not path.exists():
        with agentmem.Memory(path, embedder="hash") as mem:  # the CLI opens it with the embedder it was built with
            mem.remember("the canary of the command line")
    argv = [command, *( [str(path)] if command == "doctor" else ["--path", str(path)]), *args]
    for opt, value in opts:
        argv += [opt, value]
    result = runner.invoke(cli, argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, result.exception)
    assert result.exit_code in (0, 1, 2), (argv, result.output)
    if result.exit_code == 1 and command != "doctor":
        assert result.stderr.startswith("error: "), (argv, result.stderr)
    hits = runner.invoke(cli, ["recall", "--path", str(path), "canary of the command line", "--json"])
    assert hits.exit_code == 0 and any("canary" in h["text"] for h in json.loads(hits.stdout))


# --- boundaries, one by one ----------------------------------------------------------------------


def test_text_size_limit(hmem: agentmem.Memory) -> None:
    from agentmem.validate import MAX_TEXT

    long = "alpha" + " " * (MAX_TEXT - 10) + "omega"
    i = hmem.remember(long)
    assert hmem.get(i).text == long and hmem.recall("omega", k=1)[0].id == i
    with pytest.raises(errors.InvalidInputError, match="split it"):
        hmem.remember(long + "!" * 10)


def test_deep_and_big_metadata(hmem: agentmem.Memory) -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = {"a": deep}
    with pytest.raises(errors.InvalidInputError):
        hmem.remember("deep", metadata=deep)
    i = hmem.remember("big ints", metadata={"n": 2**70, "s": "'; DROP TABLE items; --"})
    assert hmem.get(i).metadata == {"n": 2**70, "s": "'; DROP TABLE items; --"}
    with pytest.raises(errors.InvalidInputError, match="64-bit"):
        hmem.recall("big", filters={"n": 2**70})
    assert hmem.recall("big ints", filters={"s": "'; DROP TABLE items; --"})[0].id == i


def test_extreme_vectors_are_normalised_not_zeroed(hmem: agentmem.Memory) -> None:
    for scale in (1e38, 1e-42):
        v = np.zeros(DIM, np.float32)
        v[:2] = scale
        i = hmem.remember(f"scaled by {scale}", embedding=v)
        stored = hmem.journal.vectors([i])[1][0]
        assert np.allclose(stored[:2], 2 ** -0.5) and not stored[2:].any()


def test_remember_many_rejects_a_bare_string(hmem: agentmem.Memory) -> None:
    with pytest.raises(errors.InvalidInputError, match="list of strings"):
        hmem.remember_many("abc")
    assert len(hmem) == 0


@pytest.mark.parametrize("name", ["mem?mode=memory", "mem#frag", "mem%3Fx", "mem with spaces", "mém"])
def test_odd_memory_paths_stay_inside_the_directory(tmp_path: Path, name: str) -> None:
    with agentmem.Memory(tmp_path / name, embedder="hash") as mem:
        i = mem.remember("stored where asked")
    assert (tmp_path / name / "journal.sqlite3").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    with agentmem.Memory(tmp_path / name, embedder="hash") as mem:
        assert mem.get(i).text == "stored where asked"


NASTY = [["remember", "x", "--time", "²"], ["remember", "x", "--time", "1e309"], ["remember", "x", "--time", "-5"],
         ["remember", "x", "--metadata", "{"], ["remember", "x", "--metadata", "[1]"],
         ["remember", "x", "--metadata", '{"a": NaN}'], ["remember", "x", "--user", ""], ["remember", "\ud800"],
         ["recall", "x", "-k", "0"], ["recall", "x", "-k", "99999999999999999999"], ["recall", "x", "--filter", "a"],
         ["recall", "x", "--filter", "a b=1"], ["recall", "x", "--filter", "n=99999999999999999999"],
         ["recall", "x", "--since", "not a date"], ["forget", "99999999999999999999"], ["forget", "--", "-5"]]


@pytest.mark.parametrize("argv", NASTY, ids=[" ".join(a) for a in NASTY])
def test_cli_known_nasty_input(tmp_path: Path, argv: list[str]) -> None:
    from click.testing import CliRunner

    from agentmem.cli import cli

    path = str(tmp_path / "m")
    with agentmem.Memory(path, embedder="hash") as mem:  # the CLI opens it with the embedder it was built with
        mem.remember("kept safe")
    runner = CliRunner()
    result = runner.invoke(cli, [argv[0], "--path", path, *argv[1:]])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, (result.exception, result.output)
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "kept safe" in runner.invoke(cli, ["recall", "--path", path, "kept safe"]).stdout


@pytest.mark.parametrize("argv", [["stats", "--path", "{missing}"], ["recall", "x", "--path", "{missing}"],
                                  ["doctor", "{file}"], ["remember", "x", "--path", "{file}"]])
def test_cli_bad_paths(tmp_path: Path, argv: list[str]) -> None:
    from click.testing import CliRunner

    from agentmem.cli import _load_plugin_commands, cli

    _load_plugin_commands()
    (tmp_path / "f").write_text("a file")
    argv = [a.format(missing=tmp_path / "missing", file=tmp_path / "f") for a in argv]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit), result.output
    assert not (tmp_path / "missing").exists()
