"""The lease journal's identity (issue 9, item 1): a reader that keeps its view of
``locks.jsonl`` across other agents' compactions must never take another file that got
the same inode number (ext4 hands out a freed one at once) for the journal it read.

The bad outcome, on a journal identified by (dev, inode) and size: the stale reader reads
the new file from its old offset, quarantines the "bad" line it lands in, compacts its
stale view over the journal (a released lease returns, a live one vanishes) and a third
agent is granted a path inside a live exclusive lease.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import FakeClock, cli_env, run_cli, settings
from inodes import reuse_inode

from claudeswarm.errors import EXIT_REFUSED, LockConflictError, RefusedError
from claudeswarm.locks.manager import Holder, Lease, LockManager, list_leases, state_files
from claudeswarm.storage.files.leases import LeaseStore
from claudeswarm.storage.paths import StatePaths, ensure_state
from claudeswarm.swarm import Swarm

STRESS = max(1, int(os.environ.get("CLAUDESWARM_STRESS", "0") or 0))
LONG = "a long reason, so that this lease's record is longer than the one it replaces " * 3


def mgr(swarm: Swarm, agent: str) -> LockManager:
    return LockManager(swarm, Holder.for_process(agent))


def compact(swarm: Swarm) -> None:
    """What another agent's compaction does: the journal is rewritten into a new file."""
    store = LeaseStore(swarm.paths, swarm.settings, durable=False)
    with store.write() as table:
        store.compact(table)


def attempt(manager: LockManager, pattern: str) -> Lease | RefusedError:
    try:
        return manager.acquire([pattern])
    except RefusedError as exc:
        return exc


def assert_no_overlap(swarm: Swarm) -> None:
    """q's live ``src/**`` is still there and refuses r, and nothing was quarantined."""
    with pytest.raises(LockConflictError) as refused:
        mgr(swarm, "r").acquire(["src/app.py"])
    assert refused.value.agent == "q"
    assert "q" in {lease.agent for lease in list_leases(swarm)}
    assert list(swarm.paths.quarantine.glob("locks.jsonl.*")) == []


def test_a_stale_view_never_trusts_another_file_with_the_same_inode(
    paths: StatePaths, clock: FakeClock
) -> None:
    """Deterministic on any filesystem: the journal the waiter saw is given the content of
    the current (compacted) journal in place, so the path names the same inode again with
    a larger size and entirely different content, as after inode reuse."""
    sw = Swarm(paths, settings(), clock)
    journal = state_files(paths)[0]
    h, w = mgr(sw, "h"), mgr(sw, "w")
    h.acquire(["b.py"])
    assert isinstance(attempt(w, "b.py"), LockConflictError)  # w's view: h holds b.py
    seen = journal.stat()
    aside = journal.with_name("aside")
    os.link(journal, aside)  # keeps the inode w saw
    h.release()
    mgr(sw, "q").acquire(["src/**"], reason=LONG)
    compact(sw)
    current = journal.read_bytes()
    assert len(current) > seen.st_size
    with aside.open("r+b") as fh:
        fh.write(current)
        fh.truncate()
    os.replace(aside, journal)
    assert journal.stat().st_ino == seen.st_ino

    got = attempt(w, "b.py")  # w resumes
    assert_no_overlap(sw)
    assert isinstance(got, Lease), got  # h released b.py long ago: w gets it
    assert sorted(lease.agent for lease in list_leases(sw)) == ["q", "w"]


def test_a_same_size_file_written_in_the_same_clock_tick_is_not_trusted(
    paths: StatePaths, clock: FakeClock
) -> None:
    """A reader that looked just after a write cannot tell a same-size file with the same
    inode and mtime (made within one timestamp tick) by ``lstat``: it must read the header
    again. Here the journal it saw gets a same-size journal's content, and its mtime."""
    sw = Swarm(paths, settings(), clock)
    journal = state_files(paths)[0]
    a1 = mgr(sw, "a1")
    a1.acquire(["x.py"])
    compact(sw)
    reader = LockManager(sw)
    assert [lease.agent for lease in reader.list()] == ["a1"]
    seen = journal.stat()
    aside = journal.with_name("aside")
    os.link(journal, aside)
    a1.release()
    mgr(sw, "a2").acquire(["x.py"])
    compact(sw)
    other = journal.read_bytes()
    assert len(other) == seen.st_size
    with aside.open("r+b") as fh:
        fh.write(other)
        fh.truncate()
    os.utime(aside, ns=(seen.st_atime_ns, seen.st_mtime_ns))
    os.replace(aside, journal)
    now = journal.stat()
    assert (now.st_ino, now.st_size, now.st_mtime_ns) == (
        seen.st_ino,
        seen.st_size,
        seen.st_mtime_ns,
    )
    assert [lease.agent for lease in reader.list()] == ["a2"]
    assert [lease.agent for lease in reader.blockers("x.py")] == ["a2"]


def test_a_journal_of_an_older_version_without_an_epoch(
    paths: StatePaths, clock: FakeClock
) -> None:
    """A header without an epoch (written before epochs existed) is read, never trusted
    across changes, and given an epoch by the next writer; no lease is lost."""
    from claudeswarm.locks.lease import encode, grant_record
    from claudeswarm.storage import json as _json

    sw = Swarm(paths, settings(), clock)
    journal = state_files(paths)[0]
    held = Lease("old", None, os.getpid(), None, ("src/**",), "exclusive", "", 1.0, 1.0, 9e9, 7)
    journal.write_bytes(encode({"op": "base", "v": 1, "next": 8}) + encode(grant_record(held)))
    reader = LockManager(sw)
    assert reader.list() == [held]
    with pytest.raises(LockConflictError, match="held by old"):
        mgr(sw, "new").acquire(["src/a.py"])
    header = _json.loads(journal.read_bytes().split(b"\n")[1])
    assert isinstance(header["epoch"], str)
    assert header["next"] == 8
    assert reader.list() == [held]
    assert mgr(sw, "new").acquire(["lib/a.py"]).generation == 8


def force_reuse(swarm: Swarm, ino: int) -> bool:
    """Compact until the journal is a new file with inode number ``ino`` (False if that
    never happens: another process on this machine may hold that number meanwhile)."""
    journal = state_files(swarm.paths)[0]
    for _ in range(20):
        reused = reuse_inode(swarm.paths.state, ino, lambda: compact(swarm))
        if reused and journal.stat().st_ino == ino:
            return True
    return False


def stale_waiter_meets_reused_inode(root: Path) -> bool:
    (root / ".git").mkdir(parents=True)
    paths = ensure_state(StatePaths(root, root / ".claudeswarm"))
    sw = Swarm(paths, settings(), FakeClock())
    journal = state_files(paths)[0]
    h, w = mgr(sw, "h"), mgr(sw, "w")
    h.acquire(["b.py"])
    assert isinstance(attempt(w, "b.py"), LockConflictError)
    seen = journal.stat()
    h.release()
    mgr(sw, "q").acquire(["src/**"], reason=LONG)
    compact(sw)  # the inode w saw is free now
    if not force_reuse(sw, seen.st_ino):
        return False
    assert journal.stat().st_size > seen.st_size
    got = attempt(w, "b.py")
    assert_no_overlap(sw)
    assert isinstance(got, Lease), got
    return True


@pytest.mark.stress
def test_a_waiter_resuming_after_real_inode_reuse_grants_nothing_twice(tmp_path: Path) -> None:
    """The same sequence with real reuse: the filesystem gives a later compaction's file
    the inode number of the journal the waiter read (forced by creating files)."""
    reused = [stale_waiter_meets_reused_inode(tmp_path / f"p{n}") for n in range(3 * STRESS)]
    if not any(reused):
        pytest.skip("this filesystem does not reuse freed inode numbers")


# -- the same through the CLI, with a stopped `lock --wait` -------------------------------


def has_open(pid: int, target: Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False  # exited
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(target):
                return True
        except FileNotFoundError:
            continue
    return False


def until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.005)


def one_attempt(proc: subprocess.Popen[str], sidecar: Path) -> None:
    """Let ``proc`` (a ``lock --wait``) make one whole attempt, however it was paused: we
    hold the sidecar flock, resume it, see it open the sidecar (blocked on us), let go
    and see it close the sidecar again (its attempt is over)."""
    import fcntl

    fd = os.open(sidecar, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.kill(proc.pid, signal.SIGCONT)
        until(lambda: has_open(proc.pid, sidecar) or proc.poll() is not None, "it locks")
    finally:
        os.close(fd)
    until(lambda: not has_open(proc.pid, sidecar), "its attempt ends")


def stop_between_attempts(proc: subprocess.Popen[str], sidecar: Path) -> None:
    while True:
        os.kill(proc.pid, signal.SIGSTOP)
        if not has_open(proc.pid, sidecar):
            return
        os.kill(proc.pid, signal.SIGCONT)
        until(lambda: not has_open(proc.pid, sidecar), "its attempt ends")


@pytest.fixture
def waiters() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=30)


def stopped_waiter_meets_reused_inode(root: Path, waiters: list[subprocess.Popen[str]]) -> bool:
    (root / ".git").mkdir(parents=True)
    assert run_cli(root, "lock", "--as", "h", "b.py").returncode == 0
    paths = StatePaths(root, root / ".claudeswarm")
    sidecar = Path(os.path.realpath(paths.file("locks.lock")))
    journal = state_files(paths)[0]
    w = subprocess.Popen(
        [sys.executable, "-m", "claudeswarm", "lock", "--as", "w", "b.py", "--wait", "120s"],
        cwd=root,
        env=cli_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    waiters.append(w)
    one_attempt(w, sidecar)  # refused: b.py is h's
    stop_between_attempts(w, sidecar)
    seen = journal.stat()
    assert run_cli(root, "unlock", "--as", "h", "b.py").returncode == 0
    assert run_cli(root, "lock", "--as", "q", "src/**", "--reason", LONG).returncode == 0
    sw = Swarm(paths, settings())
    compact(sw)  # the inode w saw is free now
    if not force_reuse(sw, seen.st_ino):
        return False
    assert journal.stat().st_size > seen.st_size
    one_attempt(w, sidecar)  # w resumes and looks at the table once
    r = run_cli(root, "lock", "--as", "r", "src/app.py")
    assert r.returncode == EXIT_REFUSED, f"r was granted a path inside q's src/**: {r}"
    assert "held by q" in r.stderr
    out, err = w.communicate(timeout=60)
    assert w.returncode == 0, err
    assert "locked b.py" in out
    assert list(paths.quarantine.glob("locks.jsonl.*")) == []
    assert sorted(lease.agent for lease in list_leases(sw)) == ["q", "w"]
    return True


@pytest.mark.stress
def test_stopped_lock_wait_resumes_after_inode_reuse_without_a_double_grant(
    project: Path, waiters: list[subprocess.Popen[str]]
) -> None:
    """The issue's reproduction through the CLI: h locks b.py; w runs ``lock b.py --wait``
    and is stopped (SIGSTOP) between attempts; h unlocks; q locks ``src/**``; the journal
    is compacted until it has the inode number w saw; w resumes. ``src/**`` must survive,
    r must be refused ``src/app.py``, and w gets b.py. A trial whose inode another process
    on this machine took meanwhile is started over in a fresh project."""
    done = 0
    for n in range(5 * STRESS + 5):
        done += stopped_waiter_meets_reused_inode(project / f"t{n}", waiters)
        if done == STRESS:
            return
    if not done:
        pytest.skip("this filesystem does not reuse freed inode numbers")
