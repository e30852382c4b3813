"""A LangGraph agent with a fake chat model that stores and recalls through agentmem's LangGraph store.

    python examples/langgraph_agent.py

Each turn, the graph's one node searches the store for memories about the user's message, puts them
in the prompt of the (fake) chat model, and stores the message as a new memory. Offline, in seconds.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import TypedDict

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore

import agentmem
from agentmem.adapters.langgraph import AgentMemStore


class State(TypedDict):
    user: str
    message: str
    recalled: list[str]
    reply: str


model = FakeListChatModel(responses=["Noted: your locker is 41.", "Noted.", "Your locker is number 41."])


def chat(state: State, *, store: BaseStore) -> dict[str, object]:
    namespace = (state["user"], "memories")
    recalled = [i.value["text"] for i in store.search(namespace, query=state["message"], limit=2)]
    prompt = "Memories:\n" + "\n".join(recalled) + f"\n\nUser: {state['message']}"
    reply = model.invoke(prompt).content
    store.put(namespace, str(uuid.uuid4()), {"text": state["message"]}, index=["text"])
    return {"recalled": recalled, "reply": reply}


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="agentmem-langgraph-")) / "memory"
    with agentmem.Memory(folder, embedder="hash") as memory:
        graph = StateGraph(State).add_node("chat", chat).add_edge(START, "chat").add_edge("chat", END)
        app = graph.compile(store=AgentMemStore(memory))
        for message in ("My locker at the gym is number 41.", "I also like green tea.",
                        "What is my locker number at the gym?"):
            out = app.invoke({"user": "alice", "message": message, "recalled": [], "reply": ""})
            print(f"user: {message}\n  recalled: {out['recalled']}\n  agent: {out['reply']}")


if __name__ == "__main__":
    main()
