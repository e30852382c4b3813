"""Adapters to agent frameworks, each an optional extra: LangChain (:mod:`agentmem.adapters.langchain`),
LangGraph (:mod:`agentmem.adapters.langgraph`). Each works against a local ``Memory``; the retriever
and the LangGraph store also against an :class:`agentmem.Client`."""
