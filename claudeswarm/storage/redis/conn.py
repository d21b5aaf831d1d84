"""A thin Redis client over hiredis, for the per-call paths.

Every ``claudeswarm`` call is a fresh process: ``import redis`` (redis-py 8.1, which
imports asyncio) costs ~110 ms here, ``import hiredis`` (the C reply parser redis-py itself
uses) ~0.2 ms and ``import socket`` ~2 ms once ``enum`` is loaded (measured with
``python -c`` start-ups side by side: see docs/ARCHITECTURE.md). So the command and hook
paths speak RESP themselves: a command is encoded here, replies are parsed by
``hiredis.Reader``. Long-lived processes could use redis-py; they use this too, so that
there is one client to test.

URLs: ``redis://[user:password@]host[:port][/db]``, ``rediss://`` (TLS; ``ssl`` is
imported only then) and ``unix://[user:password@]/path/to/socket[?db=N]``. A password not
in the URL comes from ``CLAUDESWARM_REDIS_PASSWORD``; it is never printed
(:meth:`Target.display` masks it).

Failure rules: a server that cannot be reached within the connect timeout, or does not
answer within the command timeout, is :class:`~claudeswarm.errors.BackendUnavailableError`
(exit 4, one line). A connection found broken *before* a command was written is
re-opened once and the command sent; once a command was written, a broken connection
raises :class:`~claudeswarm.errors.OutcomeUnknownError` (the caller decides whether the
command is safe to repeat: every script of the redis backend is written to be).
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

from claudeswarm.errors import (
    BackendError,
    BackendUnavailableError,
    OutcomeUnknownError,
    UsageError,
)

PASSWORD_ENV = "CLAUDESWARM_REDIS_PASSWORD"
Arg = bytes | str | int | float


@dataclass(frozen=True)
class Target:
    """Where the server is and how to log in (parsed from a URL)."""

    scheme: str  # redis | rediss | unix
    host: str = ""
    port: int = 6379
    path: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None

    def display(self) -> str:
        """The URL with any password masked (safe to print)."""
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}{':***' if self.password else ''}@"
        if self.scheme == "unix":
            return f"unix://{auth}{self.path}" + (f"?db={self.db}" if self.db else "")
        return f"{self.scheme}://{auth}{self.host}:{self.port}" + (f"/{self.db}" if self.db else "")


def parse_url(url: str, *, tls_ca: str | None = None, env: dict[str, str] | None = None) -> Target:
    """Parse a ``redis://``, ``rediss://`` or ``unix://`` URL.

    Examples
    --------
    >>> parse_url("redis://:s3cret@db.example:6380/2").display()
    'redis://:***@db.example:6380/2'
    >>> parse_url("unix:///run/redis.sock?db=1").path
    '/run/redis.sock'
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"redis_url {_mask(url)!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise UsageError(f"redis_url {_mask(url)!r} must start with redis://, rediss:// or unix://")
    query = parse_qs(parts.query)
    password = unquote(parts.password) if parts.password else None
    environ = os.environ if env is None else env
    password = password or environ.get(PASSWORD_ENV) or None
    username = unquote(parts.username) if parts.username else None
    db_text = query.get("db", [""])[0] if scheme == "unix" else parts.path.lstrip("/")
    try:
        db = int(db_text or 0)
    except ValueError:
        raise UsageError(
            f"redis_url {_mask(url)!r}: database {db_text!r} is not a number"
        ) from None
    if scheme == "unix":
        if not parts.path:
            raise UsageError(f"redis_url {_mask(url)!r} names no socket path")
        return Target("unix", path=parts.path, db=db, username=username, password=password)
    if not parts.hostname:
        raise UsageError(f"redis_url {_mask(url)!r} names no host")
    return Target(
        scheme,
        host=parts.hostname,
        port=port or 6379,
        db=db,
        username=username,
        password=password,
        tls_ca=tls_ca,
    )


def _mask(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def encode(args: Sequence[Arg]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode("utf-8", "surrogatepass")
        elif isinstance(arg, bool):
            raise TypeError("a bool is not a redis argument")
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(float(arg)).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


@dataclass(frozen=True)
class Script:
    """A Lua script sent by its SHA1 (``EVALSHA``), loaded on first ``NOSCRIPT``."""

    source: str

    @property
    def sha(self) -> str:
        import _sha1  # type: ignore[import-not-found]  # CPython's own: ~0.1 ms; hashlib ~2.4

        digest: str = _sha1.sha1(self.source.encode()).hexdigest()
        return digest


class Connection:
    """One connection to one server, opened on first use.

    Parameters
    ----------
    target : where to connect and how to log in.
    connect_timeout : seconds to open the connection and log in.
    timeout : seconds to wait for a reply (a blocking read passes its own).
    """

    def __init__(self, target: Target, *, connect_timeout: float = 2.0, timeout: float = 5.0):
        self.target = target
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._reader: Any = None
        self._loaded: set[str] = set()

    # -- the connection ----------------------------------------------------------------------

    def _open(self) -> None:
        t = self.target
        where = t.display()
        try:
            if t.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.connect_timeout)
                sock.connect(t.path)
            else:
                sock = socket.create_connection((t.host, t.port), timeout=self.connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if t.scheme == "rediss":
                    sock = _wrap_tls(sock, t)
        except TimeoutError:
            raise BackendUnavailableError(
                where, f"no connection within {self.connect_timeout:g}s"
            ) from None
        except OSError as exc:
            raise BackendUnavailableError(where, exc.strerror or str(exc)) from None
        self._sock = sock
        self._reader = hiredis.Reader()
        self._loaded.clear()
        hello: list[list[Arg]] = []
        if t.password is not None:
            hello.append(["AUTH", t.username, t.password] if t.username else ["AUTH", t.password])
        if t.db:
            hello.append(["SELECT", t.db])
        if hello:
            replies = self._roundtrip(hello, self.connect_timeout)
            for reply in replies:
                if isinstance(reply, hiredis.ReplyError):
                    self.close()
                    raise BackendError(where, _login_error(str(reply)))
        sock.settimeout(self.timeout)

    def _peer_gone(self) -> bool:
        """True when the server closed this (idle) connection, say by restarting: a peek
        that does not wait sees the end of the stream. Checked before writing, so a
        command is never sent into a connection that is already dead."""
        assert self._sock is not None
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
            if not readable:
                return False  # open, nothing to read: the normal case
            # the plain socket's recv, also under TLS (an SSL socket refuses flags): the
            # end of the stream is the same bytes either way
            peek = socket.socket.recv(self._sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            return peek == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._reader = None

    # -- commands ----------------------------------------------------------------------------

    def call(self, *args: Arg, timeout: float | None = None) -> Any:
        """Send one command; its reply (a server error raises :class:`BackendError`)."""
        return _raise(self.target, self.pipeline([list(args)], timeout=timeout)[0])

    def pipeline(
        self, commands: Sequence[Sequence[Arg]], *, timeout: float | None = None
    ) -> list[Any]:
        """Send several commands in one write; their replies in order (server errors are
        returned as ``hiredis.ReplyError`` values, not raised)."""
        if not commands:
            return []
        fresh = self._sock is None or self._peer_gone()
        if fresh:
            self.close()
            self._open()
        try:
            return self._roundtrip(commands, timeout)
        except _NotSentError:
            if fresh:
                where = self.target.display()
                raise BackendUnavailableError(where, "the connection closed") from None
            self._open()  # a stale connection (server restarted): nothing was written
            return self._roundtrip(commands, timeout)

    def eval(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """Run ``script`` (``EVALSHA``; ``EVAL`` when the server does not know it yet)."""
        sha = script.sha
        if sha in self._loaded:
            reply = self.pipeline([["EVALSHA", sha, len(keys), *keys, *args]])[0]
            if not _noscript(reply):
                return _raise(self.target, reply)
        reply = self.pipeline([["EVAL", script.source, len(keys), *keys, *args]])[0]
        self._loaded.add(sha)
        return _raise(self.target, reply)

    def _roundtrip(self, commands: Sequence[Sequence[Arg]], timeout: float | None) -> list[Any]:
        sock = self._sock
        assert sock is not None
        data = b"".join(encode(c) for c in commands)
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close()
            raise _NotSentError from None
        except OSError as exc:
            self.close()
            raise BackendUnavailableError(self.target.display(), exc.strerror or str(exc)) from None
        replies: list[Any] = []
        if timeout is not None:
            sock.settimeout(timeout)
        try:
            while len(replies) < len(commands):
                reply = self._reader.gets()
                if reply is not False:
                    replies.append(reply)
                    continue
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionResetError("the server closed the connection")
                self._reader.feed(chunk)
        except TimeoutError:
            self.close()
            raise OutcomeUnknownError(
                self.target.display(), f"no reply within {timeout or self.timeout:g}s"
            ) from None
        except OSError as exc:
            self.close()
            if not replies and _first_read_reset(exc):
                raise OutcomeUnknownError(self.target.display(), "the connection closed") from None
            raise OutcomeUnknownError(self.target.display(), exc.strerror or str(exc)) from None
        finally:
            if timeout is not None and self._sock is not None:
                self._sock.settimeout(self.timeout)
        return replies


class _NotSentError(Exception):
    """The connection was broken before any byte of the command left."""


def _first_read_reset(exc: OSError) -> bool:
    return isinstance(exc, ConnectionResetError)


def _noscript(reply: Any) -> bool:
    return isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT")


def _raise(target: Target, reply: Any) -> Any:
    if isinstance(reply, hiredis.ReplyError):
        raise BackendError(target.display(), str(reply))
    return reply


def _login_error(text: str) -> str:
    if text.startswith(("WRONGPASS", "ERR invalid password", "NOAUTH")):
        return f"login refused ({text.split(' ', 1)[0]}): check the user and password"
    return text


def _wrap_tls(sock: socket.socket, target: Target) -> socket.socket:
    import ssl  # ~8 ms: only for rediss://

    context = ssl.create_default_context(cafile=target.tls_ca)
    try:
        return context.wrap_socket(sock, server_hostname=target.host)
    except ssl.SSLError as exc:
        sock.close()
        raise BackendError(target.display(), f"TLS failed: {exc.reason or exc}") from None
    except ssl.CertificateError as exc:
        sock.close()
        raise BackendError(target.display(), f"TLS certificate refused: {exc}") from None
