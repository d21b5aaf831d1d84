"""The hand-written Redis client against a real ``redis-server``: commands and pipelines,
scripts by SHA, AUTH (password and ACL user), TLS with a certificate made here, a server
restarted between calls and killed during one, and servers that cannot be reached or do
not answer. Every failure is one line and a documented exit code."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_lab import RedisServer

from claudeswarm.errors import (
    EXIT_ERROR,
    EXIT_UNAVAILABLE,
    BackendError,
    BackendUnavailableError,
    OutcomeUnknownError,
    UsageError,
)
from claudeswarm.storage.redis.conn import Connection, Script, Target, parse_url


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path / "redis").start()
    yield srv
    srv.stop()


def connect(url: str, **kw: float) -> Connection:
    return Connection(parse_url(url), **kw)


def test_commands_and_pipelines_round_trip_binary_safe(server: RedisServer) -> None:
    conn = connect(server.url)
    blob = bytes(range(256)) * 4096  # 1 MiB with every byte value, CR and LF included
    assert conn.call("SET", "k", blob) == b"OK"
    assert conn.call("GET", "k") == blob
    replies = conn.pipeline([["INCR", "n"], ["INCR", "n"], ["LPUSH", "q", "é"], ["BOGUS"]])
    assert replies[:3] == [1, 2, 1]
    assert "unknown command" in str(replies[3])  # an error reply in place, not raised
    assert conn.call("LRANGE", "q", 0, -1) == ["é".encode()]
    with pytest.raises(BackendError) as err:
        conn.call("INCR", "k")  # not an integer
    assert "\n" not in str(err.value) and err.value.exit_code == EXIT_ERROR
    conn.close()


def test_scripts_go_by_sha_and_reload_after_a_flush(server: RedisServer) -> None:
    conn = connect(server.url)
    script = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert conn.eval(script, ["c"], [5]) == 5
    assert conn.call("SCRIPT", "EXISTS", script.sha) == [1]
    assert conn.eval(script, ["c"], [5]) == 10  # by SHA now
    conn.call("SCRIPT", "FLUSH")
    assert conn.eval(script, ["c"], [1]) == 11  # NOSCRIPT: sent whole again, once
    conn.close()


def test_password_from_the_url_or_the_environment_and_never_printed(tmp_path: Path) -> None:
    srv = RedisServer(tmp_path / "r", "--requirepass", "s3cret pass").start()
    try:
        url = f"unix://:s3cret%20pass@{srv.socket}"
        assert connect(url).call("PING") == b"PONG"
        target = parse_url(
            f"unix://{srv.socket}", env={"CLAUDESWARM_REDIS_PASSWORD": "s3cret pass"}
        )
        assert Connection(target).call("PING") == b"PONG"
        assert "s3cret" not in parse_url(url).display()
        with pytest.raises(BackendError) as err:
            connect(f"unix://:wrong@{srv.socket}").call("PING")
        assert "login refused" in str(err.value) and "wrong" not in str(err.value)
        with pytest.raises(BackendError) as err:
            Connection(parse_url(f"unix://{srv.socket}", env={})).call("PING")
        assert "NOAUTH" in str(err.value)
    finally:
        srv.stop()


def test_an_acl_user_logs_in_by_name(tmp_path: Path) -> None:
    srv = RedisServer(tmp_path / "r").start()
    try:
        admin = connect(srv.url)
        admin.call("ACL", "SETUSER", "agent", "on", ">pw", "~cs:*", "+@all")
        assert connect(f"unix://agent:pw@{srv.socket}").call("SET", "cs:{p}:x", 1) == b"OK"
        with pytest.raises(BackendError) as err:
            connect(f"unix://agent:pw@{srv.socket}").call("SET", "other", 1)
        assert "NOPERM" in str(err.value)
    finally:
        srv.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RedisServer, int, Path]]:
    d = tmp_path / "tls"
    d.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = _free_port()
    srv = RedisServer(
        d / "srv",
        "--tls-port", str(port), "--tls-cert-file", str(d / "cert.pem"),
        "--tls-key-file", str(d / "key.pem"), "--tls-ca-cert-file", str(d / "cert.pem"),
        "--tls-auth-clients", "no", "--bind", "127.0.0.1",
    ).start()  # fmt: skip
    yield srv, port, d / "cert.pem"
    srv.stop()


def test_tls_with_the_servers_certificate_and_refused_without(
    tls_server: tuple[RedisServer, int, Path],
) -> None:
    _, port, cert = tls_server
    good = Connection(parse_url(f"rediss://localhost:{port}", tls_ca=str(cert)))
    assert good.call("PING") == b"PONG"
    good.close()
    with pytest.raises(BackendError) as err:  # a self-signed certificate nobody vouches for
        Connection(parse_url(f"rediss://localhost:{port}")).call("PING")
    assert "TLS" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises((BackendError, BackendUnavailableError)) as mismatch:  # plain to TLS
        Connection(parse_url(f"redis://localhost:{port}"), timeout=2).call("PING")
    assert mismatch.value.exit_code in (EXIT_ERROR, EXIT_UNAVAILABLE)
    assert "\n" not in str(mismatch.value)


def test_a_restarted_server_is_reconnected_before_the_next_command(server: RedisServer) -> None:
    conn = connect(server.url)
    conn.call("SET", "k", "v")
    server.restart()  # the old connection is dead; nothing was sent on it yet
    assert conn.call("GET", "k") is None  # a fresh server (no persistence), same client
    assert conn.call("PING") == b"PONG"
    conn.close()


def test_a_server_killed_during_a_call_is_an_unknown_outcome(server: RedisServer) -> None:
    conn = connect(server.url, timeout=30)
    got: list[BaseException] = []

    def blocked() -> None:
        try:
            conn.call("BLPOP", "never", 20)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            got.append(exc)

    t = threading.Thread(target=blocked)
    t.start()
    waiter = connect(server.url)
    deadline = 50
    while deadline and b"blocked_clients:1" not in waiter.call("INFO", "clients"):
        deadline -= 1
        threading.Event().wait(0.05)
    waiter.close()
    server.kill()
    t.join(10)
    assert not t.is_alive()
    assert len(got) == 1 and isinstance(got[0], OutcomeUnknownError)
    assert got[0].exit_code == EXIT_UNAVAILABLE and "may or may not" in str(got[0])


def test_an_unreachable_server_is_one_line_exit_4(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError) as err:
        connect(f"unix://{tmp_path / 'nothing.sock'}").call("PING")
    assert err.value.exit_code == EXIT_UNAVAILABLE and "\n" not in str(err.value)
    port = _free_port()  # nobody listens there
    with pytest.raises(BackendUnavailableError):
        connect(f"redis://127.0.0.1:{port}").call("PING")


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    path = tmp_path / "mute.sock"
    mute = socket.socket(socket.AF_UNIX)
    mute.bind(str(path))
    mute.listen(8)  # accepts (the kernel does), never replies
    try:
        with pytest.raises(OutcomeUnknownError) as err:
            Connection(parse_url(f"unix://{path}"), timeout=0.3).call("PING")
        assert "no reply within 0.3s" in str(err.value)
    finally:
        mute.close()


@pytest.mark.parametrize(
    "url",
    ["http://x", "redis://", "unix://", "redis://h:99999", "redis://h/abc", "unix:///s?db=x"],
)
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        parse_url(url)


def test_targets_mask_passwords() -> None:
    t = parse_url("rediss://user:pw@h:7000/3")
    assert t == Target("rediss", host="h", port=7000, db=3, username="user", password="pw")
    assert t.display() == "rediss://user:***@h:7000/3"
    assert "pw" not in repr(t.display())
