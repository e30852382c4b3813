"""Typed errors. Every message says what to do next; only the CLI turns these into exit codes."""

from __future__ import annotations


class AgentMemError(Exception):
    """Base class of every error agentmem raises on purpose."""


class InvalidInputError(AgentMemError, ValueError):
    """An argument is malformed (empty text, bad metadata, bad k, ...). Nothing was stored."""


class ScopeError(InvalidInputError):
    """A scope has unknown keys or non-string values."""


class DimensionError(InvalidInputError):
    """A vector's dimension (or finiteness) does not match the memory's embedder."""


class NotFoundError(AgentMemError, KeyError):
    """An item, weight version, model, task or plugin does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class MemoryPathError(AgentMemError):
    """The memory directory cannot be used (it is a file, unreadable, ...)."""


class MemoryLockedError(AgentMemError):
    """Another process holds the write lock of this memory directory. ``cli_message`` words the ways
    out for the command line (the message itself names Python's: ``read_only=True``, ``lock_timeout``)."""

    def __init__(self, message: str, *, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli_message or message


class MemoryClosedError(AgentMemError):
    """The memory was closed; open it again with agentmem.Memory(path)."""


class ReadOnlyError(AgentMemError):
    """A write was attempted on a memory opened with read_only=True."""


class SchemaError(AgentMemError):
    """The journal was written by a newer agentmem, or its schema is damaged."""


class EmbedderMismatchError(AgentMemError):
    """The memory was built with another embedder (name or dimension) than the one requested;
    ``stored`` and ``wanted`` name both when known."""

    def __init__(self, message: str, *, stored: str | None = None, wanted: str | None = None) -> None:
        super().__init__(message)
        self.stored, self.wanted = stored, wanted


class RunMemoryError(EmbedderMismatchError):
    """A run's memory directory holds another run's memory (another model, size or ``--quick``: other
    model features, ``features-<dim>``); the run needs a directory of its own."""


class CorruptionError(AgentMemError):
    """A stored file failed its integrity check (e.g. a weights file whose sha256 differs)."""


class ModelError(AgentMemError):
    """The agent was asked to apply a model it does not hold (e.g. an event with ``data`` for an
    ``Agent(model=...)`` built without a ``spec``)."""


class PluginError(AgentMemError):
    """A plugin failed to load or two plugins registered the same name."""


class AuthError(AgentMemError):
    """A request to ``agentmem serve`` carried no API key, an unknown one or a revoked one (HTTP 401)."""


class ScopeDeniedError(AgentMemError):
    """A request reached outside its API key's scope, or wrote with a read-only key (HTTP 403)."""


class RequestTooLargeError(InvalidInputError):
    """A request body or batch over the server's bounds (HTTP 413); split it."""
