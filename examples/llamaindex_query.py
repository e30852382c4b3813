"""A LlamaIndex VectorStoreIndex stored in agentmem, and a retriever query over it.

    python examples/llamaindex_query.py

Documents are split and embedded by LlamaIndex (with agentmem's model-free `hash` embedder as its
embed model), stored as memories of one scope, and retrieved by a query. Offline, in seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from llama_index.core import Document, StorageContext, VectorStoreIndex

import agentmem
from agentmem.adapters.llamaindex import AgentMemEmbedding, AgentMemRetriever, AgentMemVectorStore


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="agentmem-llamaindex-")) / "memory"
    with agentmem.Memory(folder, embedder="hash") as memory:
        store = AgentMemVectorStore(memory, scope={"user": "demo"})
        docs = [Document(text="Caroline went to the LGBTQ support group on 7 May 2023.", doc_id="diary-1"),
                Document(text="Melanie painted a lake at sunrise last year.", doc_id="diary-2"),
                Document(text="Caroline is researching adoption agencies.", doc_id="diary-3")]
        index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                                embed_model=AgentMemEmbedding("hash"))
        for hit in index.as_retriever(similarity_top_k=1).retrieve("Who painted a lake at sunrise?"):
            print(f"vector retriever: {hit.node.get_content()} (cosine {hit.score:.3f})")
        for hit in AgentMemRetriever(memory, k=1, scope={"user": "demo"}).retrieve("When was the support group?"):
            print(f"recall retriever: {hit.node.get_content()} (evidence {hit.node.metadata['evidence']})")


if __name__ == "__main__":
    main()
