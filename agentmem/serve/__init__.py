"""``agentmem serve``: one process owns a memory directory and serves it over HTTP to many clients,
each holding a key tied to a scope (:mod:`agentmem.serve.keys`, :mod:`agentmem.serve.app`)."""
