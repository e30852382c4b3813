"""Recall: gather scored evidence for a query, fuse it, and pick the hits.

Evidence lists, each over the items of the query's scope:
- ``vector``: cosine of the query embedding with long-term vectors and short-term (STM) items;
- ``context``: BM25 over each item's context window (its text and its neighbours', see
  :mod:`agentmem.ltm.windows`), so a reply is found by the words of the question it answers;
- ``lexical``: BM25 over the item's own text;
- ``grams``: BM25 over the character pairs of Chinese, Japanese and Korean text and over emoji
  (:mod:`agentmem.grams`), when the query has any;
- one list per ``recall_candidates`` plugin (ids only, e.g. the knowledge graph's entity lookup).

Fusion standardises each scored list against the scope's *whole* score distribution — z = (s - mean)
/ std, items a lexical list did not match scoring 0 — and sums the z-scores with the weights in
:class:`agentmem.Config`. Unlike reciprocal-rank fusion this keeps how far ahead a hit is, which on
LoCoMo lifted recall@10 from 0.66 to 0.80 with the same lists. Then: a date or period named in the
query boosts items whose event time is in it (:mod:`agentmem.timeexpr`); items that share a rare
entity with the best hits gain (graph expansion, :mod:`agentmem.default_plugins.graph_recall`); and
maximal marginal relevance can diversify the final list (``Config.diversity``). An item that states
exactly the query (the same :func:`agentmem.statement.normal_form`) gains ``Config.exact_boost``, which
puts it first.

The dense score of a long text is the best cosine of its own vector and its passages'
(:mod:`agentmem.ltm.passages`). The fused score only ranks; :attr:`Query.cosines` keeps each
candidate's cosine, and :func:`matched` says how many of the query's words a text has: what a hit
reports for a caller to threshold on.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from agentmem import scope as scopes
from agentmem import timeexpr
from agentmem.grams import gram_text, grams, has_grams
from agentmem.lexicon import Stats, default_terms
from agentmem.ltm.journal import query_words
from agentmem.types import Item

if TYPE_CHECKING:
    from agentmem.memory import Memory

DIRECT = frozenset({"vector", "lexical", "context", "grams", "time", "exact"})  # evidence that found an item itself
LEXICAL_DEPTH = 1000  # BM25 matches read per list: all of them in a conversation-sized scope
STATS_SAMPLE = 2048  # vectors sampled to estimate the dense score distribution of a large scope
# Words that carry no topic; dropped from lexical queries (unless nothing else is left).
STOPWORDS = frozenset({
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could",
    "did", "do", "does", "doing", "done", "during", "each", "few", "for", "from", "further", "had", "has",
    "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if",
    "in", "into", "is", "it", "its", "itself", "just", "me", "might", "more", "most", "my", "myself", "no",
    "nor", "not", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out",
    "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs",
    "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who",
    "whom", "whose", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
    "ever", "also"
})


@dataclass
class Evidence:
    """One scored list. ``scores`` holds raw scores of the ids it returned; ``floor`` is assumed for
    any other id of the scope; ``mean``/``std`` describe the scope's whole distribution."""

    name: str
    weight: float
    scores: dict[int, float]
    mean: float = 0.0
    std: float = 1.0
    floor: float = 0.0
    ordered: bool = False  # ``scores`` was filled best first (its insertion order is the ranking)

    def z(self, item_id: int) -> float:
        return (self.scores.get(item_id, self.floor) - self.mean) / self.std

    def top(self, n: int) -> list[int]:
        if self.ordered:
            return list(itertools.islice(self.scores, n))
        return heapq.nlargest(n, self.scores, key=self.scores.__getitem__)


@dataclass
class Query:
    """Everything one recall needs, resolved once."""

    memory: Memory
    text: str
    vec: np.ndarray  # (dim,) unit query embedding
    k: int
    scope: dict[str, str]
    filters: dict[str, Any] | None
    since: float | None
    until: float | None
    allowed: np.ndarray | None = None  # ids passing filters/time bounds (None: no such restriction)
    allowed_set: set[int] = field(default_factory=set)
    width: int = 0  # context window width of this memory
    mask: np.ndarray | None = None  # vector-index rows in scope and allowed
    keep: Callable[[Item], bool] = field(default=lambda item: True)
    stm_scores: dict[int, float] = field(default_factory=dict)  # cosine of every STM item in scope
    top_id: int = 0  # the highest item id (document frequencies are cached relative to it)
    cosines: dict[int, float] = field(default_factory=dict)  # candidate -> its (best passage) cosine


def lexical_text(query: str) -> str:
    """The query's words without stopwords (all of them if only stopwords are left)."""
    words = query_words(query)
    content = [w for w in words if w not in STOPWORDS]
    return " ".join(content or words)


def search(q: Query) -> list[tuple[int, float, set[str]]]:
    """Fused recall: every candidate as (id, score, names of the evidence that found it), best first.
    Ids from plugins may lie outside the scope: the caller checks each item it keeps (``q.keep``)."""
    cfg, mem = q.memory.config, q.memory
    n = max(cfg.candidates, 2 * q.k)
    # Time bounds need no id list: the vector cache, the passages and the full-text queries bound
    # item times themselves, and every hit is checked (q.keep); listing the ids of a time window read
    # every row of the scope. A metadata filter first checks the scope's best vector matches
    # (_probe); only a filter too selective for them lists the ids it allows, through its value index.
    q.allowed, probe = None, None
    if q.filters:
        probe = _probe(q, n)
        if probe is None:
            q.allowed = mem.journal.filter_ids(q.scope, q.filters, q.since, q.until)
    q.allowed_set = set() if q.allowed is None else set(q.allowed.tolist())
    q.width = mem.journal.window_width()
    q.top_id = mem.journal.max_item_id()
    q.keep = item_matcher(q.scope, q.filters, q.since, q.until)
    q.mask = mem.vector.mask(q.scope, q.allowed, q.since, q.until)
    q.stm_scores = dict(mem.stm.search(q.vec, len(mem.stm), q.keep))
    lists = [_dense(q, n, probe)]
    words = lexical_text(q.text)
    for name, weight, in_windows in (("lexical", cfg.weight_lexical, False),
                                     ("context", cfg.weight_context, True)):
        if weight > 0:
            lists.append(_lexical(q, name, weight, words, in_windows))
    query_grams = gram_text(q.text)
    if query_grams and cfg.weight_grams > 0:
        lists.append(_lexical(q, "grams", cfg.weight_grams, query_grams, False))
    ranked = _plugin_lists(q, n)
    origin: dict[int, set[str]] = {}  # candidate -> lists ranking it in their first k, above average
    for ev in lists:
        for rank, i in enumerate(ev.top(n)):
            names = origin.setdefault(i, set())
            if rank < q.k and ev.z(i) > 0:
                names.add(ev.name)
    for name, ids in ranked:
        for i in ids:
            origin.setdefault(i, set()).add(name)
    in_time = _time_window(q, n, words, origin) if cfg.time_boost > 0 else None
    _fill_dense(q, lists[0], origin)
    scores = _Fuser(lists, ranked, cfg.rrf_k, cfg.weight_graph).many(list(origin))
    if in_time is not None:
        for i in scores:
            if i in in_time:
                scores[i] += cfg.time_boost
    if cfg.graph_boost > 0:
        _graph(q, lists, ranked, scores, origin, in_time)
    if cfg.exact_boost > 0:
        _exact(q, lists, ranked, scores, origin, in_time)
    q.cosines = lists[0].scores
    order = sorted(scores, key=lambda i: (-scores[i], i))
    if cfg.diversity > 0:
        order = mmr(order[: max(3 * q.k, 50)], scores, _vectors(q.memory, order[: max(3 * q.k, 50)]),
                    cfg.diversity, q.k)
    return [(i, scores[i], origin[i]) for i in order]


class _Fuser:
    """``fuse(i)``: the weighted sum of item i's z-scores plus the plugins' reciprocal-rank terms,
    with each list's constants folded once; ``fuse.many(ids)`` the same for many ids at once, as
    {id: score}, with the same operations in the same order (so the same floats): the lookups run
    in C (``map``) and the sums in numpy. Recall fuses a hundred or more candidates; one at a time
    they took ~0.13 ms of a 10k-item recall under cProfile."""

    def __init__(self, lists: list[Evidence], ranked: list[tuple[str, list[int]]], rrf_k: int,
                 w_plugin: float) -> None:
        self.terms = [(ev.scores, ev.floor, ev.mean, ev.weight / ev.std) for ev in lists if ev.weight]
        self.bonus: dict[int, float] = {}
        for _, ids in ranked:
            seen: set[int] = set()
            for rank, j in enumerate(ids):
                if j not in seen:  # an id's first rank in each list counts
                    seen.add(j)
                    self.bonus[j] = self.bonus.get(j, 0.0) + w_plugin * rrf_k / (rrf_k + rank)

    def __call__(self, i: int) -> float:
        total = self.bonus.get(i, 0.0)
        for values, floor, mean, scale in self.terms:
            total += scale * (values.get(i, floor) - mean)
        return total

    def many(self, ids: list[int]) -> dict[int, float]:
        n = len(ids)
        total = np.fromiter(map(self.bonus.get, ids, itertools.repeat(0.0, n)), dtype=np.float64, count=n)
        for values, floor, mean, scale in self.terms:
            total += scale * (np.fromiter(map(values.get, ids, itertools.repeat(floor, n)), dtype=np.float64,
                                          count=n) - mean)
        return dict(zip(ids, total.tolist(), strict=True))


PROBE = (5 / 4, 4)  # a filter is checked on these many times the candidates a list takes, in turn


def _probe(q: Query, n: int) -> list[tuple[int, float]] | None:
    """The scope's best vector matches that pass ``q.filters``, best first, when they answer the dense
    list exactly: at least ``n`` of the first ``PROBE[j] * n`` pass, or those were every item of the
    scope. None when the filter is too selective for them (the caller then lists the ids it allows).
    A broad filter is answered by the first, small probe; a middling one by the second. Checking a
    few dozen rows costs less than the lexical lists do; listing the ids a 99% filter allows read
    every row of the scope (133 ms per recall at 100k items in one scope)."""
    mem = q.memory
    mask = mem.vector.mask(q.scope, None, q.since, q.until)
    in_scope = len(mem.vector) if mask is None else int(np.count_nonzero(mask))
    for factor in PROBE:
        wanted = int(factor * n)
        found = mem.vector.search(q.vec, wanted, mask)
        passing = mem.journal.passing([i for i, _ in found], q.filters or {})
        kept = [(i, s) for i, s in found if i in passing]
        if len(kept) >= n or in_scope <= wanted:  # enough, or every row of the scope seen
            return kept
        if len(kept) * PROBE[-1] < len(found):  # at this rate the last probe would not find n
            return None
    return None


def _dense(q: Query, n: int, probe: list[tuple[int, float]] | None = None) -> Evidence:
    """Cosine evidence from the vector cache and STM (``probe``: the vector matches, already found
    by :func:`_probe`); stats from a sample of the whole scope."""
    mem = q.memory
    # the scope alone names its mask: the vector cache may then reuse the sample of a large scope
    key = None if q.allowed is not None or q.since is not None or q.until is not None else scopes.name(q.scope)
    if probe is None:
        found, ltm_sample = mem.vector.search_and_sample(q.vec, n, q.mask, STATS_SAMPLE, key)
    else:
        found, ltm_sample = probe[:n], mem.vector.sample_scores(q.vec, q.mask, STATS_SAMPLE, key)
    hits = dict(found)
    hits.update(sorted(q.stm_scores.items(), key=lambda x: -x[1])[:n])
    if len(mem.passages):
        for i, s in mem.passages.search(q.vec, n, q.scope, q.allowed, q.since, q.until).items():
            if i not in hits:  # its own cosine first: a passage counts if it is better
                hits[i] = q.stm_scores[i] if i in q.stm_scores else float(mem.vector.scores_of([i], q.vec)[0])
            hits[i] = max(hits[i], s)
    sample = np.concatenate([ltm_sample, np.fromiter(q.stm_scores.values(), dtype=np.float32)])
    mean, std = (float(sample.mean()), float(sample.std())) if len(sample) else (0.0, 1.0)
    return Evidence("vector", mem.config.weight_vector, hits, mean, max(std, 1e-6), mean)


def _scope_size(q: Query) -> int:
    ltm = len(q.memory.vector) if q.mask is None else int(np.count_nonzero(q.mask))
    return max(1, ltm + len(q.stm_scores))


def _lexical(q: Query, name: str, weight: float, words: str, in_windows: bool,
             since: float | None = None, until: float | None = None) -> Evidence:
    """BM25 evidence; the scope's distribution counts every unmatched item as scoring 0."""
    mem = q.memory
    budget = mem.config.lexical_budget
    if in_windows:  # a window holds about (2w + 1) items' words: keep the same cost bound
        budget = max(1, budget // (2 * q.width + 1))
    since = q.since if since is None else since
    until = q.until if until is None else until
    table = "grams_fts" if name == "grams" else "windows_fts" if in_windows else "items_fts"
    chosen = mem.journal.budget_words(query_words(words), budget, q.top_id) if table != "grams_fts" else \
        query_words(words)  # character pairs are rare: no budget
    rows = mem.journal.lexical(chosen, LEXICAL_DEPTH, q.scope, q.filters, since, until, table=table)
    rows = _with_stm(q, rows, chosen, table, since, until)
    scores = dict(rows) if q.allowed is None else {i: s for i, s in rows if i in q.allowed_set}
    total = _scope_size(q)
    s = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    mean = float(s.sum()) / total
    std = math.sqrt(max(float((s * s).sum()) / total - mean * mean, 0.0))
    floor = float(s.min()) if len(rows) >= LEXICAL_DEPTH else 0.0
    # FTS5 clamps a term's IDF to 1e-6 when half the index or more has it (scores ~1e-6 in a small
    # scope): the floor only keeps a list whose scores are all equal from dividing by zero
    return Evidence(name, weight, scores, mean, max(std, 1e-12), floor, ordered=True)  # rows come best first


def _with_stm(q: Query, rows: list[tuple[int, float]], words: list[str], table: str,
              since: float | None, until: float | None) -> list[tuple[int, float]]:
    """``rows`` (the full-text index's matches, best first) merged with the STM items' BM25 scores
    (:mod:`agentmem.lexicon`: STM items are indexed only when consolidated), best first."""
    mem = q.memory
    in_windows = table == "windows_fts"
    lexicon = mem.stm.grams if table == "grams_fts" else mem.stm.lexicon
    if lexicon is None or not len(lexicon) or not words or (in_windows and q.width <= 0):
        return rows
    journal = mem.journal
    n_rows, tokens = journal.fts_stats(table)
    stats = Stats(n_rows, tokens, lambda w: journal.doc_freq(w, q.top_id, table))

    def keep(item_id: int) -> bool:
        entry = mem.stm.get(item_id)
        if entry is None or not q.keep(entry.item):
            return False
        t = entry.item.created_at if entry.item.event_time is None else entry.item.event_time
        return not ((since is not None and t < since) or (until is not None and t > until))

    if in_windows:
        found = lexicon.scores(words, stats, keep, q.width, lambda key: journal.ltm_tail(key, q.width),
                               lambda key: scopes.contains_key(q.scope, key))
    else:
        found = lexicon.scores(words, stats, keep)
    if not found:
        return rows
    indexed = {i for i, _ in rows}  # a reader's STM may hold items the writer has consolidated since
    merged = rows + [(i, s) for i, s in found if i not in indexed]
    merged.sort(key=lambda x: -x[1])
    return merged[:LEXICAL_DEPTH]


def _plugin_lists(q: Query, n: int) -> list[tuple[str, list[int]]]:
    """Ranked id lists from ``recall_candidates`` plugins, outside-scope ids dropped later."""
    from agentmem.plugins import hook

    out = []
    for impl in hook().recall_candidates.get_hookimpls():
        ids = impl.function(memory=q.memory, query=q.text, scope=dict(q.scope), k=n) or []
        if q.allowed is not None:
            ids = [i for i in ids if i in q.allowed_set]
        out.append((impl.plugin_name, [int(i) for i in ids][:n]))
    return out


class TimeSpan:
    """Membership in a time span (``id in span``), read from the vector cache's item times and the
    short-term items, so a span covering most of a large memory costs no id list."""

    def __init__(self, memory: Memory, lo: float, hi: float) -> None:
        self.memory, self.lo, self.hi = memory, lo, hi
        self.stm_times = {e.item.id: (e.item.created_at if e.item.event_time is None else e.item.event_time)
                          for e in memory.stm.entries()}

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, int | np.integer):
            return False
        i = int(item_id)
        if i in self.memory.vector:
            t = self.memory.vector.time_of(i)
        elif i in self.stm_times:
            t = self.stm_times[i]
        else:
            return False
        return self.lo <= t <= self.hi


def _time_window(q: Query, n: int, words: str, origin: dict[int, set[str]]) -> TimeSpan | None:
    """The span of time the query names (with slack), if any; the best items in scope whose event
    time lies in it, by dense and windowed-lexical evidence, join the candidates."""
    cfg = q.memory.config
    span = timeexpr.parse(q.text, time.time())
    if span is None:
        return None
    slack = cfg.time_slack_days * 86400.0
    lo = span[0] - slack if q.since is None else max(q.since, span[0] - slack)
    hi = span[1] + slack if q.until is None else min(q.until, span[1] + slack)
    inside = TimeSpan(q.memory, lo, hi)
    mask = q.memory.vector.mask(q.scope, q.allowed, lo, hi)
    found = [i for i, _ in q.memory.vector.search(q.vec, n, mask)] if mask is None or mask.any() else []
    found += [i for i in q.stm_scores if i in inside][:n]
    if q.width > 0 and cfg.weight_context > 0:
        found += _lexical(q, "time", 0.0, words, True, lo, hi).top(n)
    for i in found:
        origin.setdefault(i, set()).add("time")
    return inside


def _vectors(memory: Memory, ids: list[int]) -> np.ndarray:
    """Embeddings of ``ids`` from the vector cache or STM, shape (len(ids), dim); zeros if neither."""
    out = np.zeros((len(ids), memory.dim), dtype=np.float32)
    cached = [j for j, i in enumerate(ids) if i in memory.vector]
    if cached:
        out[cached] = memory.vector.vectors_of([ids[j] for j in cached])
    rest = [j for j, i in enumerate(ids) if i not in memory.vector and i in memory.stm]
    if rest:
        rows = {e.item.id: r for r, e in enumerate(memory.stm.entries())}
        out[rest] = memory.stm.embeddings()[[rows[ids[j]] for j in rest]]
    return out


def _fill_dense(q: Query, dense: Evidence, ids: Iterable[int]) -> None:
    """Exact cosines for candidates the dense list did not return itself."""
    scores, stm = dense.scores, q.stm_scores
    missing = [i for i in ids if i not in scores]
    if not missing:
        return
    ltm = [i for i in missing if i not in stm]  # STM items in scope: their cosines are at hand
    scores.update((i, stm[i]) for i in missing if i in stm)
    if ltm:
        scores.update(zip(ltm, q.memory.vector.scores_of(ltm, q.vec).tolist(), strict=True))
    if len(q.memory.passages):
        for i, s in q.memory.passages.best_of(missing, q.vec).items():
            scores[i] = max(scores[i], s)


def _graph(q: Query, lists: list[Evidence], ranked: list[tuple[str, list[int]]], scores: dict[int, float],
           origin: dict[int, set[str]], in_time: TimeSpan | None) -> None:
    """Graph expansion: items sharing a rare entity with the best hits gain ``graph_boost``."""
    from agentmem.default_plugins.graph_recall import expand

    cfg = q.memory.config
    seeds = sorted(scores, key=lambda i: -scores[i])[: cfg.graph_seeds]
    gains = expand(q.memory, seeds, q.scope, cfg.graph_max_df)
    gains = {i: g for i, g in gains.items() if q.allowed is None or i in q.allowed_set}
    new = [i for i in gains if i not in scores]
    for i in new:
        origin.setdefault(i, set()).add("graph")
    _fill_dense(q, lists[0], new)
    fuse = _Fuser(lists, ranked, cfg.rrf_k, cfg.weight_graph)
    for i in new:
        scores[i] = fuse(i) + (cfg.time_boost if in_time is not None and i in in_time else 0.0)
    for i, gain in gains.items():
        scores[i] += cfg.graph_boost * gain


def _exact(q: Query, lists: list[Evidence], ranked: list[tuple[str, list[int]]], scores: dict[int, float],
           origin: dict[int, set[str]], in_time: TimeSpan | None) -> None:
    """Items of the scope stating exactly the query gain ``exact_boost`` (joining the candidates if
    they were not among them): one indexed lookup of the query's statement hash (8 bytes of SHA-256:
    the texts are not compared, a collision within one scope being as good as impossible)."""
    cfg, journal = q.memory.config, q.memory.journal
    ids = [i for i in journal.same_statement(q.text, q.scope, q.since, q.until, q.filters)
           if q.allowed is None or i in q.allowed_set]
    if not ids:
        return
    new = [i for i in ids if i not in scores]
    if new:
        _fill_dense(q, lists[0], new)
        fuse = _Fuser(lists, ranked, cfg.rrf_k, cfg.weight_graph)
        for i in new:
            scores[i] = fuse(i) + (cfg.time_boost if in_time is not None and i in in_time else 0.0)
    for i in ids:
        scores[i] += cfg.exact_boost
        origin.setdefault(i, set()).add("exact")


@dataclass(frozen=True)
class QueryTerms:
    """What :func:`matched` looks for: the index terms of each content word of a query (as the
    full-text tokenizer makes them; a word may give several) and its gram terms."""

    words: list[tuple[str, ...]]
    grams: list[str]

    def __len__(self) -> int:
        return len(self.words) + len(self.grams)


def query_terms(query: str) -> QueryTerms:
    # a word with gram terms (Chinese, Japanese, Korean) is looked for by its grams: the word
    # tokenizer makes one term of a whole run, which a text contains only as the same whole run
    words = list(dict.fromkeys(w for w in lexical_text(query).split() if w and not has_grams(w)))
    terms = [t for t in default_terms().of_words(words) if t]
    return QueryTerms(terms, list(dict.fromkeys(grams(query))))


_TEXT_WORD = re.compile(r"\w+")
TEXT_TERMS_CACHED = 8192  # texts whose term sets :func:`matched` keeps (a scope's hits recur across recalls)
_text_terms: dict[str, frozenset[str]] = {}


def text_terms(text: str) -> frozenset[str]:
    """Every full-text index term of ``text``'s words, cached by text (cleared when full): recalls in
    one scope return the same items again and again, and reading a text's terms was a tenth of a
    LoCoMo recall (25 hits)."""
    have = _text_terms.get(text)
    if have is None:
        if len(_text_terms) >= TEXT_TERMS_CACHED:
            _text_terms.clear()
        have = _text_terms[text] = frozenset(default_terms().term_set(set(_TEXT_WORD.findall(text.lower()))))
    return have


def matched(terms: QueryTerms, text: str) -> float:
    """The share of the query's ``terms`` that ``text`` contains, in [0, 1]."""
    total = len(terms)
    if not total:
        return 0.0
    found = 0
    if terms.words:
        have = text_terms(text)
        found += sum(all(x in have for x in t) for t in terms.words)
    if terms.grams:
        text_grams = set(grams(text))
        found += sum(g in text_grams for g in terms.grams)
    return found / total


def mmr(order: list[int], scores: Mapping[int, float], vecs: np.ndarray, diversity: float, k: int) -> list[int]:
    """Maximal marginal relevance: greedily take the item maximising (1 - diversity) * relevance -
    diversity * (highest cosine to an item already taken); relevance is the fused score scaled to
    [0, 1] over ``order``. ``vecs`` are the items' embeddings, row for row. Returns the new order."""
    if len(order) <= 1:
        return list(order)
    rel = np.array([scores[i] for i in order], dtype=np.float64)
    rel = (rel - rel.min()) / max(float(rel.max() - rel.min()), 1e-12)
    taken: list[int] = []
    closest = np.full(len(order), -np.inf)
    free = np.ones(len(order), dtype=bool)
    for _ in range(min(k, len(order))):
        value = (1 - diversity) * rel - diversity * np.maximum(closest, 0.0)
        value[~free] = -np.inf
        j = int(np.argmax(value))
        taken.append(j)
        free[j] = False
        closest = np.maximum(closest, vecs @ vecs[j])  # (m,): one row at a time, only as needed
    return [order[j] for j in taken] + [order[j] for j in range(len(order)) if free[j]]


def item_matcher(scope: Mapping[str, str], filters: Mapping[str, Any] | None, since: float | None,
                 until: float | None) -> Callable[[Item], bool]:
    """A predicate with the same meaning as the journal's SQL scope/filter/time clauses."""

    def norm(v: Any) -> Any:
        return int(v) if isinstance(v, bool) else v

    def keep(item: Item) -> bool:
        if not scopes.contains(scope, item.scope):
            return False
        for key, value in (filters or {}).items():
            if value is None:
                if item.metadata.get(key) is not None:
                    return False
            elif norm(item.metadata.get(key)) != norm(value):
                return False
        t = item.event_time if item.event_time is not None else item.created_at
        return not ((since is not None and t < since) or (until is not None and t > until))

    return keep
