"""The tmux primitives: one ``list-panes -a`` per scan, literal keys, screen capture.

Every other module reaches tmux through this one. Panes are addressed by their immutable
id (``%N``), never by position. The server is the one the caller is attached to (socket
path = first comma field of ``$TMUX``) unless a socket is given explicitly.

This module runs the ``tmux`` binary itself, with the same argv libtmux would build
(``tmux -S socket <command> ...``), rather than importing libtmux: ``import libtmux``
costs ~120 ms, more than the whole start-up budget of ``discover`` and of the nudger,
and the four commands used here need none of its object model. :func:`for_server` accepts
a ``libtmux.Server`` (tests use libtmux's pytest plugin) by reading its socket fields.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from claudeswarm.errors import TmuxError, UnavailableError

SEP = "\x1f"  # tmux escapes control characters inside values, so this never appears in one
FIELDS = (
    "pane_id",
    "pane_pid",
    "pane_dead",
    "session_name",
    "window_index",
    "pane_index",
    "window_id",
    "pane_tty",
    "pane_current_command",
    "pane_current_path",
)
FORMAT = SEP.join("#{%s}" % f for f in FIELDS)  # noqa: UP031 (tmux format braces)


@dataclass(frozen=True)
class Pane:
    """One pane as seen by one ``list-panes -a`` scan."""

    pane_id: str
    pid: int
    dead: bool
    session: str
    window: int
    index: int
    window_id: str
    tty: str
    command: str
    path: str

    @property
    def location(self) -> str:
        """``session:window.pane``, the human (and mutable) address."""
        return f"{self.session}:{self.window}.{self.index}"


def _parse(line: str) -> Pane | None:
    parts = line.split(SEP)
    if len(parts) != len(FIELDS) or not parts[0].startswith("%"):
        return None
    try:
        return Pane(
            pane_id=parts[0],
            pid=int(parts[1] or 0),
            dead=parts[2] == "1",
            session=parts[3],
            window=int(parts[4]),
            index=int(parts[5]),
            window_id=parts[6],
            tty=parts[7],
            command=parts[8],
            path=parts[9],
        )
    except ValueError:
        return None


def socket_from_env(env: dict[str, str] | None = None) -> str | None:
    """The socket path of the server the caller is attached to (``$TMUX``), if any."""
    raw = (os.environ if env is None else env).get("TMUX", "")
    path = raw.split(",", 1)[0]
    return path or None


@dataclass(frozen=True)
class Tmux:
    """A handle on one tmux server: ``socket_path`` (``-S``) or ``socket_name`` (``-L``).

    With neither, tmux picks its default server, which is what a user in a plain
    terminal expects.
    """

    socket_path: str | None = None
    socket_name: str | None = None
    binary: str = "tmux"

    @property
    def socket(self) -> str:
        """The socket path naming this server (stored in the registry with each agent)."""
        return self.socket_path or socket_for_name(self.socket_name or "default")

    def argv(self, *args: str) -> list[str]:
        """The full command line for tmux ``args`` on this server."""
        base = [self.binary]
        if self.socket_path:
            base += ["-S", self.socket_path]
        elif self.socket_name:
            base += ["-L", self.socket_name]
        return [*base, *args]

    def run(self, *args: str, timeout: float = 10.0) -> str:
        """Run one tmux command; return stdout. :class:`TmuxError` when tmux refuses."""
        try:
            out = subprocess.run(
                self.argv(*args),
                capture_output=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise UnavailableError("tmux is not installed (no 'tmux' on PATH)") from None
        except subprocess.TimeoutExpired:
            raise UnavailableError(f"tmux {args[0]} timed out after {timeout:.0f}s") from None
        err = out.stderr.decode("utf-8", "replace").strip()
        if out.returncode != 0:
            if _no_server(err):
                raise UnavailableError(f"no tmux server running{self._where()}")
            raise TmuxError(args[0], err or f"exit status {out.returncode}")
        return out.stdout.decode("utf-8", "replace")

    def _where(self) -> str:
        return f" on socket {self.socket}"

    def list_panes(self) -> list[Pane]:
        """Every pane of every session, in one ``list-panes -a`` call.

        Raises :class:`UnavailableError` when no server runs on this socket.
        """
        out = self.run("list-panes", "-a", "-F", FORMAT)
        return [p for p in map(_parse, out.splitlines()) if p is not None]

    def send_literal(self, pane_id: str, text: str) -> None:
        """Type ``text`` into ``pane_id`` as literal keys (``send-keys -l --``).

        ``-l`` makes key names like ``Enter`` or ``C-c`` plain text, ``--`` stops a
        leading ``-`` being read as a flag, and a trailing ``;`` (which tmux would take
        as a command separator) is escaped.
        """
        self.send_literal_many([(pane_id, text)])

    def send_literal_many(self, items: Sequence[tuple[str, str]]) -> None:
        """Type each ``(pane, text)`` literally, all in ONE tmux call (commands chained
        with ``;``). If any pane is gone tmux stops there: :class:`TmuxError`."""
        args: list[str] = []
        for pane_id, text in items:
            args += [*(";",) * bool(args), "send-keys", "-t", pane_id, "-l", "--"]
            args.append(escape_trailing_semicolon(text))
        if args:
            self.run(*args)

    def send_enter(self, pane_id: str) -> None:
        """Press Enter in ``pane_id`` (a separate call from the text)."""
        self.send_enter_many([pane_id])

    def send_enter_many(self, panes: Sequence[str]) -> None:
        """Press Enter in every pane of ``panes``, in one tmux call."""
        args: list[str] = []
        for pane_id in panes:
            args += [*(";",) * bool(args), "send-keys", "-t", pane_id, "Enter"]
        if args:
            self.run(*args)

    def capture_many(self, panes: Sequence[str], lines: int = 8) -> dict[str, str]:
        """The last ``lines`` non-blank lines of each pane, in ONE tmux call.

        Outputs are told apart by a random marker printed between them, so a pane
        cannot forge another pane's screen. A pane that vanished is left out.
        """
        marker = f"@@claudeswarm-{os.urandom(8).hex()}@@"
        args: list[str] = []
        for pane_id in panes:
            # display-message runs its text through strftime: no "%" in it
            args += [*(";",) * bool(args), "display-message", "-p", marker + pane_id.lstrip("%")]
            args += [";", "capture-pane", "-p", "-t", pane_id]
        try:
            out = self.run(*args) if args else ""
        except TmuxError:  # one pane is gone: ask one at a time
            return self._capture_each(panes, lines)
        screens: dict[str, str] = {}
        for chunk in out.split(marker)[1:]:
            number, _, text = chunk.partition("\n")
            screen = text.rstrip("\n").splitlines()
            screens[f"%{number}"] = "\n".join(screen[-lines:])
        return screens

    def _capture_each(self, panes: Sequence[str], lines: int) -> dict[str, str]:
        screens = {}
        for pane_id in panes:
            try:
                screens[pane_id] = self.capture(pane_id, lines)
            except TmuxError:
                continue
        return screens

    def capture(self, pane_id: str, lines: int = 15) -> str:
        """The last ``lines`` non-blank lines of the visible screen of ``pane_id``."""
        screen = self.run("capture-pane", "-p", "-t", pane_id).rstrip("\n").splitlines()
        return "\n".join(screen[-lines:])


def escape_trailing_semicolon(text: str) -> str:
    """Escape a final ``;`` so tmux's argument parser keeps it as text.

    Examples
    --------
    >>> escape_trailing_semicolon("ls;")
    'ls\\\\;'
    """
    return text[:-1] + "\\;" if text.endswith(";") else text


def _no_server(err: str) -> bool:
    return "no server running" in err or "error connecting to" in err or "No such file" in err


def socket_for_name(name: str = "default") -> str:
    """Where tmux puts the socket for ``-L name`` (``$TMUX_TMPDIR/tmux-UID/name``)."""
    tmpdir = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return os.path.join(tmpdir, f"tmux-{os.geteuid()}", name)


def current(socket: str | None = None) -> Tmux:
    """The server to talk to: ``socket`` if given, else the one in ``$TMUX``, else
    tmux's default server. The socket is always resolved to a path, so records made
    from inside and outside tmux name the same server the same way."""
    return Tmux(socket_path=socket or socket_from_env() or socket_for_name(), binary=_binary())


def for_server(server: Any) -> Tmux:
    """A :class:`Tmux` on the same socket as a ``libtmux.Server`` (duck-typed)."""
    path = getattr(server, "socket_path", None)
    name = getattr(server, "socket_name", None) or "default"
    return current(str(path) if path else socket_for_name(name))


def _binary() -> str:
    return shutil.which("tmux") or "tmux"
