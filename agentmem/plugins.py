"""The plugin manager: built-ins, entry points (group ``agentmem``) and the name registries."""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pluggy

from agentmem import hookspecs
from agentmem.errors import NotFoundError, PluginError

DEFAULT_PLUGINS: tuple[str, ...] = (
    "agentmem.default_plugins.embedders",
    "agentmem.default_plugins.stores",
    "agentmem.default_plugins.consolidation",
    "agentmem.default_plugins.graph_recall",
    "agentmem.default_plugins.commands",
)
KINDS = ("embedders", "stores", "models", "tasks", "datasets")

pm = pluggy.PluginManager("agentmem")
pm.add_hookspecs(hookspecs)

_lock = threading.RLock()
_loaded = False
_registry: dict[str, dict[str, Entry]] | None = None


@dataclass(frozen=True)
class Entry:
    """One registered thing: its name, the object (usually a factory), the plugin that provided it."""

    name: str
    obj: Any
    plugin: str
    options: dict[str, Any]


def load_plugins() -> pluggy.PluginManager:
    """Load built-in and installed plugins once (idempotent, thread-safe).

    ``AGENTMEM_LOAD_PLUGINS`` (comma-separated distribution or plugin names) restricts which
    entry-point plugins load; set it to an empty string to load built-ins only.
    """
    global _loaded
    with _lock:
        if _loaded:
            return pm
        for name in DEFAULT_PLUGINS:
            if pm.get_plugin(name) is None:
                pm.register(importlib.import_module(name), name=name)
        allow = os.environ.get("AGENTMEM_LOAD_PLUGINS")
        with _validated("an installed plugin"):
            if allow is None:
                pm.load_setuptools_entrypoints("agentmem")
            else:
                wanted = {w.strip() for w in allow.split(",") if w.strip()}
                _load_allowed(wanted)
            _check_pending()
        _loaded = True
        return pm


@contextlib.contextmanager
def _validated(what: str) -> Iterator[None]:
    """pluggy's validation errors (a hook implemented with argument names its spec lacks) as PluginError."""
    try:
        yield
    except pluggy.PluginValidationError as exc:
        why = " ".join(str(exc).split())  # pluggy's message spans lines
        raise PluginError(f"{what} does not match agentmem's hooks: {why}; see `agentmem plugins` and "
                          "docs/plugins.md for each hook's arguments") from exc


def _check_pending() -> None:
    """Every hook implementation must name a hook agentmem has: a misspelt one (``recal_candidates``)
    would otherwise never be called, silently."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        known = sorted(n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "agentmem_spec"))
        why = " ".join(str(exc).split())
        raise PluginError(f"{why}: not an agentmem hook; the hooks are: {', '.join(known)}") from exc


def _load_allowed(wanted: set[str]) -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="agentmem"):
        dist = ep.dist.name if ep.dist else ""
        if (ep.name in wanted or dist in wanted) and pm.get_plugin(ep.name) is None:
            pm.register(ep.load(), name=ep.name)


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object at run time (tests, notebooks); registries are rebuilt."""
    global _registry
    load_plugins()
    with _lock:
        with _validated(f"plugin {name or plugin!r}"):
            pm.register(plugin, name=name)
        try:
            _check_pending()
        except PluginError:
            pm.unregister(plugin)
            raise
        _registry = None
        _embedders.clear()  # an embedder name may now mean another factory


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin`."""
    global _registry
    with _lock:
        pm.unregister(name=name)
        _registry = None
        _embedders.clear()


def _build_registry() -> dict[str, dict[str, Entry]]:
    registry: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
    for kind in KINDS:
        caller = getattr(pm.hook, f"register_{kind}")
        for impl in caller.get_hookimpls():
            table = registry[kind]

            def register(name: str, obj: Any, _t: dict = table, _p: str = impl.plugin_name,
                         _k: str = kind, **options: Any) -> None:
                if name in _t:
                    raise PluginError(
                        f"{_k[:-1]} {name!r} is registered twice: by plugin {_t[name].plugin!r} and by "
                        f"plugin {_p!r}; uninstall one of them or restrict AGENTMEM_LOAD_PLUGINS")
                _t[name] = Entry(name, obj, _p, options)

            impl.function(register=register)
    return registry


def registry() -> dict[str, dict[str, Entry]]:
    """All registered embedders, stores, models, tasks and datasets by kind, then name."""
    global _registry
    load_plugins()
    with _lock:
        if _registry is None:
            _registry = _build_registry()
        return _registry


def get(kind: str, name: str) -> Entry:
    """Look up one registered thing, with an error listing what exists."""
    table = registry()[kind]
    if name not in table:
        known = ", ".join(sorted(table)) or "none"
        raise NotFoundError(f"no {kind[:-1]} named {name!r}; available: {known} (see `agentmem plugins`)")
    return table[name]


_embedders: dict[str, Any] = {}


def get_embedder(name: str) -> Any:
    """Return the shared embedder instance for ``name``, building it on first use."""
    with _lock:
        if name not in _embedders:
            factory: Callable[[], Any] = get("embedders", name).obj
            _embedders[name] = factory()
        return _embedders[name]


def hook() -> Any:
    """The hook relay, with plugins loaded."""
    return load_plugins().hook


def loop_caller(name: str) -> Callable[..., Any]:
    """A caller of hook ``name`` for tight loops (consolidation calls ``score_item`` and
    ``extract_facts`` once per item). With plain implementations only — no wrappers, no keyword-only
    arguments, no call monitoring — it calls them directly, in pluggy's order and with its result rules
    (``firstresult``: the first non-None; otherwise the list of non-None results), skipping pluggy's
    per-call machinery (~7 us per call); in any other case it is the hook caller itself. Take a new
    one per loop: it sees the plugins registered when it was made."""
    pm = load_plugins()
    caller = getattr(pm.hook, name)
    try:
        from pluggy._execution import _multicall  # private: another pluggy may lack it
    except ImportError:
        return caller
    impls = caller.get_hookimpls()
    spec = caller.spec
    if (getattr(pm, "_inner_hookexec", None) is not _multicall or spec is None
            or any(i.wrapper or i.hookwrapper or i.kwargnames for i in impls)):
        return caller
    firstresult = bool(spec.opts.get("firstresult"))
    order = [(i.function, i.argnames) for i in reversed(impls)]

    def call(**kwargs: Any) -> Any:
        results = []
        for function, argnames in order:
            res = function(*[kwargs[a] for a in argnames])
            if res is not None:
                if firstresult:
                    return res
                results.append(res)
        return None if firstresult else results

    return call
