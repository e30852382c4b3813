"""PostgreSQL (with pgvector) as a memory's store (``agentmem-toolkit[postgres]``): the schema and its
numbered migrations (:mod:`agentmem.pg.schema`) and moving archives in and out
(:mod:`agentmem.pg.archive`). The ``Memory`` API on PostgreSQL is still to come (issue 19)."""
