"""A saved read position is resumed only in the file it was taken in (issue 9, item 1,
audit of the message log): ext4 gives a freed inode number to the next new file at once,
so a cursor's (dev, inode) may name a newer log file long after its own was deleted by
retention. Resumed there, a reader silently skips every retained message before it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import FakeClock, settings
from inodes import reuse_inode

from claudeswarm.agents import identity
from claudeswarm.messages import service as messaging
from claudeswarm.messages.record import MessageRecord, format_ts, new_id
from claudeswarm.storage.files.log import MessageLog, frame
from claudeswarm.storage.files.tailer import BadLine, LineQuarantine, LogTailer
from claudeswarm.storage.paths import StatePaths, ensure_state
from claudeswarm.swarm import Swarm


def rec(body: str) -> MessageRecord:
    return MessageRecord(new_id(), format_ts(1.8e9), "a", ("all",), "info", body)


def bodies(tail: LogTailer) -> list[str]:
    return [r.body for r in tail]


def write_in_place(path: Path, data: bytes) -> None:
    """Give the file (the inode) at ``path`` other content: what a reader holding that
    inode number sees when the number was reused by another file."""
    with path.open("r+b") as fh:
        fh.write(data)
        fh.truncate()


def cursor_file_deleted_then_reused(paths: StatePaths, clock: FakeClock, how: str) -> bool:
    """bob reads right after a rotation, so his cursor is at offset 0 of the fresh live
    log X. Later X is rotated and deleted by retention (what was in it is lost to bob:
    that is retention), and a newer live log gets X's inode number. bob's next inbox must
    show every message still retained, not only those in the file that reused X. False
    when real reuse could not be arranged (another process took the number)."""
    # bob is live: retention deletes his unread archives only past archive_max_bytes
    sw = Swarm(paths, settings(archive_keep=2, archive_max_bytes=1), clock)
    identity.join(sw, "bob")

    def send(body: str) -> None:  # the log alone: no other state file gets a new inode
        sw.log.append(MessageRecord(new_id(), format_ts(clock()), "alice", ("bob",), "info", body))

    send("m0")
    sw.log.rotate()
    assert [m.body for m in messaging.inbox(sw, "bob").messages] == ["m0"]
    cursor = messaging.load_cursor(sw, "bob")
    x = os.stat(paths.log)
    assert cursor is not None and (cursor.ino, cursor.offset) == (x.st_ino, 0)
    aside = paths.state / "aside"
    if how == "content moved into the inode":
        os.link(paths.log, aside)
    for body in ("m1", "m2", "m3"):
        send(body)
        sw.log.rotate()  # m1's archive (file X) is deleted by the third
    if how == "filesystem reuse":
        for n in range(4, 24):  # until the next live log gets X's number
            send(f"m{n}")
            reuse_inode(paths.state, x.st_ino, sw.log.rotate)
            if os.stat(paths.log).st_ino == x.st_ino:
                break
        else:
            sw.close()
            return False
    else:
        send("m4")
        sw.log.rotate()
        write_in_place(aside, b"")
        os.replace(aside, paths.log)
    assert os.stat(paths.log).st_ino == x.st_ino
    send("last")
    retained = [m.body for m in messaging.recent(sw, 1000)]
    assert len(retained) > 1  # archived ones too, not only "last" in the file with X's number
    assert [m.body for m in messaging.inbox(sw, "bob").messages] == retained
    sw.close()
    return True


def test_an_inbox_cursor_whose_file_was_deleted_never_skips_retained_messages(
    paths: StatePaths, clock: FakeClock
) -> None:
    """The reuse forced deterministically: another file's content moved into X's inode."""
    assert cursor_file_deleted_then_reused(paths, clock, "content moved into the inode")


def test_the_same_with_real_inode_reuse(tmp_path: Path, clock: FakeClock) -> None:
    """The same with real reuse (ext4 hands a freed number to the next new file). A trial
    whose number another process on this machine took meanwhile starts over in a fresh
    state directory; one must succeed (a filesystem that never reuses numbers, such as
    tmpfs, fails here: run the suite on the disk the project lives on)."""
    for n in range(8):
        root = tmp_path / f"p{n}"
        (root / ".git").mkdir(parents=True)
        paths = ensure_state(StatePaths(root, root / ".claudeswarm"))
        if cursor_file_deleted_then_reused(paths, clock, "filesystem reuse"):
            return
    pytest.fail("the filesystem never gave a freed inode number to a new live log")


CASES = {
    "another record": b"",
    "a blank line": b"\n",
    "a corrupt line": b"not a record\n",
}


@pytest.mark.parametrize("before", sorted(CASES))
def test_a_cursor_is_not_resumed_in_another_file_with_its_inode(
    paths: StatePaths, before: str
) -> None:
    """The cursor's file now holds other records (as after inode reuse); whatever line ends
    at the cursor's offset there, the reader starts over (and counts a gap) rather than
    read on from an offset that means nothing in this file."""
    log = MessageLog(paths, settings())
    for i in range(3):
        log.append(rec(f"x{i}"))
    with LogTailer(paths) as tail:
        assert bodies(tail) == ["x0", "x1", "x2"]
        cursor = tail.cursor
    assert cursor is not None
    core = frame(rec("other-0")) + CASES[before]
    head = b"\n" * (cursor.offset - len(core)) + core  # the cursor's offset is right after it
    write_in_place(paths.log, head + frame(rec("other-1")) + frame(rec("other-2")))
    with LogTailer(paths, cursor) as tail:
        assert bodies(tail) == ["other-0", "other-1", "other-2"]
        assert tail.gaps == 1


@pytest.mark.parametrize("before", ["a rotation", "a blank line", "a corrupt line"])
def test_a_cursor_after_something_other_than_a_record_still_resumes(
    paths: StatePaths, before: str
) -> None:
    """The proof looks past blank and corrupt lines, and into the file before, so
    positions that are not right after a record resume with no gap."""
    log = MessageLog(paths, settings())
    log.append(rec("x0"))
    if before == "a rotation":
        log.rotate()  # the cursor ends at offset 0 of the new live log
    else:
        with open(paths.log, "ab") as fh:
            fh.write(CASES[before])
    with LogTailer(paths) as tail:
        assert bodies(tail) == ["x0"]
        cursor = tail.cursor
    assert cursor is not None and cursor.last_id is not None
    log.append(rec("x1"))
    with LogTailer(paths, cursor) as tail:
        assert bodies(tail) == ["x1"]
        assert tail.gaps == 0


def test_a_position_taken_at_the_end_resumes_there(paths: StatePaths) -> None:
    """``log --follow`` takes the end position first, prints the newest records, then
    follows from that position: what was appended in between must not be skipped."""
    log = MessageLog(paths, settings())
    log.append(rec("before"))
    with LogTailer(paths, start="end") as tail:
        start = tail.cursor
    log.append(rec("between"))
    with LogTailer(paths, start, start="end") as tail:
        assert bodies(tail) == ["between"]
        assert tail.gaps == 0


def test_a_bad_line_of_another_file_with_the_same_inode_is_quarantined_too(
    paths: StatePaths,
) -> None:
    """Quarantine stores each bad line once; a different bad line at the same offset of a
    file that got the same inode number is another line, and is stored as well."""
    quarantine = LineQuarantine(paths)
    st = os.stat(paths.state)
    for data in (b"first bad line", b"second bad line"):
        quarantine(BadLine(st.st_dev, st.st_ino, 1, "not JSON", data))
        quarantine(BadLine(st.st_dev, st.st_ino, 1, "not JSON", data))  # another reader
    stored = sorted(p.read_text() for p in quarantine.dir.iterdir())
    assert len(stored) == 2
    assert "first bad line" in stored[0] and "second bad line" in stored[1]
