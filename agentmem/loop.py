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
from agentmem.errors import InvalidInputError
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
    """

    def __init__(self, memory: Memory, model: str | None = None, task: str | None = None, *,
                 scope: dict[str, str] | None = None, recall_k: int = 5, sleep_every: int = 0) -> None:
        self.memory = memory
        self.model_name, self.task_name = model, task
        # resolve names now so a typo fails at construction, not on the first event
        self.model_factory = get("models", model).obj if model else None
        self.task_factory = get("tasks", task).obj if task else None
        self.scope = scope
        self.recall_k = recall_k
        self.sleep_every = sleep_every
        self.steps = 0
        self.model: Any = None  # built by a task or the caller (e.g. agent.model = factory(spec))

    def step(self, event: Event | str) -> StepResult:
        """Handle one event: plugins see it (``on_event``), relevant memories are recalled, its text is
        remembered, and the model (if any) is applied to ``event.data`` with activations captured."""
        if isinstance(event, str):
            event = Event(text=event)
        if not isinstance(event, Event):
            raise InvalidInputError(f"step() takes an Event or a str, got {type(event).__name__}")
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

        with capture(self.model) as acts:
            output = self.model(event.data)
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
