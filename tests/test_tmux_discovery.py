"""Discovery on a real tmux server: exactly the agents, never shells or dev servers."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from libtmux.test.retry import retry_until
from tmux_lab import WAIT, Lab

from claudeswarm.agents import discovery, procs
from claudeswarm.errors import EXIT_UNAVAILABLE, UnavailableError
from claudeswarm.tmux.client import Tmux

pytestmark = pytest.mark.tmux


@pytest.fixture
def session_params() -> dict[str, Any]:
    return {"x": 250, "y": 80}


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["claude"], "claude"),
        (["/home/u/.local/bin/claude", "--resume"], "claude"),
        (["node", "/usr/local/bin/claude"], "claude"),
        (
            ["node", "--no-warnings", "/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js"],
            "claude",
        ),
        (["node", "/usr/lib/node_modules/@openai/codex/bin/codex.js"], "codex"),
        (["/usr/local/lib/codex/codex", "exec"], "codex"),
        (["/home/u/.venv/bin/python3", "/home/u/.local/bin/aider", "--model", "x"], "aider"),
        (["python3", "-m", "aider"], "aider"),
        (["node", "/usr/lib/node_modules/@google/gemini-cli/dist/index.js"], "gemini"),
        (["gemini"], "gemini"),
        (["opencode"], "opencode"),
        (["node", "server.js"], None),
        (["npm", "run", "dev"], None),
        (["node", "/repo/node_modules/.bin/vite"], None),
        (["sh", "-c", "node server.js"], None),
        (["-bash"], None),
        (["bash", "--norc"], None),
        (["vim", "claude.md"], None),
        (["python3", "-c", "import claude"], None),
        (["less", "/usr/local/bin/claude"], None),
    ],
)
def test_classify_by_executable_and_arguments(argv: list[str], kind: str | None) -> None:
    assert discovery.classify(argv, Path(argv[0]).name[:15]) == kind


def test_extra_patterns_from_config() -> None:
    pats = discovery.parse_patterns(["cursor=cursor-agent"])
    assert discovery.classify(["/opt/cursor-agent", "--x"], "cursor-agent", pats) == "cursor"
    assert discovery.classify(["npm", "run", "dev"], "npm", pats) is None


def test_monitor_pane_is_not_an_agent() -> None:
    assert discovery.is_monitor(["python3", "-m", "claudeswarm", "monitor"])
    assert discovery.is_monitor(["/x/.venv/bin/claudeswarm", "monitor", "--json"])
    assert not discovery.is_monitor(["claudeswarm", "send", "bob", "monitor"])


def _dev_server(lab: Lab) -> str:
    app = lab.project.parent / "webapp"
    app.mkdir()
    (app / "server.js").write_text(
        "require('http').createServer((q, s) => s.end('ok')).listen(0);\n"
    )
    (app / "package.json").write_text(json.dumps({"scripts": {"dev": "node server.js"}}))
    return lab.pane(f"cd {shlex.quote(str(app))} && npm run dev")


def test_exactly_the_eight_agents_are_found(server: Any, session: Any, project: Path) -> None:
    lab = Lab(server, session, project)
    kinds = ["claude", "codex", "aider", "gemini"] * 2
    agents = [lab.fake(kind, under_bash=i % 2 == 1) for i, kind in enumerate(kinds)]
    shells = [lab.bash() for _ in range(4)]
    dev = _dev_server(lab)
    node_server = lab.pane(f"node {shlex.quote(str(lab.project.parent / 'webapp/server.js'))}")
    # the monitor's pane is no agent even when its process tree holds a claude-like child
    (lab.bin / "claudeswarm").symlink_to(lab.bin / "claude")
    rec = lab.records / "monitor"
    py, bin_ = sys.executable, lab.bin
    monitor = lab.pane(
        f"{py} {bin_}/claude --record {rec}-child </dev/tty & "
        f"exec {py} {bin_}/claudeswarm monitor --record {rec}"
    )

    def dev_running() -> bool:
        table = procs.snapshot()
        pane_pids = {p.pane_id: p.pid for p in lab.tm.list_panes()}
        return any(
            "server.js" in " ".join(table.argv(pid)) for pid in table.descendants(pane_pids[dev])
        )

    retry_until(dev_running, WAIT)
    for name in ("monitor", "monitor-child"):
        retry_until((lab.records / f"{name}.jsonl").exists, WAIT)
    scan = discovery.scan(lab.tm)
    found = {f.pane.pane_id: f.kind for f in scan.found}
    assert found == {a.pane: k for a, k in zip(agents, kinds, strict=True)}
    for pane in (*shells, dev, node_server, monitor):
        assert pane in scan.panes
        assert pane not in found

    out = lab.cli("discover", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert sorted(r["name"] for r in rows) == sorted(
        f"{k}-{n}" for k in ("claude", "codex", "aider", "gemini") for n in (1, 2)
    )
    by_pane = {r["pane"]: r for r in rows}
    for agent, kind in zip(agents, kinds, strict=True):
        row = by_pane[agent.pane]
        assert row["kind"] == kind
        assert row["pid"] == agent.pid  # the agent process itself, not its shell
        assert row["location"].startswith(f"{lab.session}:")
        assert row["cwd"] == str(project)


def test_agent_patterns_setting_adds_a_kind(server: Any, session: Any, project: Path) -> None:
    lab = Lab(server, session, project, CLAUDESWARM_AGENT_PATTERNS="mybot=bin/mybot( |$)")
    bot = lab.fake("mybot")
    plain = lab.fake("helperbot")
    rows = json.loads(lab.cli("discover", "--json").stdout)
    assert [(r["pane"], r["kind"], r["name"]) for r in rows] == [(bot.pane, "mybot", "mybot-1")]
    assert plain.pane not in {r["pane"] for r in rows}


def test_one_list_panes_call_per_scan(
    server: Any, session: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counts tmux invocations by wrapping ``Tmux.run`` (a spy, not a mock: it calls through)."""
    lab = Lab(server, session, project)
    for kind in ("claude", "codex", "aider"):
        lab.fake(kind)
    calls: list[tuple[str, ...]] = []
    real = Tmux.run

    def spy(self: Tmux, *args: str, timeout: float = 10.0) -> str:
        calls.append(args)
        return real(self, *args, timeout=timeout)

    monkeypatch.setattr(Tmux, "run", spy)
    scan = discovery.scan(lab.tm)
    assert len(scan.found) == 3
    assert [c[0] for c in calls] == ["list-panes"]


def test_no_tmux_server_is_one_line_exit_4(project: Path, tmp_path: Path) -> None:
    from conftest import cli_env, run_cli

    env = cli_env(project, TMUX=f"{tmp_path / 'no-such-socket'},1,0")
    out = run_cli(project, "discover", env=env)
    assert out.returncode == EXIT_UNAVAILABLE
    assert out.stderr.count("\n") == 1
    assert "no tmux server" in out.stderr
    assert "Traceback" not in out.stderr
    with pytest.raises(UnavailableError):
        Tmux(socket_path=str(tmp_path / "nope")).list_panes()


def test_discover_watch_rescans(server: Any, session: Any, project: Path) -> None:
    import subprocess

    lab = Lab(server, session, project)
    lab.fake("claude")
    proc = subprocess.Popen(
        [sys.executable, "-m", "claudeswarm", "discover", "--watch", "--interval", "0.3", "--json"],
        cwd=project,
        env=lab.env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert [r["kind"] for r in first] == ["claude"]
        lab.fake("codex")
        deadline = time.monotonic() + WAIT
        kinds: list[str] = []
        while time.monotonic() < deadline and sorted(kinds) != ["claude", "codex"]:
            kinds = [r["kind"] for r in json.loads(proc.stdout.readline())]
        assert sorted(kinds) == ["claude", "codex"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_explicit_socket_outside_tmux(server: Any, session: Any, project: Path) -> None:
    from conftest import cli_env, run_cli

    lab = Lab(server, session, project)
    agent = lab.fake("gemini")
    out = run_cli(project, "discover", "--socket", lab.tm.socket, "--json", env=cli_env(project))
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["pane"], r["kind"], r["socket"]) for r in rows] == [
        (agent.pane, "gemini", lab.tm.socket)
    ]


def test_shells_and_wrappers_are_never_bound_to() -> None:
    assert discovery.is_shell(["-bash"])
    assert discovery.is_shell(["/usr/bin/zsh", "-i"])
    assert not discovery.is_shell(["bash", "/opt/bin/claude"])  # a script it runs
    assert not discovery.is_shell(["cursor-agent"])
    assert discovery.is_wrapper(["uv", "run", "claudeswarm", "join"])
    assert discovery.is_wrapper(["/usr/bin/env", "python3"])
    assert not discovery.is_wrapper(["node", "/usr/bin/claude"])
