"""Time bounds of recall: a date-only ``until`` covers that whole day, in the API and the CLI, and
the CLI's --since/--until take unix seconds as --time does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

import agentmem
from agentmem.cli import cli


def test_until_a_date_includes_that_whole_day(hmem: agentmem.Memory) -> None:
    late = hmem.remember("new year's eve party", time="2023-12-31T23:30:00")
    after = hmem.remember("new year's day brunch", time="2024-01-01T00:00:00")
    assert [h.id for h in hmem.recall("party", k=5, until="2023-12-31")] == [late]
    hmem.consolidate()
    assert [h.id for h in hmem.recall("party", k=5, until="2023-12-31")] == [late]
    assert after in {h.id for h in hmem.recall("brunch", k=5, since="2024-01-01")}
    assert after not in {h.id for h in hmem.recall("brunch", k=5, until="2023-12-31")}


def test_cli_bounds_take_dates_and_unix_seconds(tmp_path: Path) -> None:
    path = str(tmp_path / "m")
    runner = CliRunner()
    t = datetime(2023, 12, 31, 23, 30, tzinfo=UTC).timestamp()
    out = runner.invoke(cli, ["remember", "new year's eve party", "--path", path, "--time", str(int(t)), "--json"])
    assert out.exit_code == 0, out.output
    (i,) = json.loads(out.output)["ids"]
    for bounds in (["--until", "2023-12-31"], ["--since", str(int(t) - 60), "--until", str(int(t) + 60)]):
        out = runner.invoke(cli, ["recall", "party", "--path", path, "--json", *bounds])
        assert out.exit_code == 0, out.output
        assert [h["id"] for h in json.loads(out.output)] == [i]
    out = runner.invoke(cli, ["recall", "party", "--path", path, "--json", "--until", str(int(t) - 60)])
    assert out.exit_code == 0 and json.loads(out.output) == []
