"""Settings sources, the filter, and CLI promises: inbox limits across processes, inert output."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO, cli_env, run_cli

from claudeswarm.config import Settings, commented_template, load
from claudeswarm.errors import UsageError
from claudeswarm.messages.filters import MessageFilter
from claudeswarm.messages.record import MessageRecord, format_ts
from claudeswarm.storage.paths import StatePaths


def test_sources_default_file_env(paths: StatePaths) -> None:
    paths.config.write_text("rate_per_sender = 5\nbody_max_bytes = 100\n")
    loaded = load(paths, env={"CLAUDESWARM_BODY_MAX_BYTES": "200"})
    assert loaded.settings.rate_per_sender == 5
    assert loaded.settings.body_max_bytes == 200
    assert loaded.sources["rate_per_sender"] == "config.toml"
    assert loaded.sources["body_max_bytes"] == "env CLAUDESWARM_BODY_MAX_BYTES"
    assert loaded.sources["archive_keep"] == "default"


@pytest.mark.parametrize(
    ("toml", "env", "match"),
    [
        ("nonsense = 1\n", {}, "unknown setting"),
        ("rate_per_sender = 'many'\n", {}, "not a valid int"),
        ("rate_per_sender = \n", {}, "config.toml"),
        ("", {"CLAUDESWARM_ARCHIVE_KEEP": "-3"}, "negative"),
    ],
)
def test_bad_settings_are_one_line_errors(
    paths: StatePaths, toml: str, env: dict[str, str], match: str
) -> None:
    paths.config.write_text(toml)
    with pytest.raises(UsageError, match=match):
        load(paths, env=env)


def test_template_lists_every_setting_and_parses_to_defaults(paths: StatePaths) -> None:
    text = commented_template()
    for f in fields(Settings):
        assert f"# {f.name} = " in text
    paths.config.write_text(text)
    assert load(paths, env={}).settings == Settings()
    uncommented = re.sub(r"^# (\w+ = )", r"\1", text, flags=re.M)
    paths.config.write_text(uncommented)
    assert load(paths, env={}).settings == Settings()


def test_every_setting_is_used_by_code() -> None:
    code = "".join(
        p.read_text() for p in (REPO / "claudeswarm").rglob("*.py") if p.name != "config.py"
    )
    unused = [f.name for f in fields(Settings) if f".{f.name}" not in code]
    assert unused == []


def test_config_command_shows_value_and_source(project: Path) -> None:
    env = cli_env(project, CLAUDESWARM_RATE_PER_PAIR="7")
    out = run_cli(project, "config", "--json", env=env)
    rows = {r["key"]: r for r in json.loads(out.stdout)["settings"]}
    assert rows["rate_per_pair"]["value"] == 7
    assert rows["rate_per_pair"]["source"] == "env CLAUDESWARM_RATE_PER_PAIR"


def _rec(ts: float, sender: str, to: tuple[str, ...], mtype: str, body: str) -> MessageRecord:
    return MessageRecord("01" + "A" * 24, format_ts(ts), sender, to, mtype, body)


def test_filter_criteria_and_composition() -> None:
    t0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    r = _rec(t0.timestamp(), "alice", ("bob",), "question", "Deploy tonight?")
    assert MessageFilter().matches(r)
    assert MessageFilter(types=frozenset({"question"})).matches(r)
    assert not MessageFilter(types=frozenset({"info"})).matches(r)
    assert MessageFilter(agents=frozenset({"bob"})).matches(r)
    assert not MessageFilter(senders=frozenset({"bob"})).matches(r)
    assert MessageFilter(recipients=frozenset({"bob"})).matches(r)
    assert MessageFilter(text=("deploy",)).matches(r)
    berlin = t0.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert MessageFilter(since=berlin).matches(r)  # same instant, other zone
    assert not MessageFilter(since=berlin + timedelta(milliseconds=1)).matches(r)
    assert not MessageFilter(until=berlin).matches(r)
    both = MessageFilter(types=frozenset({"question", "info"})) & MessageFilter(
        types=frozenset({"info"})
    )
    assert not both.matches(r)
    broadcast = _rec(t0.timestamp(), "carol", ("all",), "info", "hi")
    assert MessageFilter(recipients=frozenset({"bob"})).matches(broadcast)
    with pytest.raises(ValueError, match="aware"):
        MessageFilter(since=datetime(2026, 1, 1))


def test_cli_inbox_limit_across_processes(project: Path) -> None:
    run_cli(project, "join", "alice")
    run_cli(project, "join", "bob")
    for i in range(8):
        assert run_cli(project, "send", "--as", "alice", "bob", f"m{i}").returncode == 0
    first = json.loads(run_cli(project, "inbox", "--as", "bob", "--limit", "5", "--json").stdout)
    assert [m["body"] for m in first["messages"]] == [f"m{i}" for i in range(5)]
    assert first["more"] == 3
    rest = json.loads(run_cli(project, "inbox", "--as", "bob", "--json").stdout)
    assert [m["body"] for m in rest["messages"]] == ["m5", "m6", "m7"]


def test_human_output_is_inert(project: Path) -> None:
    run_cli(project, "join", "alice")
    run_cli(project, "join", "bob")
    run_cli(project, "send", "--as", "alice", "bob", "\x1b]0;pwned\x07\x1b[2J\u202eevil\x9b")
    out = run_cli(project, "inbox", "--as", "bob")
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout and "\x9b" not in out.stdout
    assert "\u202e" not in out.stdout and "\\x1b]0;pwned" in out.stdout
    js = run_cli(project, "log", "--json")
    assert "\x9b" not in js.stdout and json.loads(js.stdout)["body"].endswith("\x9b")
