"""The message log under real concurrent processes: appends, kills, rotations.

Counts are small by default so CI finishes in seconds; ``CLAUDESWARM_STRESS=N`` multiplies
them for long runs. Every check here fails if a single message is lost, duplicated or torn.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import random
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import settings

from claudeswarm.messages.record import MessageRecord, format_ts, new_id
from claudeswarm.storage.files.log import MessageLog
from claudeswarm.storage.files.tailer import BadLine, LogTailer
from claudeswarm.storage.paths import StatePaths

STRESS = int(os.environ.get("CLAUDESWARM_STRESS", "1"))
FORK = mp.get_context("fork")


def _rec(sender: str, seq: int) -> MessageRecord:
    now = time.time()
    return MessageRecord(new_id(now), format_ts(now), sender, ("all",), "info", f"{sender}:{seq}")


def _all_records(paths: StatePaths) -> list[MessageRecord]:
    bad: list[BadLine] = []
    with LogTailer(paths, on_bad=bad.append) as tail:
        recs = list(tail)
    assert bad == [], f"unexpected bad lines: {bad[:3]}"
    return recs


def _writer(paths: StatePaths, name: str, count: int, rotate_bytes: int) -> None:
    with MessageLog(paths, settings(rotate_bytes=rotate_bytes, archive_keep=100_000)) as log:
        for i in range(count):
            log.append(_rec(name, i))


def test_parallel_writers_every_message_exactly_once(paths: StatePaths) -> None:
    """8 processes x 2,000 appends at once: each message in the log once, no torn line."""
    writers, per = 8, 2000 * STRESS
    procs = [
        FORK.Process(target=_writer, args=(paths, f"w{i}", per, 1 << 40)) for i in range(writers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    raw = paths.log.read_bytes()
    lines = [ln for ln in raw.split(b"\n") if ln]
    assert len(lines) == writers * per  # no torn or merged line
    counts = Counter(r.body for r in _all_records(paths))
    assert len(counts) == writers * per
    assert set(counts.values()) == {1}


def test_threads_sharing_one_log_every_message_exactly_once(paths: StatePaths) -> None:
    """16 threads append through ONE MessageLog (as threads sharing a Swarm do) while it
    rotates every few KiB: each message once, none lost, no hang. The sidecar's flock is
    per open file, so it does not exclude threads sharing the fd: without an in-process
    mutex two threads both "held" it, one rotated and closed the fd the other was writing
    to, or a lazily opened lock fd was locked by one thread and unlocked by another (every
    later append then waited for ever)."""
    threads, per = 16, 150 * STRESS
    log = MessageLog(paths, settings(rotate_bytes=4096, archive_keep=100_000))

    def work(name: str) -> None:
        for i in range(per):
            log.append(_rec(name, i))

    try:
        with ThreadPoolExecutor(threads) as pool:
            for f in [pool.submit(work, f"t{i}") for i in range(threads)]:
                f.result(timeout=60)
    finally:
        log.close()
    counts = Counter(r.body for r in _all_records(paths))
    assert len(counts) == threads * per
    assert set(counts.values()) == {1}


def _acking_writer(paths: StatePaths, name: str, ack_fd: int) -> None:
    with MessageLog(paths, settings(rotate_bytes=64 * 1024, archive_keep=100_000)) as log:
        i = 0
        while True:
            rec = _rec(name, i)
            log.append(rec)
            os.write(ack_fd, rec.id.encode() + b"\n")  # acknowledged only after append
            i += 1


def _reader(paths: StatePaths, out: Path, stop_file: Path) -> None:
    """Follow the log until told to stop, then drain; record every id seen."""
    seen: list[str] = []
    with LogTailer(paths) as tail:
        while True:
            stopping = stop_file.exists()
            seen.extend(r.id for r in tail)
            if stopping:
                break
            time.sleep(0.002)
    out.write_text("\n".join(seen))


def test_sigkilled_writers_lose_no_acknowledged_message(paths: StatePaths, tmp_path: Path) -> None:
    """>= 200 SIGKILLs at random moments mid-append (with rotation going on): every
    acknowledged message is read exactly once and a concurrent reader never raises."""
    kills = 200 * STRESS
    stop = tmp_path / "stop"
    reader_out = tmp_path / "reader.txt"
    reader = FORK.Process(target=_reader, args=(paths, reader_out, stop))
    reader.start()
    acked: list[str] = []
    rng = random.Random(7)
    for k in range(kills):
        r, w = os.pipe()
        proc = FORK.Process(target=_acking_writer, args=(paths, f"k{k}", w))
        proc.start()
        os.close(w)
        time.sleep(rng.uniform(0.0005, 0.01))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        acked += [x for x in data.decode().split("\n") if len(x) == 26]  # complete acks
    stop.touch()
    reader.join(60)
    assert reader.exitcode == 0, "the reader raised"
    ids = Counter(r.id for r in _all_records_tolerant(paths))
    assert acked, "no writer got as far as one append"
    missing = [a for a in acked if ids[a] != 1]
    assert missing == []
    assert max(ids.values()) == 1
    reader_ids = Counter(reader_out.read_text().split())
    assert all(reader_ids[a] == 1 for a in acked)
    assert max(reader_ids.values()) == 1


def _all_records_tolerant(paths: StatePaths) -> list[MessageRecord]:
    # A writer killed inside os.write may leave a torn fragment: it must be reported as a
    # bad line (never parsed into a record, never swallowing its neighbour).
    with LogTailer(paths, on_bad=lambda bad: None) as tail:
        return list(tail)


def _rotator(paths: StatePaths, stop_file: Path, out: Path, at_least: int) -> None:
    """Rotate every few ms until told to stop and at least ``at_least`` rotations are done
    (an empty log cannot rotate, so then it appends a marker record first)."""
    done = 0
    with MessageLog(paths, settings(archive_keep=100_000)) as log:
        while done < at_least or not stop_file.exists():
            if log.rotate() is None:
                log.append(_rec("marker", done))
                continue
            done += 1
            time.sleep(0.003)
    out.write_text(str(done))


def _follower(paths: StatePaths, expect: int, out: Path) -> None:
    seen: list[str] = []
    deadline = time.monotonic() + 120
    with LogTailer(paths) as tail:
        while len(seen) < expect and time.monotonic() < deadline:
            got = [r.body for r in tail if r.sender != "marker"]
            seen.extend(got)
            if not got:
                time.sleep(0.001)
        time.sleep(0.05)
        seen.extend(r.body for r in tail if r.sender != "marker")  # extras are duplicates
    out.write_text("\n".join(seen))


def test_tailers_follow_fast_rotation_exactly_once(paths: StatePaths, tmp_path: Path) -> None:
    """4 writers, rotation every few ms (>= 100 rotations), 2 tailers: each tailer sees every
    message exactly once, in each writer's order."""
    writers, per = 4, 3000 * STRESS
    expect = writers * per
    stop = tmp_path / "stop"
    rot_out = tmp_path / "rotations"
    followers = [
        FORK.Process(target=_follower, args=(paths, expect, tmp_path / f"t{i}")) for i in range(2)
    ]
    rotator = FORK.Process(target=_rotator, args=(paths, stop, rot_out, 100))
    for p in (*followers, rotator):
        p.start()
    procs = [FORK.Process(target=_paced_writer, args=(paths, f"w{i}", per)) for i in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    stop.touch()
    rotator.join(120)
    assert rotator.exitcode == 0
    for f in followers:
        f.join(150)
        assert f.exitcode == 0
    assert int(rot_out.read_text()) >= 100
    for i in range(2):
        bodies = (tmp_path / f"t{i}").read_text().split("\n")
        counts = Counter(bodies)
        assert len(bodies) == expect, f"tailer {i} saw {len(bodies)} of {expect}"
        assert set(counts.values()) == {1}
        for w in range(writers):
            mine = [int(b.split(":")[1]) for b in bodies if b.startswith(f"w{w}:")]
            assert mine == list(range(per))


def _paced_writer(paths: StatePaths, name: str, count: int) -> None:
    # paced so the run spans many rotation intervals
    with MessageLog(paths, settings(rotate_bytes=1 << 40, archive_keep=100_000)) as log:
        for i in range(count):
            log.append(_rec(name, i))
            if i % 20 == 0:
                time.sleep(0.001)


@pytest.mark.parametrize("pieces", [2, 5])
def test_half_written_line_waits_for_its_newline(paths: StatePaths, pieces: int) -> None:
    rec = _rec("a", 1)
    from claudeswarm.storage.files.log import frame

    data = frame(rec)
    MessageLog(paths, settings()).append(_rec("a", 0))
    with LogTailer(paths) as tail:
        assert [r.body for r in tail] == ["a:0"]
        cut = sorted(random.Random(pieces).sample(range(2, len(data) - 1), pieces - 1))
        bounds = [0, *cut, len(data)]
        with open(paths.log, "ab") as fh:
            for a, b in itertools.pairwise(bounds):
                fh.write(data[a:b])
                fh.flush()
                got = [r.body for r in tail]
                if b < len(data):
                    assert got == [], "an unfinished line was consumed"
                else:
                    assert got == ["a:1"]
