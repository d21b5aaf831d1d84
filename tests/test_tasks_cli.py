"""The ``task`` commands as real processes: output, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from claudeswarm.errors import EXIT_REFUSED, EXIT_USAGE
from tests.conftest import cli_env, run_cli


def cli(project: Path, *args: str, agent: str = "alice") -> tuple[int, str, str]:
    out = run_cli(project, "task", *args, env=cli_env(project, CLAUDESWARM_AGENT=agent))
    assert "Traceback" not in out.stderr
    return out.returncode, out.stdout, out.stderr


def test_full_cycle(project: Path) -> None:
    code, out, _ = cli(project, "add", "Write docs", "--artifact", "docs/a.md", "-p", "2", "--json")
    assert code == 0
    task_id = json.loads(out)["id"]
    code, out, _ = cli(project, "claim", "--as", "bob", agent="")
    assert (code, out.split()[:2]) == (0, ["claimed", f"{task_id}:"])
    code, _, err = cli(project, "done", task_id, agent="bob")
    assert code == EXIT_REFUSED
    assert err.count("\n") == 1
    assert "'docs/a.md' is missing" in err
    (project / "docs").mkdir()
    (project / "docs" / "a.md").write_text("# docs\n")
    code, out, _ = cli(project, "done", task_id, "--note", "ok", agent="bob")
    assert (code, out.strip()) == (0, f"done {task_id}: 1 artifact(s) verified")
    code, out, _ = cli(project, "show", task_id, "--verify")
    assert code == 0
    assert "all artifacts intact" in out
    (project / "docs" / "a.md").write_text("tampered\n")
    code, out, _ = cli(project, "list")
    assert "GHOST" in out
    code, out, _ = cli(project, "list", "--json")
    assert [t["ghost"] for t in json.loads(out)] == [True]
    code, out, _ = cli(project, "show", task_id, "--verify", "--json")
    assert json.loads(out)["problems"] == ["artifact 'docs/a.md' changed since completion"]


def test_refusals_and_unknown_ids(project: Path) -> None:
    code, _, err = cli(project, "claim")
    assert (code, err.strip()) == (EXIT_REFUSED, "claudeswarm: no claimable task")
    code, _, err = cli(project, "show", "01M82NRGXCCQB9B8WRRFN0M4J7")
    assert code == EXIT_USAGE
    assert "unknown task" in err
    code, out, _ = cli(project, "add", "mine", "--assign", "carol", "--json")
    task_id = json.loads(out)["id"]
    code, _, err = cli(project, "claim", task_id)
    assert code == EXIT_REFUSED
    assert "assigned to carol" in err
    code, _, _ = cli(project, "claim", task_id, agent="carol")
    assert code == 0
    for args in (["heartbeat", task_id], ["release", task_id], ["fail", task_id, "--reason", "x"]):
        code, _, err = cli(project, *args)
        assert code == EXIT_REFUSED, args
        assert "claimed by carol" in err
    assert cli(project, "heartbeat", task_id, agent="carol")[0] == 0
    assert cli(project, "release", task_id, agent="carol")[0] == 0
    assert cli(project, "claim", task_id, agent="carol")[0] == 0
    code, out, _ = cli(project, "fail", task_id, "--reason", "blocked upstream", agent="carol")
    assert (code, out.strip()) == (0, f"failed {task_id}: blocked upstream")
    code, out, _ = cli(project, "list", "--status", "failed", "--json")
    assert [t["reason"] for t in json.loads(out)] == ["blocked upstream"]
    assert cli(project, "list", "--status", "bogus")[0] == EXIT_USAGE
    assert cli(project, "add", "x", "--artifact", "../up.txt")[0] == EXIT_USAGE
    assert cli(project, "add", "x", "--after", "nope")[0] == EXIT_USAGE


def test_corrupt_file_warns_once_and_the_rest_work(project: Path) -> None:
    assert cli(project, "add", "good")[0] == 0
    pending = project / ".claudeswarm" / "tasks" / "pending"
    (pending / "00000-01M82NRGXCCQB9B8WRRFN0M4J7-o.json").write_text("{not json")
    code, out, err = cli(project, "list")
    assert code == 0
    assert "good" in out
    assert err.count("\n") == 1
    assert err.startswith("claudeswarm: warning: quarantined corrupt task file")
    code, out, err = cli(project, "claim")
    assert (code, err) == (0, "")
    assert "good" in out


def test_reap_and_events_in_the_log(project: Path) -> None:
    env = cli_env(project, CLAUDESWARM_AGENT="alice", CLAUDESWARM_TASK_LEASE_SECONDS="0")
    assert run_cli(project, "task", "add", "short lease", env=env).returncode == 0
    assert run_cli(project, "task", "claim", env=env).returncode == 0
    out = run_cli(project, "task", "reap", env=env)
    assert out.returncode == 0
    assert "-> pending: lease of alice expired" in out.stdout
    log = run_cli(project, "log", "--type", "task", "--json", env=env)
    events = [json.loads(line)["body"].split()[0] for line in log.stdout.splitlines()]
    assert events == ["created", "claimed", "reaped"]


def test_cli_claim_is_owned_by_the_registered_agent_process(project: Path) -> None:
    """A CLI call exits at once; its claim must live as long as the agent's process, and
    be recovered as soon as that process dies."""
    import subprocess
    import sys

    from claudeswarm.agents.identity import join
    from claudeswarm.swarm import open_swarm

    agent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        sw = open_swarm(str(project / ".claudeswarm"))
        join(sw, "bob", pid=agent.pid)
        assert cli(project, "add", "t")[0] == 0
        code, out, _ = cli(project, "claim", "--json", agent="bob")
        assert code == 0
        assert json.loads(out)["lease"]["pid"] == agent.pid
        code, out, _ = cli(project, "reap")
        assert (code, out.strip()) == (0, "nothing to reap")
    finally:
        agent.kill()
        agent.wait()
    code, out, _ = cli(project, "reap")
    assert code == 0
    assert "-> pending: owner bob" in out
    assert "is gone" in out
