"""LogTailer rules, each pinned by a deterministic test (DESIGN.md "Tail")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import settings

from claudeswarm.messages.record import MessageRecord, format_ts, new_id
from claudeswarm.storage.files.log import MessageLog, archives
from claudeswarm.storage.files.tailer import BadLine, Cursor, LineQuarantine, LogTailer, read_recent
from claudeswarm.storage.paths import StatePaths


def rec(body: str) -> MessageRecord:
    return MessageRecord(new_id(), format_ts(1.8e9), "a", ("all",), "info", body)


def bodies(tail: LogTailer) -> list[str]:
    return [r.body for r in tail]


def test_torn_fragment_never_swallows_the_next_record(paths: StatePaths) -> None:
    """A writer killed mid-write leaves bytes without a newline; the next append's leading
    newline closes them off, so the next record is read and the fragment is reported."""
    log = MessageLog(paths, settings())
    log.append(rec("before"))
    with open(paths.log, "ab") as fh:
        fh.write(b'\n{"v":1,"id":"01TORN","ts":"2026')  # what a killed writer leaves
    log.append(rec("after"))
    bad: list[BadLine] = []
    with LogTailer(paths, on_bad=bad.append) as tail:
        assert bodies(tail) == ["before", "after"]
    assert len(bad) == 1 and b"01TORN" in bad[0].data


class RacingTailer(LogTailer):
    """Injects the race the drain rule exists for: records land in the old file and it is
    rotated in the instant between the tailer's EOF read and its inode check."""

    def __init__(self, paths: StatePaths, log: MessageLog) -> None:
        super().__init__(paths)
        self.log = log
        self.armed = True

    def _at_eof(self) -> bool:
        if self.armed and self._seq is None:
            self.armed = False
            self.log.append(rec("late-1"))
            self.log.append(rec("late-2"))
            self.log.rotate()
            self.log.append(rec("new-1"))
        return super()._at_eof()


def test_rotation_drains_the_old_file_before_the_new(paths: StatePaths) -> None:
    log = MessageLog(paths, settings())
    log.append(rec("first"))
    with RacingTailer(paths, log) as tail:
        assert bodies(tail) == ["first", "late-1", "late-2", "new-1"]


def test_many_rotations_between_polls_are_read_in_order(paths: StatePaths) -> None:
    log = MessageLog(paths, settings())
    log.append(rec("m0"))
    with LogTailer(paths) as tail:
        assert bodies(tail) == ["m0"]
        for i in range(1, 6):
            log.append(rec(f"m{i}"))
            log.rotate()
        log.append(rec("m6"))
        assert bodies(tail) == [f"m{i}" for i in range(1, 7)]


def test_cursor_resumes_inside_an_archive_and_walks_forward(paths: StatePaths) -> None:
    log = MessageLog(paths, settings())
    for i in range(3):
        log.append(rec(f"a{i}"))
    with LogTailer(paths) as tail:
        it = iter(tail)
        assert next(it).body == "a0"
        cursor = tail.cursor
    assert cursor is not None
    log.rotate()
    log.append(rec("b0"))
    log.rotate()
    log.append(rec("c0"))
    with LogTailer(paths, cursor) as tail:
        assert bodies(tail) == ["a1", "a2", "b0", "c0"]
        assert tail.gaps == 0


def test_cursor_into_a_reused_inode_is_detected(paths: StatePaths) -> None:
    """A cursor whose file identity matches but whose last id does not (inode reuse) is not
    trusted: the reader starts over rather than skip unread records."""
    log = MessageLog(paths, settings())
    log.append(rec("x0"))
    log.append(rec("x1"))
    st = os.stat(paths.log)
    first_len = len(paths.log.read_bytes().split(b"\n")[1]) + 2
    bogus = Cursor(st.st_dev, st.st_ino, first_len, "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    with LogTailer(paths, bogus) as tail:
        assert bodies(tail) == ["x0", "x1"]
        assert tail.gaps == 1


BAD_LINES = {
    "not json": b"this is not json",
    "NaN": b'{"v":1,"id":"01A","ts":"t","from":"a","to":["b"],"type":"info","body":NaN}',
    "duplicate keys": b'{"v":1,"id":"01A","ts":"t","from":"a","from":"evil","to":["b"],'
    b'"type":"info","body":"x"}',
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "invalid utf-8": b'{"v":1,"id":"01A","ts":"t","from":"a","to":["b"],"type":"info",'
    b'"body":"\xff\xfe"}',
    "unknown type": b'{"v":1,"id":"01A","ts":"t","from":"a","to":["b"],"type":"evil","body":"x"}',
    "not an object": b"[1,2,3]",
    "oversize": b'{"v":1,"body":"' + b"x" * 200_000 + b'"}',
}


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_bad_lines_are_quarantined_and_reading_goes_on(paths: StatePaths, kind: str) -> None:
    log = MessageLog(paths, settings())
    log.append(rec("good-1"))
    with open(paths.log, "ab") as fh:
        fh.write(b"\n" + BAD_LINES[kind] + b"\n")
    log.append(rec("good-2"))
    quarantine = LineQuarantine(paths)
    with LogTailer(paths, on_bad=quarantine) as tail:
        assert bodies(tail) == ["good-1", "good-2"]
    assert quarantine.count == 1
    stored = list((paths.quarantine / "lines").iterdir())
    assert len(stored) == 1
    entry = json.loads(stored[0].read_text())
    assert entry["reason"]
    # a second reader meets the same line: stored once, still never raises
    with LogTailer(paths, on_bad=LineQuarantine(paths)) as tail:
        assert bodies(tail) == ["good-1", "good-2"]
    assert len(list((paths.quarantine / "lines").iterdir())) == 1


def test_oversize_unfinished_line_is_skipped_in_bounded_memory(paths: StatePaths) -> None:
    log = MessageLog(paths, settings())
    with LogTailer(paths, max_line=1000) as tail:
        with open(paths.log, "ab") as fh:
            fh.write(b"\n" + b"y" * 5000)  # no newline yet, already too long
        assert bodies(tail) == []
        assert len(tail._buf) <= 1000
        log.append(rec("after"))
        assert bodies(tail) == ["after"]


def test_symlink_at_log_path_is_refused(paths: StatePaths, tmp_path: Path) -> None:
    from claudeswarm.errors import StateError

    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    paths.log.symlink_to(target)
    with pytest.raises(StateError, match="symlink"):
        MessageLog(paths, settings()).append(rec("x"))
    assert target.read_bytes() == b""


def test_read_recent_reads_backwards_across_archives(paths: StatePaths) -> None:
    log = MessageLog(paths, settings())
    for i in range(10):
        log.append(rec(f"r{i}"))
        if i % 3 == 2:
            log.rotate()
    assert len(archives(paths)) == 3
    got = read_recent(paths, 5, lambda r: True)
    assert [r.body for r in got] == ["r5", "r6", "r7", "r8", "r9"]
    odd = read_recent(paths, 3, lambda r: int(r.body[1:]) % 2 == 1)
    assert [r.body for r in odd] == ["r5", "r7", "r9"]


def test_retention_keeps_the_newest_archives(paths: StatePaths) -> None:
    log = MessageLog(paths, settings(archive_keep=2))
    for i in range(5):
        log.append(rec(f"k{i}"))
        log.rotate()
    assert [seq for seq, _ in archives(paths)] == [4, 5]


@pytest.mark.parametrize("stop_after", [1, 2, 4])
def test_stopping_early_then_resuming_loses_nothing(paths: StatePaths, stop_after: int) -> None:
    """A consumer that stops iterating mid-chunk (inbox --limit, the monitor) gets the
    rest of the chunk on its next call, even with an unfinished line at the chunk's end."""
    log = MessageLog(paths, settings())
    sent = [rec(f"s{i}") for i in range(5)]
    log.append_many(sent)
    with open(paths.log, "ab") as fh:
        fh.write(b"\n" + b"unfinished-" * 20)  # a writer mid-append
    bad: list[BadLine] = []
    with LogTailer(paths, on_bad=bad.append) as tail:
        got = []
        for r in tail:
            got.append(r)
            if len(got) == stop_after:
                break
        got += list(tail)
    assert [r.id for r in got] == [r.id for r in sent]
    assert bad == []


def test_a_drained_file_whose_archive_was_deleted_goes_on_at_the_oldest_kept(
    paths: StatePaths,
) -> None:
    """The tailer drains the live log through its fd after a rotation; if retention has
    already deleted that archive, every archive left is newer: it goes on at the oldest of
    them (it used to jump to the live log, skipping retained archives) and records a gap."""
    from claudeswarm.storage.files import retention_ledger
    from claudeswarm.storage.files.tailer import Gap

    log = MessageLog(paths, settings(archive_keep=2))
    log.append(rec("a0"))
    with LogTailer(paths) as tail:
        assert bodies(tail) == ["a0"]
        a1 = rec("a1")
        log.append(a1)
        for i in range(2, 6):
            log.rotate()  # the 3rd and 4th rotations delete archives 1 and 2
            log.append(rec(f"a{i}"))
        assert [seq for seq, _ in archives(paths)] == [3, 4]
        assert bodies(tail) == ["a1", "a3", "a4", "a5"]  # a2 went with archive 2
        assert tail.skipped == [Gap(None, 3, last_id=a1.id)]  # a1: the last read there
    lost = retention_ledger.loss(paths, tail.skipped)
    assert lost is not None and (lost.files, lost.exact) == (1, True)


def test_archives_deleted_while_reading_an_older_one_are_a_recorded_gap(
    paths: StatePaths,
) -> None:
    """A reader inside archive 1 when archives 1-4 are deleted finishes archive 1 (its
    fd keeps it), then finds archive 5 next: archives 2-4 are a gap, said so."""
    from claudeswarm.storage.files import retention_ledger
    from claudeswarm.storage.files.tailer import Gap

    keep_all = MessageLog(paths, settings(archive_keep=100))
    for i in range(4):
        keep_all.append_many([rec(f"b{i}-0"), rec(f"b{i}-1")])
        keep_all.rotate()
    with LogTailer(paths) as tail:
        it = iter(tail)
        assert next(it).body == "b0-0"
        keep_one = MessageLog(paths, settings(archive_keep=1))
        keep_one.append(rec("b4"))
        keep_one.rotate()
        assert [seq for seq, _ in archives(paths)] == [5]
        assert [r.body for r in it] == ["b0-1", "b4"]
        assert tail.skipped == [Gap(1, 5)]
    lost = retention_ledger.loss(paths, tail.skipped)
    assert lost is not None and lost.files == 3
    assert "skipped 3 rotated logs" in lost.sentence()


def test_an_end_cursor_stops_before_an_unfinished_line(paths: StatePaths) -> None:
    """``start="end"`` while a writer is mid-append: the position is after the last
    complete line, so the unfinished one is read whole once its newline comes (at its
    byte length it cut the line in two, and the first half was never looked at)."""
    log = MessageLog(paths, settings())
    log.append(rec("before"))
    with open(paths.log, "ab") as fh:
        fh.write(b'\n{"v":1,"id":"01HALF')  # a writer mid-append
    with LogTailer(paths, start="end") as tail:
        end = tail.cursor
    assert end is not None and end.last_id is not None
    with open(paths.log, "ab") as fh:
        fh.write(b'","ts":"t"}\n')  # finished: still not a valid record
    log.append(rec("after"))
    bad: list[BadLine] = []
    with LogTailer(paths, end, on_bad=bad.append) as tail:
        assert bodies(tail) == ["after"]
        assert tail.skipped == []
    assert len(bad) == 1 and b"01HALF" in bad[0].data
