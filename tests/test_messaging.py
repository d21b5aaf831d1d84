"""send / broadcast / inbox through the library and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FakeClock, cli_env, register, run_cli, stand_in_pid

from claudeswarm.agents import identity
from claudeswarm.errors import (
    EXIT_REFUSED,
    EXIT_USAGE,
    InvalidArgumentError,
    RefusedError,
    UsageError,
)
from claudeswarm.messages import service as messaging
from claudeswarm.swarm import Swarm


@pytest.fixture
def team(swarm: Swarm) -> Swarm:
    for name in ("alice", "bob", "carol"):  # each its own process, none of them this one
        identity.join(swarm, name, pid=stand_in_pid())
    return swarm


def test_inbox_limit_shows_oldest_and_keeps_the_rest(team: Swarm) -> None:
    sent = [messaging.send(team, "alice", ["bob"], f"m{i}").id for i in range(8)]
    first = messaging.inbox(team, "bob", limit=5)
    assert [m.id for m in first.messages] == sent[:5]
    assert first.more == 3
    rest = messaging.inbox(team, "bob")
    assert [m.id for m in rest.messages] == sent[5:]
    assert messaging.inbox(team, "bob").messages == []


def test_unread_survives_rotation_and_reader_restart(team: Swarm) -> None:
    ids = [messaging.send(team, "alice", ["bob"], f"m{i}").id for i in range(4)]
    assert [m.id for m in messaging.inbox(team, "bob", limit=1).messages] == ids[:1]
    team.log.rotate()
    ids.append(messaging.send(team, "carol", ["bob"], "after rotation").id)
    team.log.rotate()
    restarted = Swarm(team.paths, team.settings, team.clock)  # a fresh reader
    assert [m.id for m in messaging.inbox(restarted, "bob").messages] == ids[1:]


def test_peek_marks_nothing_and_broadcast_reaches_all_but_sender(team: Swarm) -> None:
    b = messaging.broadcast(team, "alice", "standup in 5")
    assert [m.id for m in messaging.inbox(team, "bob", peek=True).messages] == [b.id]
    assert [m.id for m in messaging.inbox(team, "bob").messages] == [b.id]
    assert [m.id for m in messaging.inbox(team, "carol").messages] == [b.id]
    assert messaging.inbox(team, "alice").messages == []


def test_other_agents_messages_are_not_in_my_inbox(team: Swarm) -> None:
    messaging.send(team, "alice", ["carol"], "for carol only")
    mine = messaging.send(team, "alice", ["bob", "carol"], "for both")
    assert [m.id for m in messaging.inbox(team, "bob").messages] == [mine.id]


@pytest.mark.parametrize(
    ("to", "body", "mtype", "match"),
    [
        (["bob"], "", "info", "empty"),
        (["bob"], "   \n", "info", "empty"),
        (["bob"], "x" * 10241, "info", "limit"),
        (["bob"], "hi", "gossip", "unknown message type"),
        (["zed"], "hi", "info", "unknown recipient"),
        (["alice"], "hi", "info", "yourself"),
        (["all"], "hi", "info", "broadcast"),
        (["Bob!"], "hi", "info", "invalid recipient"),
        ([], "hi", "info", "no recipient"),
    ],
)
def test_bad_sends_are_refused_and_log_nothing(
    team: Swarm, to: list[str], body: str, mtype: str, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        messaging.send(team, "alice", to, body, type=mtype)
    assert not team.paths.log.exists() or team.paths.log.read_bytes() == b""


def test_body_at_the_cap_is_accepted_in_utf8_bytes(team: Swarm) -> None:
    cap = team.settings.body_max_bytes
    messaging.send(team, "alice", ["bob"], "é" * (cap // 2))  # 2 bytes each: exactly the cap
    with pytest.raises(UsageError, match="limit"):
        messaging.send(team, "alice", ["bob"], "é" * (cap // 2) + "x")


def test_reply_to_must_be_an_id(team: Swarm) -> None:
    q = messaging.send(team, "alice", ["bob"], "question?", type="question")
    a = messaging.send(team, "bob", ["alice"], "answer", type="answer", reply_to=q.id)
    assert a.reply_to == q.id
    with pytest.raises(InvalidArgumentError) as bad:
        messaging.send(team, "bob", ["alice"], "x", reply_to="not-an-id")
    assert bad.value.param == "reply_to"
    assert str(bad.value) == "reply_to 'not-an-id' is not a message id"  # no CLI flag


def test_ids_sort_in_send_order(team: Swarm, clock: FakeClock) -> None:
    ids = []
    for i in range(50):
        ids.append(messaging.send(team, "alice", ["bob", "carol"][i % 2 :][:1], f"n{i}").id)
        if i % 7 == 0:
            clock.advance(0.001)
    assert ids == sorted(ids) and len(set(ids)) == 50


def test_a_registered_pane_cannot_send_as_someone_else(
    team: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(team.paths, "dave", pane="%7")
    monkeypatch.setenv("TMUX_PANE", "%7")
    assert messaging.resolve_sender(team, None) == "dave"
    with pytest.raises(RefusedError, match="cannot act as 'alice'"):
        messaging.resolve_sender(team, "alice")


def test_cli_bad_input_is_one_line_with_documented_codes(project: Path) -> None:
    for name in ("alice", "bob"):
        run_cli(project, "join", name)
    cases = [
        (("send", "--as", "alice", "bob", ""), EXIT_USAGE),
        (("send", "--as", "alice", "bob", "x" * 20000), EXIT_USAGE),
        (("send", "--as", "alice", "bob", "hi", "--type", "gossip"), EXIT_USAGE),
        (("send", "--as", "alice", "nobody", "hi"), EXIT_USAGE),
        (("inbox", "--as", "bob", "--limit", "0"), EXIT_USAGE),
        (("log", "--since", "yesterday-ish"), EXIT_USAGE),
    ]
    for args, code in cases:
        out = run_cli(project, *args)
        assert out.returncode == code, (args, out.stderr)
        assert out.stderr.startswith("claudeswarm: ") and out.stderr.count("\n") == 1, out.stderr
        assert "Traceback" not in out.stderr
    assert not (project / ".claudeswarm" / "messages.jsonl").exists()


def test_cli_symlinked_log_is_a_one_line_error(project: Path, tmp_path: Path) -> None:
    run_cli(project, "join", "alice")
    run_cli(project, "join", "bob")
    assert run_cli(project, "send", "--as", "alice", "bob", "first").returncode == 0
    log = project / ".claudeswarm" / "messages.jsonl"
    saved = log.read_bytes()
    log.rename(tmp_path / "real.jsonl")
    log.symlink_to(tmp_path / "real.jsonl")
    out = run_cli(project, "send", "--as", "alice", "bob", "second")
    assert out.returncode == 1 and "symlink" in out.stderr and out.stderr.count("\n") == 1
    assert (tmp_path / "real.jsonl").read_bytes() == saved  # nothing written through it


def test_cli_rate_limit_holds_across_processes(project: Path) -> None:
    """With 10 per minute configured, the 11th separate send process is refused, says when
    to retry, and logs nothing."""
    run_cli(project, "init")
    (project / ".claudeswarm" / "config.toml").write_text("rate_per_sender = 10\n")
    run_cli(project, "join", "alice")
    run_cli(project, "join", "bob")
    env = cli_env(project)
    for i in range(10):
        out = run_cli(project, "send", "--as", "alice", "bob", f"message {i}", env=env)
        assert out.returncode == 0, out.stderr
    refused = run_cli(project, "send", "--as", "alice", "bob", "message 10", env=env)
    assert refused.returncode == EXIT_REFUSED
    assert "retry in" in refused.stderr and refused.stderr.count("\n") == 1
    log = run_cli(project, "log", "-n", "100", "--json")
    bodies = [json.loads(line)["body"] for line in log.stdout.splitlines()]
    assert bodies == [f"message {i}" for i in range(10)]


def test_cli_symlinked_state_dir_is_refused(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = project / "linked-state"
    link.symlink_to(elsewhere)
    out = run_cli(project, "--state-dir", str(link), "init")
    assert out.returncode == 1
    assert "symlink" in out.stderr
    assert list(elsewhere.iterdir()) == []


def test_ids_stay_unique_across_fork_and_threads() -> None:
    """A forked child must not continue its parent's id sequence inside the same
    millisecond, and threads must not draw the same id."""
    import os
    import threading

    from claudeswarm.messages.record import new_id

    now = 1_800_000_000.0
    new_id(now)  # the parent's state now holds this millisecond
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: same clock reading as the parent
        os.write(w, " ".join(new_id(now) for _ in range(50)).encode())
        os._exit(0)
    os.close(w)
    parent = {new_id(now) for _ in range(50)}
    os.waitpid(pid, 0)
    child = set(os.read(r, 1 << 16).decode().split())
    os.close(r)
    assert len(child) == 50
    assert parent.isdisjoint(child)
    drawn: list[str] = []

    def draw() -> None:
        drawn.extend(new_id(now) for _ in range(2000))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(drawn)) == len(drawn) == 8000


def test_corrupt_registry_is_one_line_with_the_remedy(project: Path) -> None:
    run_cli(project, "join", "alice")
    run_cli(project, "join", "bob")
    (project / ".claudeswarm" / "agents.json").write_text('{"v":1,"agents":{"x":')
    out = run_cli(project, "send", "--as", "alice", "bob", "hi")
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1
    assert "agents.json" in out.stderr
    assert "claudeswarm join" in out.stderr
    assert run_cli(project, "join", "alice").returncode == 0  # a writer rebuilds it
    kept = list((project / ".claudeswarm" / "quarantine").glob("agents.json.*"))
    assert kept
    assert run_cli(project, "join", "bob").returncode == 0
    assert run_cli(project, "send", "--as", "alice", "bob", "hi").returncode == 0
