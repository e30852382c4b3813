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


DIGIT_SPEC = {"kind": "classifier", "shape": [1, 28, 28], "classes": 10, "quick": True}


def test_agent_builds_its_model_from_the_task_spec_and_applies_it_to_data(hmem: agentmem.Memory) -> None:
    # issue 14.9: Agent(model="cnn", task="classification") resolved both, used neither: output=None
    torch = pytest.importorskip("torch")
    pytest.importorskip("agentmem_cnn")
    agent = agentmem.Agent(hmem, model="cnn", task="classification", spec=DIGIT_SPEC, recall_k=0)
    assert agent.model is not None and not agent.model.training  # input "image" came from the task
    result = agent.step(Event(text="a handwritten seven", data=torch.zeros(3, 1, 28, 28)))
    assert tuple(result.output.shape) == (3, 10)
    entry = hmem.stm.get(result.id)
    assert entry is not None and entry.activations
    assert "input" not in DIGIT_SPEC  # the caller's spec is not changed


def test_agent_with_a_model_name_but_no_model_refuses_data(hmem: agentmem.Memory) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("agentmem_cnn")
    agent = agentmem.Agent(hmem, model="cnn", task="classification", recall_k=0)
    assert agent.step("text alone needs no model").output is None
    with pytest.raises(errors.ModelError, match=r"holds no model.*spec="):
        agent.step(Event(text="a digit", data=torch.zeros(1, 1, 28, 28)))
    assert len(hmem) == 1  # the refused event stored nothing
    agent.model = torch.nn.Flatten()  # or any module the caller built or loaded
    assert tuple(agent.step(Event(data=torch.zeros(2, 1, 28, 28))).output.shape) == (2, 784)
    with pytest.raises(errors.ModelError):
        agentmem.Agent(hmem, task="classification").step(Event(text="x", data=torch.zeros(1)))
    with pytest.raises(errors.InvalidInputError, match="takes image inputs"):
        agentmem.Agent(hmem, model="cnn", task="classification", spec={**DIGIT_SPEC, "input": "text"})
    with pytest.raises(errors.InvalidInputError, match="model=NAME"):
        agentmem.Agent(hmem, spec=DIGIT_SPEC)
    with pytest.raises(errors.InvalidInputError, match="serves image classifiers only"):
        agentmem.Agent(hmem, model="cnn", spec={"kind": "seq2seq", "src_vocab": 5, "tgt_vocab": 5})
