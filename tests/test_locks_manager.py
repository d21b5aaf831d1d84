"""LockManager behaviour with a fake clock: modes, leases, proof of death, ownership,
read-only looking, and damaged state files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from conftest import FakeClock, settings

from claudeswarm.agents import registry
from claudeswarm.agents.registry import AgentRecord
from claudeswarm.errors import (
    EXIT_UNAVAILABLE,
    CorruptLeaseTableError,
    LockConflictError,
    LockTimeout,
    RefusedError,
    StateError,
    UnavailableError,
    UsageError,
)
from claudeswarm.locks.manager import Holder, LockManager, list_leases, state_files
from claudeswarm.messages.service import recent
from claudeswarm.swarm import Swarm


def mgr(swarm: Swarm, agent: str, **kw: object) -> LockManager:
    return LockManager(swarm, Holder.for_process(agent, **kw))  # type: ignore[arg-type]


def system_notes(swarm: Swarm) -> list[str]:
    return [m.body for m in recent(swarm, 50) if m.type == "system"]


def test_exclusive_and_shared_modes(swarm: Swarm) -> None:
    a, b, c = mgr(swarm, "a"), mgr(swarm, "b"), mgr(swarm, "c")
    a.acquire(["docs/**"], mode="shared")
    b.acquire(["docs/*.md"], mode="shared")
    with pytest.raises(RefusedError, match="shared lock on 'docs/"):
        c.acquire(["docs/x.md"])
    c.acquire(["src/**"])
    with pytest.raises(RefusedError, match="held by c"):
        a.acquire(["src/x.py"], mode="shared")


def test_refusal_is_one_line_naming_holder_pane_pattern_age_reason(
    swarm: Swarm, clock: FakeClock
) -> None:
    holder = Holder("backend", "%3", os.getpid(), registry.process_start_time(os.getpid()))
    LockManager(swarm, holder).acquire(["src/**/*.py"], reason="refactor auth")
    clock.advance(4 * 60 + 5)
    with pytest.raises(LockConflictError) as err:
        mgr(swarm, "frontend").acquire(["src/**/*.py"])
    assert str(err.value) == "lock on 'src/**/*.py' held by backend (pane %3) for 4m: refactor auth"
    assert err.value.exit_code == 3


def test_all_or_nothing_and_same_agent_is_reentrant(swarm: Swarm) -> None:
    a, b = mgr(swarm, "a"), mgr(swarm, "b")
    a.acquire(["src/a.py"])
    with pytest.raises(RefusedError):
        b.acquire(["src/b.py", "src/*.py"])
    assert [lease.agent for lease in list_leases(swarm)] == ["a"]
    a.acquire(["src/**"])  # overlapping its own lease: fine
    assert len(list_leases(swarm)) == 2


def test_ttl_expiry_breaks_only_after_ttl_and_is_announced(swarm: Swarm, clock: FakeClock) -> None:
    a, b = mgr(swarm, "a"), mgr(swarm, "b")
    a.acquire(["src/**"], ttl=60)
    clock.advance(50)
    a.refresh()
    clock.advance(50)  # 100s after acquire but 50s after the heartbeat
    with pytest.raises(RefusedError):
        b.acquire(["src/x.py"])
    assert system_notes(swarm) == []
    clock.advance(11)
    assert b.acquire(["src/x.py"]).agent == "b"
    notes = system_notes(swarm)
    assert len(notes) == 1
    assert "'src/**' held by a" in notes[0]
    assert "expired" in notes[0]
    with pytest.raises(RefusedError, match="broken"):
        a.release()
    with pytest.raises(RefusedError, match="a holds no lock"):
        a.refresh(["src/**"])
    assert [lease.agent for lease in list_leases(swarm)] == ["b"]


def test_refresh_is_cheap_within_the_interval(swarm: Swarm, clock: FakeClock) -> None:
    a = mgr(swarm, "a")
    a.acquire(["src/**"])
    journal = state_files(swarm.paths)[0]
    clock.advance(1)
    a.refresh()
    size = journal.stat().st_size
    clock.advance(5)
    assert a.refresh()[0].heartbeat == clock.now - 6
    assert journal.stat().st_size == size  # nothing written
    clock.advance(swarm.settings.lock_refresh_interval_seconds)
    assert a.refresh()[0].heartbeat == clock.now
    assert journal.stat().st_size > size


def test_release_acts_only_on_our_own_leases(swarm: Swarm) -> None:
    a, b = mgr(swarm, "a"), mgr(swarm, "b")
    a.acquire(["src/a.py", "src/b.py"])
    with pytest.raises(RefusedError, match=r"b holds no lock on 'src/a\.py' \(held by a\)"):
        b.release(["src/a.py"])
    with pytest.raises(RefusedError):
        a.release(["src/a.py", "src/zzz.py"])  # one not held: nothing released
    assert list_leases(swarm)[0].patterns == ("src/a.py", "src/b.py")
    a.release(["./src/a.py"])
    assert list_leases(swarm)[0].patterns == ("src/b.py",)
    b.acquire(["src/a.py"])
    a.release()
    assert [lease.agent for lease in list_leases(swarm)] == ["b"]


def test_proof_of_death_from_pid_reuse_and_registry(swarm: Swarm) -> None:
    me = os.getpid()
    LockManager(swarm, Holder("reused", None, me, 1)).acquire(["a/**"])
    LockManager(swarm, Holder("left", "%7", me, None)).acquire(["b/**"])
    LockManager(swarm, Holder("moved", "%8", me, None)).acquire(["c/**"])
    LockManager(swarm, Holder("alive", "%9", me, None)).acquire(["d/**"])

    def change(agents: registry.Agents) -> tuple[registry.Agents, None]:
        agents["left"] = AgentRecord("left", pane="%7", state="gone")
        agents["moved"] = AgentRecord("moved", pane="%12")
        agents["alive"] = AgentRecord("alive", pane="%9")
        return agents, None

    registry.update(swarm.paths, change)
    other = mgr(swarm, "other")
    states = {lease.agent: other.state_of(lease) for lease in other.list()}
    assert states["reused"].startswith("dead: pid")
    assert states["left"] == "dead: agent left is gone"
    assert states["moved"].startswith("dead: agent moved left pane %8")
    assert states["alive"] == "live"
    other.acquire(["a/x", "b/x", "c/x"])
    with pytest.raises(RefusedError, match="alive"):
        other.acquire(["d/x"])
    assert len(system_notes(swarm)) == 3


def test_looking_is_read_only(swarm: Swarm, clock: FakeClock) -> None:
    LockManager(swarm, Holder("ghost", None, 2**22 + 12345, 1)).acquire(["src/**"], ttl=1)
    clock.advance(100)
    journal = state_files(swarm.paths)[0]
    before = (journal.read_bytes(), journal.stat().st_mtime_ns)
    viewer = LockManager(swarm)
    who = viewer.who("src/a.py")
    assert [lease.agent for lease in who.leases] == ["ghost"]
    assert who.states[0].startswith("dead")
    assert [lease.agent for lease in viewer.list()] == ["ghost"]
    assert [lease.agent for lease in list_leases(swarm)] == ["ghost"]
    assert (journal.read_bytes(), journal.stat().st_mtime_ns) == before
    assert not swarm.paths.log.exists()
    with pytest.raises(UsageError):
        viewer.acquire(["x"])


def test_wait_wakes_when_the_holder_releases(swarm: Swarm) -> None:
    a, b = mgr(swarm, "a"), mgr(swarm, "b")
    a.acquire(["src/**"])
    timer = threading.Timer(0.3, a.release)
    timer.start()
    try:
        assert b.acquire(["src/x.py"], wait=60).agent == "b"
    finally:
        timer.cancel()
    with pytest.raises(TimeoutError) as timed_out:
        a.acquire(["src/x.py"], wait=0.2)
    err = timed_out.value
    assert isinstance(err, LockTimeout) and isinstance(err, UnavailableError)
    assert (err.what, err.timeout, err.exit_code) == ("'src/x.py'", 0.2, EXIT_UNAVAILABLE)
    assert isinstance(err.blocker, LockConflictError) and err.blocker.agent == "b"
    assert str(err).startswith("timed out after 0.2s waiting for 'src/x.py'; lock on 'src/x.py'")


def test_compaction_keeps_live_leases_and_other_readers_follow(
    paths: Path, clock: FakeClock
) -> None:
    sw = Swarm(paths, settings(lock_compact_bytes=2048), clock)  # type: ignore[arg-type]
    a, b = mgr(sw, "a"), mgr(sw, "b")
    keep = a.acquire(["keep/**"], reason="long edit")
    reader = LockManager(sw)
    assert len(reader.list()) == 1
    inodes = set()
    for i in range(200):
        b.acquire([f"tmp/{i}.py"])
        b.release()
        inodes.add(state_files(sw.paths)[0].stat().st_ino)
    assert len(inodes) > 1  # it was compacted
    assert state_files(sw.paths)[0].stat().st_size < 4096
    assert reader.list() == [keep]
    assert b.acquire(["x"]).generation > 200


def test_corrupt_line_is_quarantined_and_nothing_is_lost(swarm: Swarm) -> None:
    a, b = mgr(swarm, "a"), mgr(swarm, "b")
    a.acquire(["src/**"])
    journal = state_files(swarm.paths)[0]
    with journal.open("ab") as fh:
        fh.write(b'\n{"op":"grant","lease":{"agent":"evil",NaN}}\n')
    with pytest.raises(RefusedError, match="held by a"):
        b.acquire(["src/a.py"])
    assert b"evil" not in journal.read_bytes()
    bad = list(swarm.paths.quarantine.glob("locks.jsonl.*.bad"))
    assert len(bad) == 1
    assert "evil" in bad[0].read_text()


def test_garbage_table_is_a_clear_error_until_repaired(swarm: Swarm) -> None:
    a = mgr(swarm, "a")
    a.acquire(["src/**"])
    journal = state_files(swarm.paths)[0]
    journal.write_bytes(b"\x00\xffnot a journal at all\n")
    for call in (lambda: mgr(swarm, "b").acquire(["src/a.py"]), lambda: list_leases(swarm)):
        with pytest.raises(CorruptLeaseTableError, match=r"corrupt .*until it is repaired"):
            call()
    assert journal.read_bytes().startswith(b"\x00\xff")  # nothing was overwritten
    where = LockManager(swarm).repair()
    assert where is not None
    assert where.read_bytes().startswith(b"\x00\xff")
    assert list_leases(swarm) == []
    assert mgr(swarm, "b").acquire(["src/a.py"]).agent == "b"
    assert LockManager(swarm).repair() is None


@pytest.mark.parametrize("name", ["locks.jsonl", "locks.lock"])
def test_planted_symlink_is_refused(swarm: Swarm, tmp_path: Path, name: str) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"precious\n")
    swarm.paths.file(name).symlink_to(target)
    with pytest.raises(StateError, match="symlink"):
        mgr(swarm, "a").acquire(["src/a.py"])
    if name == "locks.jsonl":
        with pytest.raises(StateError, match="symlink"):
            list_leases(swarm)
    assert target.read_bytes() == b"precious\n"


def test_stale_temp_file_from_a_killed_compaction_is_harmless(swarm: Swarm) -> None:
    stale = swarm.paths.file(".locks.jsonl.99999.tmp")
    stale.write_bytes(b'{"op":"base","v":1,"next":1}\n{"op":"grant"')
    a = mgr(swarm, "a")
    a.acquire(["src/**"])
    assert [lease.agent for lease in list_leases(swarm)] == ["a"]


def test_bad_arguments(swarm: Swarm) -> None:
    a = mgr(swarm, "a")
    for bad in ([], ["../outside"], ["src/*/../x"]):
        with pytest.raises(UsageError):
            a.acquire(bad)
    with pytest.raises(UsageError):
        a.acquire(["x"], mode="weird")
    with pytest.raises(UsageError):
        a.acquire(["x"], ttl=0)
    with pytest.raises(UsageError):
        a.acquire(["x"], reason="r" * 501)


def test_a_failed_announcement_never_hides_a_granted_lease(swarm: Swarm, tmp_path: Path) -> None:
    LockManager(swarm, Holder("ghost", None, 2**22 + 12345, 1)).acquire(["src/**"])
    swarm.paths.log.symlink_to(tmp_path / "elsewhere")
    me = mgr(swarm, "me")
    assert me.acquire(["src/a.py"]).agent == "me"
    assert [lease.agent for lease in list_leases(swarm)] == ["me"]
    assert len(me.warnings) == 1
    assert "could not announce" in me.warnings[0]
    assert "ghost" in me.warnings[0]


def test_releasing_every_pattern_then_using_the_manager_again(swarm: Swarm) -> None:
    a = mgr(swarm, "a")
    a.acquire(["x.py", "y.py"])
    a.release(["x.py"])
    a.release(["y.py"])  # the lease is gone now: by our own hand, not broken
    assert a.release() == []
    a.acquire(["z.py"])
    assert [lease.patterns for lease in a.refresh(ttl=30)] == [("z.py",)]


def test_blockers_are_live_leases_of_others_only(swarm: Swarm, clock: FakeClock) -> None:
    a, b = mgr(swarm, "a"), mgr(swarm, "b")
    a.acquire(["src/**"], ttl=60)
    LockManager(swarm, Holder("ghost", None, 2**22 + 12345, 1)).acquire(["lib/x.py"])
    assert [lease.agent for lease in b.blockers("./src/x.py")] == ["a"]
    assert a.blockers("src/x.py") == []  # our own lease never blocks us
    assert b.blockers("lib/x.py") == []  # a dead holder blocks nobody
    assert b.blockers("src/x.py", exclusive=False)[0].agent == "a"
    clock.advance(61)
    assert b.blockers("src/x.py") == []
    assert len(list_leases(swarm)) == 2  # looking broke nothing


def test_reader_waits_for_an_unfinished_record_and_reads_only_new_bytes(swarm: Swarm) -> None:
    """A reader sees whole records only; the writer side is simulated by hand to freeze
    it halfway through one record (a real writer does it with a single write)."""
    from claudeswarm.locks.lease import Lease, Table, encode, grant_record

    mgr(swarm, "a").acquire(["a/**"])
    journal = state_files(swarm.paths)[0]
    table = Table(journal).sync()
    seen = table.offset
    lease = Lease("b", None, os.getpid(), None, ("b/**",), "exclusive", "", 1.0, 1.0, 60.0, 10**15)
    data = encode(grant_record(lease))
    with journal.open("ab") as fh:
        fh.write(data[:20])
        fh.flush()
        assert [x.agent for x in table.sync().leases.values()] == ["a"]
        assert table.offset == seen + 1  # only the leading newline of the framing
        fh.write(data[20:])
    assert sorted(x.agent for x in table.sync().leases.values()) == ["a", "b"]
    assert table.offset == seen + len(data)
