"""The plugin system: registration, duplicates, lifecycle hooks, and a meta-test that every hook is
documented and exercised by this file."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

import agentmem
from agentmem import hookspecs, plugins
from agentmem.embedders import Embedder
from agentmem.errors import NotFoundError, PluginError
from agentmem.types import Event, Fact, Item


class TinyEmbedder(Embedder):
    name = "tiny"

    @property
    def dim(self) -> int:
        return 3

    def embed_batch(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
        out = np.array([[len(t), t.count("a") + 1, 1.0] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class Recorder:
    """A plugin implementing every lifecycle hook, recording what it saw."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.consolidated: list[int] = []

    @agentmem.hookimpl
    def register_embedders(self, register):  # type: ignore[no-untyped-def]
        register("tiny", TinyEmbedder)

    @agentmem.hookimpl
    def register_stores(self, register):  # type: ignore[no-untyped-def]
        register("null-graph", object, kind="graph")

    @agentmem.hookimpl
    def register_models(self, register):  # type: ignore[no-untyped-def]
        register("echo-model", lambda spec: spec)

    @agentmem.hookimpl
    def register_tasks(self, register):  # type: ignore[no-untyped-def]
        register("echo-task", dict)

    @agentmem.hookimpl
    def register_datasets(self, register):  # type: ignore[no-untyped-def]
        register("echo-data", lambda **kw: [1, 2, 3])

    @agentmem.hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.command(name="echo-cmd")
        def echo_cmd() -> None:
            click.echo("echoed")

    @agentmem.hookimpl
    def score_item(self, item: Item, novelty: float, now: float) -> float | None:
        return 0.75 if "important" in item.text else None

    @agentmem.hookimpl
    def should_merge(self, item: Item, existing: Item, similarity: float) -> bool | None:
        return False if "never merge" in item.text else None

    @agentmem.hookimpl
    def extract_facts(self, item: Item) -> list[Fact]:
        return [Fact("plugin", "saw", item.text[:10], item.id)]

    @agentmem.hookimpl
    def on_consolidate(self, memory: agentmem.Memory, items: list[Item]) -> None:
        self.consolidated += [i.id for i in items]

    @agentmem.hookimpl
    def on_event(self, agent: agentmem.Agent, event: Event) -> None:
        self.events.append(event)

    @agentmem.hookimpl
    def recall_candidates(self, memory: agentmem.Memory, query: str, scope: dict[str, str],
                          k: int) -> list[int]:
        # deliberately offers every id, other scopes included: the caller must drop them
        return [i.id for i in memory]


@pytest.fixture
def recorder() -> Recorder:
    rec = Recorder()
    plugins.register_plugin(rec, name="recorder")
    yield rec
    plugins.unregister_plugin("recorder")


def test_registration_hooks(recorder: Recorder) -> None:
    reg = plugins.registry()
    assert reg["embedders"]["tiny"].plugin == "recorder"
    assert reg["stores"]["null-graph"].options == {"kind": "graph"}
    assert plugins.get("models", "echo-model").obj({"x": 1}) == {"x": 1}
    assert plugins.get("tasks", "echo-task").plugin == "recorder"
    assert plugins.get("datasets", "echo-data").obj() == [1, 2, 3]
    assert reg["embedders"]["minilm"].plugin == "agentmem.default_plugins.embedders"
    with pytest.raises(NotFoundError, match=r"available: .*tiny"):
        plugins.get("embedders", "nope")


def test_register_commands_and_cli_listing(recorder: Recorder) -> None:
    from agentmem.cli import cli

    plugins.hook().register_commands(cli=cli)
    result = CliRunner().invoke(cli, ["echo-cmd"])
    assert result.output.strip() == "echoed"
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert '"tiny": "recorder"' in result.output


def test_duplicate_registration_names_both_plugins(recorder: Recorder) -> None:
    class Clash:
        @agentmem.hookimpl
        def register_embedders(self, register):  # type: ignore[no-untyped-def]
            register("tiny", TinyEmbedder)

    plugins.register_plugin(Clash(), name="clash")
    try:
        with pytest.raises(PluginError, match=r"'recorder'.*'clash'|'clash'.*'recorder'"):
            plugins.registry()
    finally:
        plugins.unregister_plugin("clash")


def test_a_misspelt_or_mismatched_hook_is_a_plugin_error_and_registers_nothing() -> None:
    class Misspelt:
        @agentmem.hookimpl
        def recal_candidates(self, memory, query, scope, k):  # type: ignore[no-untyped-def]
            return []

    class WrongArguments:
        @agentmem.hookimpl
        def recall_candidates(self, memory, text):  # type: ignore[no-untyped-def]
            return []

    with pytest.raises(PluginError, match=r"recal_candidates.*the hooks are: .*recall_candidates"):
        plugins.register_plugin(Misspelt(), name="misspelt")
    with pytest.raises(PluginError, match=r"does not match agentmem's hooks.*text"):
        plugins.register_plugin(WrongArguments(), name="wrong-arguments")
    assert plugins.pm.get_plugin("misspelt") is None and plugins.pm.get_plugin("wrong-arguments") is None
    plugins.load_plugins().check_pending()  # nothing pending was left behind


def test_re_registering_an_embedder_name_gives_the_new_factory() -> None:
    class First(TinyEmbedder):
        pass

    class Second(TinyEmbedder):
        pass

    def plugin_for(cls: type) -> object:
        class Provides:
            @agentmem.hookimpl
            def register_embedders(self, register):  # type: ignore[no-untyped-def]
                register("swappable", cls)
        return Provides()

    plugins.register_plugin(plugin_for(First), name="swap")
    try:
        assert type(plugins.get_embedder("swappable")) is First
    finally:
        plugins.unregister_plugin("swap")
    plugins.register_plugin(plugin_for(Second), name="swap")
    try:
        assert type(plugins.get_embedder("swappable")) is Second  # not the instance built for First
    finally:
        plugins.unregister_plugin("swap")


def test_lifecycle_hooks(recorder: Recorder, tmp_path: Path) -> None:
    with agentmem.Memory(tmp_path / "m", embedder="tiny") as mem:
        assert mem.dim == 3  # the dimension comes from the embedder
        agent = agentmem.Agent(mem, scope={"user": "u"}, recall_k=0)
        a = agent.step("an important note").id
        b = agent.step(Event(text="never merge me", scope={"user": "u"})).id
        c = agent.step(Event(text="never merge me", scope={"user": "u"})).id
        other = mem.remember("other scope", scope={"user": "v"})
        report = agent.sleep()
        assert [e.text for e in recorder.events] == ["an important note", "never merge me", "never merge me"]
        # every merge is should_merge's decision, an identical text's too
        assert report.merged == {}
        assert mem.get(a).importance == 0.75
        assert recorder.consolidated == [a, b, c, other]
        assert Fact("plugin", "saw", "an importa", a) in mem.graph.facts("plugin", scope={"user": "u"})
        hits = mem.recall("zzzz", k=10, scope={"user": "u"})
        assert other not in [h.id for h in hits]  # plugin candidates cannot cross scopes


def test_entry_point_allow_list() -> None:
    """AGENTMEM_LOAD_PLUGINS loads exactly the named entry-point plugins (by entry or distribution
    name), and an empty value only the built-ins. Run in subprocesses: loading is once per process."""
    import json
    import os
    import subprocess
    import sys
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="agentmem")}
    if not {"cnn", "lstm"} <= names:
        pytest.skip("the first-party plugins are not installed (make install)")
    code = ("import json; from agentmem import plugins; r = plugins.registry(); "
            "names = sorted(n for n, _ in plugins.pm.list_name_plugin()); "
            "print(json.dumps({'models': sorted(r['models']), 'loaded': names}))")

    def loaded(allow: str) -> dict[str, list[str]]:
        env = {**os.environ, "AGENTMEM_LOAD_PLUGINS": allow}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                             timeout=120).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))

    only_cnn = loaded("cnn,agentmem-lstm")  # an entry-point name and a distribution name
    assert only_cnn["models"] == ["cnn", "lstm"]
    assert {"cnn", "lstm"} <= set(only_cnn["loaded"]) and "transformer" not in only_cnn["loaded"]
    builtins_only = loaded("")
    assert builtins_only["models"] == []
    assert all(n.startswith("agentmem.default_plugins") for n in builtins_only["loaded"])


HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
         if hasattr(fn, "agentmem_spec")]


def test_every_hook_is_documented_and_exercised() -> None:
    assert len(HOOKS) >= 10
    source = Path(__file__).read_text()
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 40, f"hook {name} needs a docstring stating its contract"
        assert re.search(rf"def {name}\(", source), f"hook {name} is not implemented in this test file"
        assert name in Recorder.__dict__, f"hook {name} is not exercised by the Recorder plugin"


class _Scorer:
    """Two more implementations: a firstresult hook that declines (None) and one that answers."""

    @agentmem.hookimpl(tryfirst=True)
    def score_item(self, item: Item, novelty: float, now: float) -> float | None:
        return None if novelty < 0.5 else 0.75

    @agentmem.hookimpl
    def extract_facts(self, item: Item) -> list[Fact]:
        return [Fact("tester", "saw", item.text, item.id)]


class _Wrapper:
    @agentmem.hookimpl(wrapper=True)
    def score_item(self, item: Item, novelty: float, now: float):  # type: ignore[no-untyped-def]
        result = yield
        return None if result is None else result + 1.0


@pytest.mark.parametrize("extra", [[], [_Scorer], [_Scorer, _Wrapper]])
def test_loop_caller_answers_like_the_hook(extra: list[type]) -> None:
    for i, cls in enumerate(extra):
        plugins.register_plugin(cls(), name=f"loop-{i}")
    try:
        item = Item(1, "Alice met Bob in Paris", {"speaker": "Carol"}, {}, 0.0)
        h = plugins.hook()
        for novelty in (0.1, 0.9):
            kw = {"item": item, "novelty": novelty, "now": 0.0}
            assert plugins.loop_caller("score_item")(**kw) == h.score_item(**kw)
        assert plugins.loop_caller("extract_facts")(item=item) == h.extract_facts(item=item)
        if _Wrapper in extra:  # a wrapper needs pluggy's machinery: the hook caller itself is used
            assert plugins.loop_caller("score_item") is h.score_item
    finally:
        for i in range(len(extra)):
            plugins.unregister_plugin(f"loop-{i}")
