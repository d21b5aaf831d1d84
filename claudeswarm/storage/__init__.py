"""The storage seam: the typed store protocols domain code talks to, and their backends.

Domain packages (``messages/``, ``agents/``, ``locks/``, ``tasks/``, ``tmux/``) never
open, rename, lock or frame a file: they call the stores of a :class:`Backend`, reached
as ``swarm.store``. Each domain's protocols live in ``storage/<domain>.py``; a backend is
a package under ``storage/`` (``files`` is the embedded default) that implements all of
them, plus one line in :func:`open_backend`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from claudeswarm.errors import UsageError

if TYPE_CHECKING:
    from claudeswarm.config import Settings
    from claudeswarm.storage.paths import StatePaths

#: the backends ``open_backend`` knows (the ``backend`` setting's choices)
BACKENDS = ("files",)


class Backend(Protocol):
    """Every store one swarm's state lives in. Stores are created on first use, so a
    command pays only for the ones it touches."""

    #: the backend's name, as the ``backend`` setting spells it
    name: str

    # -- messages: the log, read positions, receipts, nudge outcomes, rate windows ----------

    # -- end of messages ---------------------------------------------------------------------

    # -- leases ------------------------------------------------------------------------------

    # -- end of leases -----------------------------------------------------------------------

    # -- tasks -------------------------------------------------------------------------------

    # -- end of tasks ------------------------------------------------------------------------

    # -- agents: the registry ----------------------------------------------------------------

    # -- end of agents -----------------------------------------------------------------------

    def close(self) -> None:
        """Release what the stores hold open (files, connections); they reopen on use."""


def open_backend(paths: StatePaths, settings: Settings) -> Backend:
    """The backend ``settings.backend`` names, for the state at ``paths``."""
    if settings.backend == "files":
        from claudeswarm.storage.files import FileBackend

        return FileBackend(paths, settings)
    raise UsageError(f"unknown backend {settings.backend!r}; use one of {', '.join(BACKENDS)}")
