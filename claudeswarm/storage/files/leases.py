"""Writing the lease table: the sidecar lock, appends, compaction and repair.

Every change happens inside :meth:`LeaseStore.write`: ``flock`` on ``locks.lock`` (never
deleted; the kernel drops it when a holder dies, so a killed writer never wedges anyone),
then the table is brought up to date. A missing or empty journal is created with a header.
Bad lines and an unterminated tail (a writer killed mid-record; it never returned a grant
to anyone) are copied to ``quarantine/`` and the journal is compacted without them. A
journal without a header is not guessed at: it is a :class:`StateError` until
``unlock --repair`` quarantines it, so a damaged table can never hand out a path twice.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from claudeswarm.config import Settings
from claudeswarm.errors import StateError
from claudeswarm.locks.lease import Table, encode, new_epoch
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.storage.paths import StatePaths, ensure_state

JOURNAL = "locks.jsonl"
SIDECAR = "locks.lock"
Records = list[dict[str, object]]


class LeaseStore:
    """The journal file plus this process's incrementally updated :class:`Table`."""

    def __init__(
        self,
        paths: StatePaths,
        settings: Settings,
        *,
        durable: bool = True,
        lock_timeout: float | None = 30.0,
    ) -> None:
        self.paths = paths
        self.settings = settings
        self.durable = durable
        self.lock_timeout = lock_timeout  # seconds to wait for locks.lock (0: try once)
        self.journal = paths.file(JOURNAL)
        self.table = Table(self.journal)
        self._ready = False

    @contextlib.contextmanager
    def write(self) -> Iterator[Table]:
        """Hold the sidecar lock with the table brought up to date and repaired."""
        if not self._ready:  # once per store: a hot path (acquire, release) stays lean
            ensure_state(self.paths)
            self._ready = True
        with _atomic.flocked(self.paths.file(SIDECAR), timeout=self.lock_timeout):
            table = self.table.sync(verify=True)  # a grant is decided on this view
            if table.seen is None or table.size == 0:
                # a new journal: start generations at the wall clock in ms, so numbers
                # stay unique even if someone deleted the old journal under live holders
                table.next_generation = max(table.next_generation, int(time.time() * 1000))
                self.compact(table)
            else:
                table.readable()
            if table.bad or table.offset != table.size:
                self._quarantine_bad(table)
            elif table.epoch is None:
                self.compact(table)  # a header without an epoch (an older version's)
            yield table

    def commit(self, table: Table, records: Records, *, durable: bool) -> None:
        """Append ``records`` with one write (fdatasync when ``durable``) and apply them."""
        data = b"".join(encode(r) for r in records)
        fd = _atomic.open_state(self.journal, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
            if durable and self.durable:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        table.feed(data, table.offset)
        if table.wasteful(self.settings.lock_compact_bytes):
            self.compact(table)

    def compact(self, table: Table) -> None:
        """Rewrite the journal as a header plus the live leases (atomic replace)."""
        data = table.snapshot_bytes(new_epoch())
        _atomic.write_bytes(self.journal, data, durable=self.durable)
        table.rebased(data)

    def _quarantine_bad(self, table: Table) -> None:
        """Copy bad lines and a torn tail (a killed writer's) to quarantine, then compact."""
        lines = [f"@{at} {why}: {line!r}" for at, line, why in table.bad]
        if table.offset != table.size:
            lines.append(f"@{table.offset} unterminated tail of {table.size - table.offset}B")
        dest = _atomic.quarantine_path(self.paths, JOURNAL)
        dest = dest.with_name(dest.name + ".bad")
        _atomic.write_bytes(dest, ("\n".join(lines) + "\n").encode(), durable=False)
        self.compact(table)

    def repair(self) -> Path | None:
        """Quarantine a lease table without a header (every lease in it is dropped).

        Returns where it went, or ``None`` when the table was readable (nothing done).
        """
        ensure_state(self.paths)
        with _atomic.flocked(self.paths.file(SIDECAR)):
            try:
                table = self.table.sync(verify=True)
            except StateError:
                table = None
            if table is not None and (table.seen is None or table.has_base):
                return None
            dest = _atomic.quarantine_file(self.journal, self.paths, "lease table without a header")
            self.table = Table(self.journal)
            self.compact(self.table)
            return dest
