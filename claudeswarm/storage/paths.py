"""Where state lives: the project root and its ``.claudeswarm/`` state directory.

The state directory is ``<root>/.claudeswarm`` where the root is the nearest ancestor of
the working directory holding ``.claudeswarm/``, failing that the nearest holding a
``.git`` directory (:func:`find_root`), unless ``--state-dir`` or ``CLAUDESWARM_HOME``
names one. It is created with mode 0700 and must not be a symlink.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from claudeswarm.errors import StateError, UsageError

STATE_DIR_NAME = ".claudeswarm"
ENV_HOME = "CLAUDESWARM_HOME"


@dataclass(frozen=True)
class StatePaths:
    """The project root and every well-known path inside the state directory.

    Every path into the state directory is handed out by :meth:`file` or :meth:`dir`,
    which check, before anything is done there, that the state directory and every
    directory between it and the path are real directories: a symlink planted anywhere
    on the way (``tasks -> /elsewhere``, ``quarantine/lines -> /tmp``) would otherwise
    carry reads and writes out of the state directory. The file itself is checked when
    it is opened (:func:`claudeswarm.storage.files.atomic.open_state`).
    """

    root: Path
    state: Path

    @property
    def log(self) -> Path:
        return self.file("messages.jsonl")

    @property
    def log_lock(self) -> Path:
        return self.file("messages.lock")

    @property
    def archive(self) -> Path:
        return self.dir("archive")

    @property
    def cursors(self) -> Path:
        return self.dir("cursors")

    @property
    def quarantine(self) -> Path:
        return self.dir("quarantine")

    @property
    def config(self) -> Path:
        return self.file("config.toml")

    def file(self, *parts: str) -> Path:
        """The state path ``parts`` (``file("agents.json")``, ``file("cursors", name)``)
        after checking every directory on the way (:func:`check_dirs`).

        Raises :class:`StateError` naming the first component that is a symlink or not a
        directory. The last part is not looked at: opening it checks it.
        """
        path = _join(self.state, parts)
        check_dirs(self.state, path.parent)
        return path

    def dir(self, *parts: str, create: bool = False) -> Path:
        """The state directory ``parts`` (every component checked, the last one too);
        with ``create``, missing components are made (0700), each only after the one
        above it was checked. Without ``create`` nothing is created (readers)."""
        path = _join(self.state, parts)
        check_dirs(self.state, path, create=create)
        return path


def _join(state: Path, parts: tuple[str, ...]) -> Path:
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\x00" in part:
            raise StateError(f"refusing state path component {part!r}")
    return state.joinpath(*parts)


def kind_of(mode: int) -> str:
    """What a file of ``mode`` is, for an error message."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def check_dirs(state: Path, directory: Path, *, create: bool = False) -> None:
    """Check ``state`` and each directory from it down to ``directory`` with ``lstat``:
    each must be a real directory, never a symlink (checked before anything is looked up
    or made under it). A missing component ends the walk (nothing below it exists), or
    is created 0700 with ``create``. Raises :class:`StateError`.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "tasks").symlink_to("/tmp")
    >>> check_dirs(d, d / "tasks" / "pending")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    claudeswarm.errors.StateError: refusing .../tasks: it is a symlink (state paths ...)
    """
    rel = directory.relative_to(state).parts if directory != state else ()
    here = state
    for part in ("", *rel):
        here = here / part if part else here
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            if not create:
                return
            with contextlib.suppress(FileExistsError):  # made meanwhile: checked below
                os.mkdir(here, 0o700)
            st = os.lstat(here)
        if not stat.S_ISDIR(st.st_mode):
            what = kind_of(st.st_mode)
            raise StateError(
                f"refusing {here}: it is {what} (state paths must be real directories)"
            )


def find_root(start: Path) -> Path:
    """Return the project root: the root of the nearest swarm enclosing ``start``.

    That is the nearest ancestor holding ``.claudeswarm/``, across nested repositories;
    failing that, the nearest holding a ``.git`` directory. A ``.git`` *file* (a
    submodule's or a linked worktree's) never starts a swarm of its own, so a hook or a
    ``lock`` run inside a submodule finds the swarm of the repository around it. Only
    when there is no ``.git`` directory either does the outermost ``.git`` file count (a
    worktree of a repository elsewhere); failing everything, ``start`` itself.
    """
    start = start.resolve()
    git_dir: Path | None = None
    git_file: Path | None = None
    for candidate in (start, *start.parents):
        if (candidate / STATE_DIR_NAME).is_dir():
            return candidate
        dot_git = candidate / ".git"
        if git_dir is None and dot_git.is_dir():
            git_dir = candidate
        elif git_dir is None and dot_git.exists():
            git_file = candidate
    return git_dir or git_file or start


def resolve(state_dir: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> StatePaths:
    """Work out the state paths from ``--state-dir``, ``CLAUDESWARM_HOME`` or the cwd.

    Examples
    --------
    >>> p = resolve("/tmp/x/.claudeswarm")
    >>> p.log.name
    'messages.jsonl'
    """
    explicit = state_dir or os.environ.get(ENV_HOME) or None
    if explicit:
        state = Path(explicit).expanduser()
        state = state if state.is_absolute() else (cwd or Path.cwd()) / state
        state = Path(os.path.normpath(state))
        root = state.parent if state.name == STATE_DIR_NAME else find_root(cwd or Path.cwd())
        return StatePaths(root=root.resolve(), state=state)
    root = find_root(cwd or Path.cwd())
    return StatePaths(root=root, state=root / STATE_DIR_NAME)


def ensure_state(paths: StatePaths) -> StatePaths:
    """Create the state directory and its fixed subdirectories (idempotent); refuse a
    symlink or a non-directory at any of them."""
    if not os.path.isdir(paths.state.parent):
        os.makedirs(paths.state.parent, exist_ok=True)  # the project side, not state
    for sub in ("archive", "cursors", "quarantine"):
        paths.dir(sub, create=True)
    return paths


def check_not_symlink(path: Path) -> None:
    """Raise :class:`StateError` if ``path`` exists as a symlink."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise StateError(f"refusing {path}: it is a symlink (state files must be real files)")


def inside(root: Path, path: Path) -> bool:
    """True when ``path`` (already resolved) lies inside ``root`` (resolved)."""
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def project_relative(root: Path, raw: str, *, follow: bool = True) -> str:
    """Turn a user path into a canonical project-relative POSIX path.

    The one set of path rules for locks and edit hooks alike. Absolute paths and ``./``
    forms are normalised, then symlinks are resolved (``follow``), and only then is the
    result required to lie inside the project: a path reaching the project through a
    symlink that lives outside it is a project path. ``..`` escapes and symlinks that
    leave the project are refused with :class:`UsageError`. ``follow=False`` keeps the
    spelling's own (lexical) location.
    """
    if not raw or "\x00" in raw:
        raise UsageError(f"invalid path {raw!r}")
    root = root.resolve()
    candidate = Path(raw) if os.path.isabs(raw) else root / raw
    normal = Path(os.path.normpath(candidate))
    real = Path(os.path.realpath(normal)) if follow else normal
    if not inside(root, real):
        if inside(root, normal):
            raise UsageError(f"path {raw!r} leads outside the project through a symlink")
        raise UsageError(f"path {raw!r} is outside the project {root}")
    rel = real.relative_to(root).as_posix()
    return "" if rel == "." else rel
