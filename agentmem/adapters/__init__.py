"""Adapters to agent frameworks, each an optional extra: LangChain (:mod:`agentmem.adapters.langchain`),
LangGraph (:mod:`agentmem.adapters.langgraph`), LlamaIndex (:mod:`agentmem.adapters.llamaindex`). Each
works against a local ``Memory``; the retrievers and the LangGraph store also against an
:class:`agentmem.Client`."""
