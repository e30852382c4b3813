"""Recall (a package: one module per kind of evidence): gather scored evidence for a query, fuse it, and pick the hits.

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
(:mod:`agentmem.ltm.passages`). The fused score only ranks; :attr:`Context.cosines` keeps each
candidate's cosine, and :func:`matched` says how many of the query's words a text has: what a hit
reports for a caller to threshold on.
"""

from __future__ import annotations

from agentmem.recall.dense import nearest_vectors
from agentmem.recall.fusion import Evidence, Fuser, mmr
from agentmem.recall.query import DIRECT, STOPWORDS, Candidates, Context, Query, Stores, item_matcher, lexical_text
from agentmem.recall.search import search
from agentmem.recall.terms import QueryTerms, matched, query_terms, text_terms

__all__ = ["DIRECT", "STOPWORDS", "Candidates", "Context", "Evidence", "Fuser", "Query", "QueryTerms", "Stores",
           "item_matcher", "lexical_text", "matched", "mmr", "nearest_vectors", "query_terms", "search", "text_terms"]
