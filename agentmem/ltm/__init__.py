"""Long-term memory: the SQLite journal (source of truth) and the caches derived from it."""
