"""Forcing the filesystem to give a new file a chosen (freed) inode number, for the tests
that prove identity never rests on inode numbers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

FILLERS = 5_000  # files created at most to make the filesystem hand out one inode


def reuse_inode(directory: Path, ino: int, create: Callable[[], object]) -> bool:
    """Make ``create`` (which makes one new file in ``directory``) get inode ``ino``.

    ext4 gives a new file the lowest free inode of its directory's group: fill every
    lower free one with files until one gets ``ino``, free that one, call ``create`` at
    once, then remove the fillers. False when a filler got a higher number first (``ino``
    is taken) or none got it at all (a filesystem that does not reuse numbers). Whether
    ``create`` really got ``ino`` is for the caller to check: another process on this
    machine may take it in between.
    """
    fillers: list[Path] = []
    try:
        for n in range(FILLERS):
            path = directory / f".filler.{n}"
            path.touch()
            got = path.stat().st_ino
            if got == ino:
                path.unlink()
                create()
                return True
            fillers.append(path)
            if got > ino:
                return False
        return False
    finally:
        for path in fillers:
            path.unlink()
