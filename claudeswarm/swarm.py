"""The composition root: one handle on a swarm's state, its settings, clock and stores.

Everything else takes a :class:`Swarm`: domain code reaches its stores as
``swarm.store.<name>`` (see :mod:`claudeswarm.storage`), never a file or a server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from claudeswarm.config import Settings, load
from claudeswarm.storage.paths import StatePaths, resolve

if TYPE_CHECKING:
    from claudeswarm.storage import Backend
    from claudeswarm.storage.files.log import MessageLog

Clock = Callable[[], float]


@dataclass
class Swarm:
    """A handle on one swarm: where its state is, its settings and its clock.

    Examples
    --------
    >>> with open_swarm() as swarm:                 # doctest: +SKIP
    ...     send(swarm, "alice", ["bob"], "hello")
    """

    paths: StatePaths
    settings: Settings
    clock: Clock = time.time
    _store: Backend | None = field(default=None, repr=False)
    _log: MessageLog | None = field(default=None, repr=False)

    @property
    def store(self) -> Backend:
        """The backend ``settings.backend`` names (opened on first use)."""
        if self._store is None:
            from claudeswarm.storage import open_backend

            self._store = open_backend(self.paths, self.settings)
        return self._store

    @property
    def log(self) -> MessageLog:
        """The (lazily opened) appender."""
        if self._log is None:
            from claudeswarm.storage.files.log import MessageLog

            self._log = MessageLog(self.paths, self.settings)
        return self._log

    def close(self) -> None:
        """Close open files and connections (the handle can still be used: they reopen)."""
        if self._log is not None:
            self._log.close()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Swarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_swarm(state_dir: str | None = None, clock: Clock = time.time) -> Swarm:
    """Resolve the state directory (``--state-dir`` / ``CLAUDESWARM_HOME`` / cwd) and load
    its settings."""
    paths = resolve(state_dir)
    paths.dir()  # a planted link (or a file) there would redirect every state file
    return Swarm(paths, load(paths).settings, clock)
