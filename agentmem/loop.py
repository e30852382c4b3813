"""The agent event loop: encode each event, remember it, let plugins and the model see it.

``step`` handles one event; ``run`` a stream (with a progress bar); ``sleep`` consolidates STM into
LTM offline; ``astep`` runs ``step`` in a worker thread for asyncio applications.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agentmem.consolidation import ConsolidationReport
from agentmem.errors import InvalidInputError, ModelError
from agentmem.memory import Memory
from agentmem.plugins import get, hook
from agentmem.types import Event, Hit


@dataclass
class StepResult:
    """What one step did: the id it stored (None for events without text), the memories recalled for
    context, and the model's output when the agent has a model."""

    id: int | None
    recalled: list[Hit] = field(default_factory=list)
    output: Any = None


class Agent:
    """An agent bound to a :class:`Memory`, optionally with a model and task from plugins.

    ``recall_k`` memories relevant to each text event are recalled (before it is stored) so that callers
    and models can use them; ``sleep_every`` consolidates every N steps (0 = only when STM is full).

    A model is applied to each event's ``data``. Name it with the model spec the task documents and
    the agent builds it (on :func:`agentmem.device`, in eval mode), e.g. ``Agent(mem, model="cnn",
    task="classification", spec={"kind": "classifier", "input": "image", "shape": [1, 28, 28],
    "classes": 10})``; load trained weights into ``agent.model`` (``agent.model.load_state_dict(
    mem.weights.load(name))``; ``agentmem run`` saves its checkpoints with their spec in the metadata),
    or assign any torch module to ``agent.model`` yourself. An agent given a model or task name but
    holding no model raises :class:`~agentmem.errors.ModelError` when an event brings ``data``,
    rather than returning ``output=None``.
    """

    def __init__(self, memory: Memory, model: str | None = None, task: str | None = None, *,
                 spec: dict[str, Any] | None = None, scope: dict[str, str] | None = None, recall_k: int = 5,
                 sleep_every: int = 0) -> None:
        self.memory = memory
        self.model_name, self.task_name = model, task
        # resolve names now so a typo fails at construction, not on the first event
        self.model_factory = get("models", model).obj if model else None
        task_entry = get("tasks", task) if task else None
        self.task_factory = task_entry.obj if task_entry else None
        self.scope = scope
        self.recall_k = recall_k
        self.sleep_every = sleep_every
        self.steps = 0
        self.model: Any = None  # built from ``spec``, or set by the caller (e.g. agent.model = module)
        if spec is not None:
            self.model = self._build(spec, task_entry.options.get("input") if task_entry else None)

    def _build(self, spec: dict[str, Any], task_input: str | None) -> Any:
        """The named model for ``spec`` (the factory refuses a spec it cannot serve)."""
        from agentmem.devices import device

        if self.model_factory is None:
            raise InvalidInputError("spec= builds the agent's model: also pass model=NAME (see `agentmem plugins`)")
        if not isinstance(spec, dict):
            raise InvalidInputError(f"spec must be a dict (the task's model spec), got {type(spec).__name__}")
        spec = dict(spec)
        if task_input is not None and spec.setdefault("input", task_input) != task_input:
            raise InvalidInputError(f"task {self.task_name!r} takes {task_input} inputs, but spec has "
                                    f"input={spec['input']!r}")
        return self.model_factory(spec).to(device()).eval()

    def step(self, event: Event | str) -> StepResult:
        """Handle one event: plugins see it (``on_event``), relevant memories are recalled, its text is
        remembered, and the model (if any) is applied to ``event.data`` with activations captured."""
        if isinstance(event, str):
            event = Event(text=event)
        if not isinstance(event, Event):
            raise InvalidInputError(f"step() takes an Event or a str, got {type(event).__name__}")
        if event.data is not None and self.model is None and (self.model_name or self.task_name):
            named = " and ".join(f"{k} {v!r}" for k, v in (("model", self.model_name), ("task", self.task_name)) if v)
            raise ModelError(
                f"this event has data but the agent ({named}) holds no model to apply to it; pass "
                "Agent(..., model=NAME, spec={...}) with the task's model spec (e.g. {'kind': 'classifier', "
                "'input': 'image', 'shape': [1, 28, 28], 'classes': 10}), or set agent.model to a torch module")
        hook().on_event(agent=self, event=event)
        scope = event.scope if event.scope is not None else self.scope
        result = StepResult(id=None)
        if event.text is not None:
            if self.recall_k and len(self.memory):
                result.recalled = self.memory.recall(event.text, k=self.recall_k, scope=scope)
            result.id = self.memory.remember(event.text, event.metadata or None, scope, time=event.time)
        if self.model is not None and event.data is not None:
            result.output = self._forward(event, result.id)
        self.steps += 1
        if self.sleep_every and self.steps % self.sleep_every == 0:
            self.sleep()
        return result

    def _forward(self, event: Event, item_id: int | None) -> Any:
        from agentmem.activations import capture

        data = event.data
        if hasattr(data, "to") and hasattr(self.model, "parameters"):  # a tensor, to the model's device
            from agentmem.compress import model_device

            data = data.to(model_device(self.model))
        with capture(self.model) as acts:
            output = self.model(data)
        if item_id is not None:
            self.memory.stm.attach(item_id, acts)
        return output

    def run(self, stream: Iterable[Event | str], progress: bool = True) -> list[StepResult]:
        """Step through a stream of events, in order."""
        from tqdm.auto import tqdm

        total = len(stream) if hasattr(stream, "__len__") else None  # type: ignore[arg-type]
        return [self.step(e) for e in tqdm(stream, total=total, desc="agent", unit="event", disable=not progress)]

    def sleep(self) -> ConsolidationReport:
        """Offline consolidation: move short-term memory into long-term memory now."""
        return self.memory.consolidate()

    async def astep(self, event: Event | str) -> StepResult:
        """``step`` for asyncio code (runs in a worker thread; the memory is thread-safe)."""
        return await asyncio.to_thread(self.step, event)
