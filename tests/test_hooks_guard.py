"""The pre-tool hook as a guard: every way an edit under another agent's live lease got
through (issue 9, section 3), each run the way Claude Code runs it: a fresh process with
the hook JSON on stdin.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, run_cli
from test_hooks import ME, cli, hook, two

from claudeswarm.errors import EXIT_REFUSED
from claudeswarm.hooks.events import MAX_INPUT
from claudeswarm.storage.paths import StatePaths, find_root

__all__ = ["two"]  # a fixture: imported so that pytest finds it here

QUICK = 8.0  # seconds: well under the 10 s timeout `hook install` writes


def edit(path: str, **more: Any) -> dict[str, Any]:
    """A PreToolUse Edit call as Claude Code sends it."""
    return {
        "session_id": "s1",
        "hook_event_name": "PreToolUse",
        "tool_name": "Edit",
        "tool_input": {"file_path": path, "old_string": "a", "new_string": "b"},
        **more,
    }


def run_hook(
    cwd: Path,
    event: str,
    payload: Any,
    env: dict[str, str],
    *,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """One hook as a fresh process in ``cwd`` with ``env`` (``hook`` fixes both)."""
    out = subprocess.run(
        [sys.executable, "-m", "claudeswarm", "hook", event],
        cwd=cwd,
        env=env,
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return subprocess.CompletedProcess(
        out.args, out.returncode, out.stdout.decode(), out.stderr.decode(errors="replace")
    )


def refused(out: subprocess.CompletedProcess[str]) -> bool:
    """True for a refusal naming ``other``, False for a silent pass; anything else fails."""
    if out.returncode == 2:
        assert out.stdout == "" and out.stderr.count("\n") == 1, out.stderr
        assert "refused: other (pane %902)" in out.stderr, out.stderr
        return True
    assert (out.returncode, out.stderr) == (0, ""), out
    return False


@pytest.fixture
def src(project: Path, two: StatePaths) -> Path:
    """``src/a.py`` exists and ``other`` holds an exclusive lease on it."""
    (project / "src").mkdir()
    (project / "src" / "a.py").write_text("a = 1\n")
    cli(project, "lock", "src/a.py", "--reason", "mine", "--as", "other")
    return project / "src"


# -- a) a symlink from outside into the project -----------------------------------------


def test_a_path_through_a_symlink_from_outside_into_the_project_is_checked(
    project: Path, src: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "link").symlink_to(src)  # the link lives outside, its target inside
    (tmp_path / "alias").symlink_to(project)  # the whole project under another name
    for spelling in (
        str(outside / "link" / "a.py"),
        str(tmp_path / "alias" / "src" / "a.py"),
        str(project / "src" / "a.py"),
    ):
        assert refused(hook(project, "pre-tool", edit(spelling))), spelling
        # the same rules as `lock`: the spelling names the held file there too
        out = run_cli(project, "lock", spelling, "--as", "me")
        assert out.returncode == EXIT_REFUSED, (spelling, out.stderr)
        assert "held by other" in out.stderr


def test_paths_that_really_leave_the_project_are_not_ours_to_guard(
    project: Path, two: StatePaths, tmp_path: Path
) -> None:
    cli(project, "lock", "**", "--as", "other")  # every project path
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / "ext").symlink_to(elsewhere)  # inside the project, leading out
    for spelling in (str(elsewhere / "x.py"), str(project / "ext" / "x.py"), "/etc/hosts"):
        out = hook(project, "pre-tool", edit(spelling))
        assert (out.returncode, out.stderr) == (0, ""), spelling
    assert refused(hook(project, "pre-tool", edit(str(project / "a.py"))))


# -- b) a relative path without cwd ------------------------------------------------------


def test_a_relative_path_without_cwd_is_taken_from_the_working_directory(
    project: Path, src: Path
) -> None:
    cli(project, "lock", "b.py", "--as", "other")  # at the root: must not be hit from src/
    env = cli_env(project, TMUX_PANE=ME)
    assert refused(run_hook(src, "pre-tool", edit("a.py"), env))  # src/a.py, held
    assert not refused(run_hook(src, "pre-tool", edit("b.py"), env))  # src/b.py, free
    # a cwd in the input wins over the process's own
    assert refused(run_hook(project, "pre-tool", edit("a.py", cwd=str(src)), env))
    assert refused(run_hook(project, "pre-tool", edit("./b.py", cwd=str(project)), env))


# -- c) nested repositories --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["submodule", "nested repository", "worktree"])
def test_a_hook_in_a_nested_repository_finds_the_enclosing_swarm(
    project: Path, two: StatePaths, kind: str
) -> None:
    inner = project / "vendor" / "lib"
    inner.mkdir(parents=True)
    if kind == "nested repository":
        (inner / ".git").mkdir()
    else:  # submodules and linked worktrees have a .git file naming the real git dir
        (inner / ".git").write_text("gitdir: ../../.git/modules/lib\n")
    (inner / "x.py").write_text("x = 1\n")
    cli(project, "lock", "vendor/lib/x.py", "--as", "other")
    env = cli_env(project, TMUX_PANE=ME)
    del env["CLAUDESWARM_HOME"]  # found from the working directory, as agents do
    for payload in (edit(str(inner / "x.py"), cwd=str(inner)), edit("x.py", cwd=str(inner))):
        assert refused(run_hook(inner, "pre-tool", payload, env)), payload
    # `lock` there uses the same swarm: refused, and no second state directory appears
    out = run_cli(inner, "lock", "vendor/lib/x.py", "--as", "me", env=env)
    assert out.returncode == EXIT_REFUSED, out.stderr
    assert not (inner / ".claudeswarm").exists()


def test_find_root_prefers_the_nearest_swarm_then_a_git_directory(tmp_path: Path) -> None:
    top = tmp_path / "top"
    sub = top / "a" / "sub"
    deep = sub / "d" / "e"
    deep.mkdir(parents=True)
    (top / ".git").mkdir()
    (sub / ".git").write_text("gitdir: ../../.git/modules/sub\n")
    assert find_root(deep) == top  # a .git file starts no swarm of its own
    (sub / ".git").unlink()
    (sub / ".git").mkdir()
    assert find_root(deep) == sub  # no swarm anywhere: the nearest .git directory
    (top / ".claudeswarm").mkdir()
    assert find_root(deep) == top  # an enclosing swarm wins over a nearer repository
    (sub / ".claudeswarm").mkdir()
    assert find_root(deep) == sub
    lone = tmp_path / "lone" / "w"
    (lone / "src").mkdir(parents=True)
    (lone / ".git").write_text("gitdir: /elsewhere/.git/worktrees/w\n")
    assert find_root(lone / "src") == lone  # a worktree of a repository elsewhere
    bare = tmp_path / "bare" / "x"
    bare.mkdir(parents=True)
    assert find_root(bare) == bare.resolve()


# -- d) a writer holding locks.lock --------------------------------------------------------


def test_a_held_writer_lock_neither_delays_nor_lets_the_edit_through(
    project: Path, src: Path, two: StatePaths
) -> None:
    cli(project, "lock", "docs/**", "--as", "me")  # so the hook also wants to refresh
    journal = two.file("locks.jsonl").read_bytes()
    env = cli_env(project, TMUX_PANE=ME, CLAUDESWARM_LOCK_REFRESH_INTERVAL_SECONDS="0")
    fd = os.open(two.file("locks.lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a writer that does not let go
        out = run_hook(project, "pre-tool", edit(str(src / "a.py")), env, timeout=QUICK)
        assert refused(out)
        out = run_hook(project, "pre-tool", edit(str(src / "b.py")), env, timeout=QUICK)
        assert not refused(out)
        post = run_hook(project, "post-tool", {"tool_name": "Edit"}, env, timeout=QUICK)
        assert (post.returncode, post.stderr) == (0, "")
        assert two.file("locks.jsonl").read_bytes() == journal  # no refresh got in
    finally:
        os.close(fd)
    # once the writer is gone the refresh happens again
    post = run_hook(project, "post-tool", {"tool_name": "Edit"}, env, timeout=QUICK)
    assert (post.returncode, post.stderr) == (0, "")
    assert two.file("locks.jsonl").read_bytes() != journal


# -- e) one set of path rules --------------------------------------------------------------


def test_file_names_are_taken_literally(project: Path, two: StatePaths) -> None:
    """A file name holding glob characters or controls is a name, not a pattern."""
    src = project / "src"
    src.mkdir()
    cli(project, "lock", "src/[[]a].py", "--as", "other")  # the file named `[a].py`
    cli(project, "lock", "src/*.md", "--as", "other")
    cli(project, "lock", "src/x/**", "--as", "other")
    blocked = ["src/[a].py", "src/a\nb.md", "src/x/\x1b[1m.py", "src/*.md"]
    free = ["src/a.py", "src/[a].md.bak", "src/?.py"]
    for rel in blocked + free:
        out = hook(project, "pre-tool", edit(str(project / rel)))
        assert refused(out) == (rel in blocked), rel


def test_the_hook_and_lock_agree_on_every_spelling(project: Path, src: Path) -> None:
    (project / "in").symlink_to("src")
    (src / "deep").mkdir()
    spellings = [
        "src/a.py",
        "./src/a.py",
        "src//a.py",
        "in/a.py",
        "src/deep/../a.py",
        "in/../src/a.py",
        "src/b.py",
        "in/b.py",
        "../proj/src/a.py",
    ]
    for rel in spellings:
        by_hook = refused(hook(project, "pre-tool", edit(rel, cwd=str(project))))
        out = run_cli(project, "lock", rel, "--as", "me")
        by_lock = out.returncode == EXIT_REFUSED
        assert by_hook == by_lock, (rel, out.stderr)
        if not by_lock:
            assert out.returncode == 0, out.stderr
            assert run_cli(project, "unlock", rel, "--as", "me").returncode == 0


# -- f) endless stdin ----------------------------------------------------------------------


def _bounded_memory() -> None:  # runs in the child: an endless read must not eat the box
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_an_oversize_input_is_one_line_and_a_bounded_read(project: Path, two: StatePaths) -> None:
    """Past the limit the input counts as ``{}`` (no edit tool call comes near 64 MiB),
    with one line saying so; an endless input is not read to its end."""
    env = cli_env(project, TMUX_PANE=ME)
    argv = [sys.executable, "-m", "claudeswarm", "hook", "pre-tool"]
    big = b"{" + b" " * MAX_INPUT  # one byte over
    out = subprocess.run(
        argv, cwd=project, env=env, input=big, capture_output=True, timeout=60, check=False
    )
    err = out.stderr.decode()
    assert out.returncode == 0 and err.count("\n") == 1, err
    assert err.startswith("claudeswarm hook pre-tool: hook input is larger than 64 MiB"), err
    with subprocess.Popen(["cat", "/dev/zero"], stdout=subprocess.PIPE) as zeros:
        assert zeros.stdout is not None
        try:
            out = subprocess.run(
                argv,
                cwd=project,
                env=env,
                stdin=zeros.stdout,
                capture_output=True,
                timeout=30,
                check=False,
                preexec_fn=_bounded_memory,
            )
        finally:
            zeros.kill()
    err = out.stderr.decode()
    assert out.returncode == 0 and err.count("\n") == 1, err
    assert "larger than 64 MiB" in err and "Traceback" not in err


# -- g) a reader that goes away ------------------------------------------------------------


def closed_stdout(
    cwd: Path, args: list[str], env: dict[str, str], data: bytes = b"{}"
) -> Iterator[subprocess.CompletedProcess[bytes]]:
    """Run the CLI with its stdout a pipe whose reader is already gone (``| true``),
    once block-buffered (as agents run it) and once unbuffered (``PYTHONUNBUFFERED``)."""
    for unbuffered in ("", "1"):
        r, w = os.pipe()
        os.close(r)
        try:
            yield subprocess.run(
                [sys.executable, "-m", "claudeswarm", *args],
                cwd=cwd,
                env={**env, "PYTHONUNBUFFERED": unbuffered},
                input=data,
                stdout=w,
                stderr=subprocess.PIPE,
                timeout=QUICK * 4,
                check=False,
            )
        finally:
            os.close(w)


def test_a_hook_whose_reader_is_gone_exits_as_it_decided(project: Path, src: Path) -> None:
    cli(project, "send", "me", "hello", "--as", "other")
    env = cli_env(project, TMUX_PANE=ME)
    for args, data, code in (
        (["hook", "session-start"], b"{}", 0),
        (["hook", "session-start", "--json"], b"{}", 0),
        (["hook", "stop"], b"{}", 0),  # prints a decision: a message waits
        (["hook", "pre-tool", "--json"], json.dumps(edit(str(src / "a.py"))).encode(), 2),
        (["hook", "prompt"], b"{}", 0),
    ):
        for out in closed_stdout(project, args, env, data):
            err = out.stderr.decode()
            assert out.returncode == code, (args, err)
            assert "Traceback" not in err and "Broken" not in err, (args, err)
            assert err.count("\n") == (1 if code == 2 else 0), (args, err)


def test_commands_whose_reader_is_gone_end_quietly(project: Path, src: Path) -> None:
    for n in range(3):
        cli(project, "send", "me", f"note {n}", "--as", "other")
    env = cli_env(project, CLAUDESWARM_AGENT="me", CLAUDESWARM_NUDGE="never")
    for args in (
        ["log"],
        ["log", "-n", "1"],
        ["log", "--json"],
        ["log", "--follow"],
        ["inbox", "--peek", "--follow"],
        ["inbox", "--peek"],
        ["locks"],
        ["who", "src/a.py"],
        ["agents"],
        ["config"],
        ["monitor", "--once"],
        ["send", "other", "sent all the same"],
    ):
        for out in closed_stdout(project, args, env):
            assert (out.returncode, out.stderr.decode()) == (0, ""), args
    assert cli(project, "log").stdout.count("sent all the same") == 2
    refused = closed_stdout(project, ["lock", "src/a.py"], env)
    assert [out.returncode for out in refused] == [EXIT_REFUSED] * 2  # its line still said
