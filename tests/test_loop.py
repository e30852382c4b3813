"""The agent event loop."""

from __future__ import annotations

import asyncio

import pytest

import agentmem
from agentmem import errors
from agentmem.types import Event


def test_step_run_sleep(hmem: agentmem.Memory) -> None:
    agent = agentmem.Agent(hmem, scope={"session": "s1"}, recall_k=2)
    first = agent.step("the kettle is broken")
    assert first.recalled == [] and first.id is not None
    results = agent.run([f"note {n}" for n in range(5)], progress=False)
    assert len(results) == 5 and all(r.id for r in results)
    again = agent.step("is the kettle broken?")
    assert first.id in [h.id for h in again.recalled]
    report = agent.sleep()
    assert len(report.promoted) == 7 and len(hmem.stm) == 0


def test_sleep_every(hmem: agentmem.Memory) -> None:
    agent = agentmem.Agent(hmem, sleep_every=3, recall_k=0)
    agent.run([f"event {n}" for n in range(7)], progress=False)
    assert hmem.stats()["ltm"] == 6 and len(hmem.stm) == 1


def test_astep(hmem: agentmem.Memory) -> None:
    agent = agentmem.Agent(hmem, recall_k=0)

    async def main() -> list[int | None]:
        results = await asyncio.gather(*(agent.astep(f"async {n}") for n in range(8)))
        return [r.id for r in results]

    ids = asyncio.run(main())
    assert len(set(ids)) == 8 and len(hmem) == 8


def test_model_activations_land_in_stm(hmem: agentmem.Memory) -> None:
    torch = pytest.importorskip("torch")
    agent = agentmem.Agent(hmem, recall_k=0)
    agent.model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    result = agent.step(Event(text="an input with data", data=torch.ones(2, 4)))
    assert tuple(result.output.shape) == (2, 3)
    entry = hmem.stm.get(result.id)
    assert entry is not None and set(entry.activations) == {"0", "1"}
    assert tuple(entry.activations["0"].shape) == (2, 3)
    assert entry.activations["0"].device == agentmem.device()


def test_bad_event_and_unknown_model(hmem: agentmem.Memory) -> None:
    agent = agentmem.Agent(hmem)
    with pytest.raises(errors.InvalidInputError):
        agent.step(42)  # type: ignore[arg-type]
    with pytest.raises(errors.NotFoundError, match="no model named"):
        agentmem.Agent(hmem, model="no-such-model")
