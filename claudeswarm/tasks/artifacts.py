"""Task artifacts: declare them, verify them, fingerprint them, re-check them later.

An artifact is a project-relative path. Verification (at ``task done`` and again for
``task show --verify`` / ghost detection) demands a regular file inside the project,
reached without a symlink that leaves the project, non-empty unless declared
``allow_empty``, and, when an expected sha256 was given, with that digest. The manifest
(path, size, sha256) is what completion stores; a done task whose files no longer match
it is a *ghost*.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from claudeswarm.errors import ArtifactError, UsageError
from claudeswarm.storage.paths import project_relative
from claudeswarm.tasks.model import ArtifactSpec, ManifestEntry

_HEX = re.compile(r"[0-9a-f]{64}")
_SHA_MARK = "@sha256:"
_CHUNK = 1 << 20


def parse_spec(root: Path, raw: str, *, allow_empty: bool = False) -> ArtifactSpec:
    """An :class:`ArtifactSpec` from ``PATH`` or ``PATH@sha256:HEX`` (CLI syntax).

    The path is normalised to canonical project-relative form; ``..`` escapes and
    symlinks leaving the project raise :class:`UsageError`.

    Examples
    --------
    >>> parse_spec(Path("/p"), "out/report.md").path
    'out/report.md'
    """
    path, digest = raw, None
    if _SHA_MARK in raw:
        path, digest = raw.rsplit(_SHA_MARK, 1)
        digest = digest.lower()
        if not _HEX.fullmatch(digest):
            raise UsageError(f"artifact {raw!r}: expected 64 hex digits after {_SHA_MARK}")
    rel = project_relative(root, path, follow=False)
    project_relative(root, path)  # refuses a symlinked escape already present
    if not rel:
        raise UsageError(f"artifact {raw!r} names the project root, not a file")
    return ArtifactSpec(rel, allow_empty, digest)


def merge(declared: Iterable[ArtifactSpec], extra: Iterable[ArtifactSpec]) -> list[ArtifactSpec]:
    """Declared artifacts plus extra ones; a path given twice keeps the stricter demands."""
    out: dict[str, ArtifactSpec] = {}
    for spec in (*declared, *extra):
        old = out.get(spec.path)
        if old is None:
            out[spec.path] = spec
            continue
        if old.sha256 and spec.sha256 and old.sha256 != spec.sha256:
            raise UsageError(f"artifact {spec.path!r} given with two different sha256")
        out[spec.path] = ArtifactSpec(
            spec.path, old.allow_empty and spec.allow_empty, old.sha256 or spec.sha256
        )
    return list(out.values())


def measure(root: Path, rel: str) -> ManifestEntry:
    """Size and sha256 of artifact ``rel``; :class:`ArtifactError` if it is not a regular
    file inside the project."""
    try:
        real = project_relative(root, rel)
    except UsageError:
        raise ArtifactError(rel, "leads outside the project") from None
    full = root.resolve() / real
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(full, flags)
    except FileNotFoundError:
        raise ArtifactError(rel, "is missing") from None
    except OSError as exc:
        raise ArtifactError(rel, f"cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ArtifactError(rel, "is not a regular file")
        digest = hashlib.sha256()
        size = 0
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return ManifestEntry(rel, size, digest.hexdigest())


def verify(root: Path, specs: Iterable[ArtifactSpec]) -> tuple[ManifestEntry, ...]:
    """Verify every artifact and return the manifest, or raise :class:`ArtifactError` for
    the first that fails (missing, not regular, empty, outside, wrong digest)."""
    manifest = []
    for spec in specs:
        entry = measure(root, spec.path)
        if entry.size == 0 and not spec.allow_empty:
            raise ArtifactError(spec.path, ArtifactError.EMPTY)
        if spec.sha256 and entry.sha256 != spec.sha256:
            raise ArtifactError(
                spec.path, f"has sha256 {entry.sha256[:12]}…, expected {spec.sha256[:12]}…"
            )
        manifest.append(entry)
    return tuple(manifest)


def problems(root: Path, manifest: Iterable[ManifestEntry]) -> list[str]:
    """What no longer matches a stored manifest (empty list: all artifacts intact)."""
    found = []
    for entry in manifest:
        try:
            now = measure(root, entry.path)
        except ArtifactError as exc:
            found.append(str(exc))
            continue
        if (now.size, now.sha256) != (entry.size, entry.sha256):
            found.append(f"artifact {entry.path!r} changed since completion")
    return found
