"""A snapshot of the process table from ``/proc``, built once per scan.

Discovery walks the descendants of every pane's pid. Reading ``/proc/*/stat`` once and
indexing parent -> children makes that one pass over the system instead of one per pane;
``argv`` is read lazily, only for processes that sit under some pane.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Proc:
    """One process: identity (pid + start time), family and terminal job control."""

    pid: int
    ppid: int
    pgrp: int
    tpgid: int  # foreground process group of its terminal (-1: none)
    comm: str
    start_time: int


def parse_stat(pid: int, data: bytes) -> Proc | None:
    """Parse ``/proc/<pid>/stat`` (the name may hold spaces and parentheses); ``None``
    for a zombie."""
    open_at, close_at = data.find(b"("), data.rfind(b")")
    rest = data[close_at + 2 :].split()
    if rest[:1] in ([b"Z"], [b"X"]):
        return None  # exited, waiting to be reaped: not a process that can be typed to
    try:
        return Proc(
            pid=pid,
            ppid=int(rest[1]),
            pgrp=int(rest[2]),
            tpgid=int(rest[5]),
            comm=data[open_at + 1 : close_at].decode("utf-8", "replace"),
            start_time=int(rest[19]),
        )
    except (IndexError, ValueError):
        return None


def read_proc(pid: int, proc_dir: str = "/proc") -> Proc | None:
    """One process, or ``None`` if it is gone."""
    try:
        with open(f"{proc_dir}/{pid}/stat", "rb") as fh:
            return parse_stat(pid, fh.read())
    except OSError:
        return None


def read_argv(pid: int, proc_dir: str = "/proc") -> tuple[str, ...]:
    """The argument vector of ``pid`` (empty for kernel threads and vanished processes)."""
    try:
        with open(f"{proc_dir}/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return ()
    return tuple(a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0") if a)


def reads_terminal(pid: int, proc_dir: str = "/proc") -> bool:
    """True if ``pid`` may read keys typed into its terminal: a terminal on its stdin, or
    one it opened itself (``/dev/tty``: ``less``, ``ssh``). A terminal only on stdout or
    stderr is written, not read (a helper that logs to the screen).

    A process whose descriptors cannot be listed (another user's ``sudo vim``) is
    assumed to read it; one that is gone does not.
    """
    base = f"{proc_dir}/{pid}/fd"
    try:
        fds = os.listdir(base)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    for fd in fds:
        if fd in ("1", "2"):
            continue
        try:
            target = os.readlink(f"{base}/{fd}")
        except OSError:
            continue  # closed while we looked
        if target.startswith(("/dev/pts/", "/dev/tty")):
            return True
    return False


@dataclass
class ProcTable:
    """All processes at one moment, with a parent -> children index."""

    procs: dict[int, Proc]
    children: dict[int, list[int]]
    proc_dir: str = "/proc"
    _argv: dict[int, tuple[str, ...]] = field(default_factory=dict, repr=False)

    def argv(self, pid: int) -> tuple[str, ...]:
        """``argv`` of ``pid``, read once and cached."""
        if pid not in self._argv:
            self._argv[pid] = read_argv(pid, self.proc_dir)
        return self._argv[pid]

    def descendants(self, root: int) -> list[int]:
        """``root`` and every process below it, breadth first (shallowest first)."""
        if root not in self.procs:
            return []
        out, todo = [], deque([root])
        while todo:
            pid = todo.popleft()
            out.append(pid)
            todo.extend(sorted(self.children.get(pid, ())))
        return out

    def group(self, pgrp: int) -> list[Proc]:
        """Every process of process group ``pgrp``."""
        return [p for p in self.procs.values() if p.pgrp == pgrp]

    def is_under(self, pid: int, root: int) -> bool:
        """True if ``pid`` is ``root`` or one of its descendants."""
        seen = 0
        while pid > 1 and seen < 4096:
            if pid == root:
                return True
            proc = self.procs.get(pid)
            if proc is None:
                return False
            pid, seen = proc.ppid, seen + 1
        return pid == root


def snapshot(proc_dir: str = "/proc") -> ProcTable:
    """Read every ``/proc/<pid>/stat`` once."""
    procs: dict[int, Proc] = {}
    children: dict[int, list[int]] = {}
    for name in os.listdir(proc_dir):
        if not name.isdigit():
            continue
        proc = read_proc(int(name), proc_dir)
        if proc is None:
            continue  # exited while we looked
        procs[proc.pid] = proc
        children.setdefault(proc.ppid, []).append(proc.pid)
    return ProcTable(procs, children, proc_dir)
