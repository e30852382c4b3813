"""The recommendation task's memory evidence and batching, on small hand-made interaction logs: the
interaction graph in the knowledge graph (random walks item -> user -> item), length-bucketed batches,
and the validation-chosen weights of the memory-augmented mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
task = pytest.importorskip("agentmem_recommendation.task")

from agentmem_recommendation.data import Interactions  # noqa: E402

from agentmem.training import feature_memory  # noqa: E402

SCOPE = {"agent": "rec-test", "session": "s1"}


def log() -> Interactions:
    """Items 1 and 2 are bought together by three users, 3 and 4 by two; 5 is popular with everyone."""
    train = {1: [1, 2, 5], 2: [2, 1, 5], 3: [1, 2, 5], 4: [3, 4, 5], 5: [4, 3, 5], 6: [1, 5, 6]}
    val = {u: 6 if u < 6 else 2 for u in train}
    test = {u: 7 for u in train}
    return Interactions("toy", 7, train, val, test)


def test_interactions_go_into_the_graph_and_walk_to_co_occurring_items(tmp_path: Path) -> None:
    data = log()
    with feature_memory(tmp_path / "m", 4) as mem:
        assert task.remember_interactions(mem, data, SCOPE, "train") == 18
        walk, degree = task.interaction_walks(mem, SCOPE, data.items)
        assert walk.shape == (8, 8)
        assert degree[1:].tolist() == [4, 3, 2, 2, 6, 1, 0]
        # from item 3: to user 4 or 5 (1/2 each), then on by deg(user) ** -USER_DEGREE (3 items each)
        assert walk[3, 4] == pytest.approx(3 ** -task.USER_DEGREE)
        assert walk[3, 1] == 0.0 and walk[3, 3] == 0.0  # no path to 1; no self-loops
        # a user whose last item is 1 should see 2 (bought with it) above 4 (never with it)
        cands = np.array([[2, 4, 3]])
        scores = task.graph_scores(walk, degree, data, [6], "val", cands)
        assert scores.shape == (1, 3)
        assert scores[0, 0] > scores[0, 1]
        # other scopes do not see these interactions
        assert task.interaction_walks(mem, {"agent": "other"}, data.items)[0].nnz == 0

        assert task.remember_interactions(mem, data, SCOPE, "val") == 6
        assert task.interaction_walks(mem, SCOPE, data.items)[1][6] == 6  # item 6: 1 train + 5 val users
        with pytest.raises(ValueError, match="split"):
            task.remember_interactions(mem, data, SCOPE, "test")


def test_length_batches_cover_every_user_once_with_similar_lengths() -> None:
    rng = np.random.default_rng(0)
    train = {u: list(rng.integers(1, 50, size=int(rng.integers(2, 60)))) for u in range(1, 501)}
    data = Interactions("toy", 50, train, {}, {})
    users = np.array(sorted(train))
    batches = task.length_batches(users, data, 32, seed=3)
    assert sorted(np.concatenate(batches).tolist()) == users.tolist()
    spread = [max(len(train[u]) for u in b) - min(len(train[u]) for u in b) for b in batches]
    assert np.median(spread) <= 5  # a random batch of 32 would span ~50
    again = task.length_batches(users, data, 32, seed=3)
    assert all((a == b).all() for a, b in zip(batches, again, strict=True))
    assert any((a != b).any() for a, b in zip(batches, task.length_batches(users, data, 32, seed=4), strict=True))


def test_weights_are_chosen_on_validation_and_zero_when_a_part_does_not_help() -> None:
    gen = torch.Generator().manual_seed(0)
    model = torch.randn(400, 101, generator=gen)
    truth = torch.zeros(400, 101)
    truth[:, 0] = 3.0  # the held-out item is column 0: this part knows it
    parts = {"model": model, "profile": torch.zeros(400, 101), "session": torch.zeros(400, 101), "graph": truth}
    tuned = task.tune_weights(parts)
    assert tuned["weights"]["graph"] > 0
    assert tuned["weights"]["profile"] == tuned["weights"]["session"] == 0.0
    assert tuned["val_memory"] > tuned["val_plain"]
    assert torch.equal(task.combine(parts, {"profile": 0.0, "session": 0.0, "graph": 0.0}), model)


def test_a_sasrec_checkpoint_from_before_padding_masks_is_refused(tmp_path: Path) -> None:
    from agentmem_recommendation.run import RecommendationTask

    from agentmem.errors import InvalidInputError
    from agentmem.plugins import get
    from agentmem.training import RunOptions, save_checkpoint

    spec = {"kind": "recommender", "items": 40, "max_len": 12, "quick": True}
    with feature_memory(tmp_path / "m", 4) as mem:  # metadata as the earlier recipe wrote it: no "recipe"
        save_checkpoint(mem, "recommendation-transformer-games", get("models", "transformer").obj(spec),
                        {"spec": spec, "seed": 0, "quick": True, "weights": None})
    with pytest.raises(InvalidInputError, match="train it again"):
        RecommendationTask().evaluate(path=tmp_path / "m", model="transformer", dataset="games",
                                      options=RunOptions(quick=True))
