"""The file backend: plain files under one state directory (the embedded default).

Every file protocol lives in this package (append framing, rotation, the tailer, atomic
replace under a sidecar ``flock``, the lease journal, the Maildir task board); the
``docs/ARCHITECTURE.md`` chapter "The file backend" says why each exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claudeswarm.config import Settings
    from claudeswarm.storage.paths import StatePaths


class FileBackend:
    """The stores of one state directory. Each is created on first use."""

    name = "files"

    def __init__(self, paths: StatePaths, settings: Settings) -> None:
        self.paths = paths
        self.settings = settings

    # -- messages ----------------------------------------------------------------------------

    # -- end of messages ---------------------------------------------------------------------

    # -- leases ------------------------------------------------------------------------------

    # -- end of leases -----------------------------------------------------------------------

    # -- tasks -------------------------------------------------------------------------------

    # -- end of tasks ------------------------------------------------------------------------

    # -- agents ------------------------------------------------------------------------------

    # -- end of agents -----------------------------------------------------------------------

    def close(self) -> None:
        """Close what the stores hold open (they reopen on use)."""
