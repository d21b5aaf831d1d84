#!/usr/bin/env python3
"""A fake coding agent for tests, benchmarks and the demo.

It behaves like an agent's prompt: the terminal is put in raw mode, a ``> `` prompt is
shown, and every byte received is appended to ``RECORD.bytes``. When Enter completes a
line it is logged to ``RECORD.jsonl``; if the line is a claudeswarm nudge (it mentions
``claudeswarm inbox``) the agent runs ``claudeswarm inbox --json`` as itself and logs
which messages it read, with the time, so a benchmark can measure send -> read.

Discovery recognises agents by executable and arguments, so run it under an agent's
name, the way npm installs CLIs (``node /usr/bin/claude``)::

    ln -s /path/to/scripts/fake_agent.py bin/claude
    python3 bin/claude --record /tmp/rec --join backend

Options: ``--record PATH`` (or env ``FAKE_AGENT_RECORD``), ``--join [NAME]`` (register
this pane first; ``-`` for the default name), ``--busy`` (show Claude Code's
"esc to interrupt" status line, for the screen heuristic), ``--ignore`` (record nudges
but never read), ``--editor CMD`` (the line ``/edit`` runs CMD with the terminal and
waits for it, as an agent opening ``$EDITOR`` does). Ctrl-D or SIGTERM ends it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import termios
import time
import tty
from typing import Any

CLI = [sys.executable, "-m", "claudeswarm"]


class Recorder:
    """Append-only records of what arrived and what was read."""

    def __init__(self, base: str) -> None:
        self.bytes_path = base + ".bytes"
        self.events_path = base + ".jsonl"

    def raw(self, data: bytes) -> None:
        with open(self.bytes_path, "ab") as fh:
            fh.write(data)

    def event(self, **fields: Any) -> None:
        fields["t"] = time.time()
        with open(self.events_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(fields, ensure_ascii=False) + "\n")


def run_inbox(rec: Recorder, name: str | None) -> None:
    """Read the inbox the way an agent would, and record what it showed."""
    args = [*CLI, "inbox", "--json"] + (["--as", name] if name else [])
    out = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    try:
        msgs = json.loads(out.stdout)["messages"] if out.returncode == 0 else []
    except (ValueError, KeyError):
        msgs = []
    rec.event(
        kind="read",
        ids=[m["id"] for m in msgs],
        bodies=[m["body"] for m in msgs],
        rc=out.returncode,
        err=out.stderr.strip()[:300],
    )
    sys.stdout.write(f"\r\n(read {len(msgs)} message(s))\r\n> ")
    sys.stdout.flush()


def join(rec: Recorder, name: str) -> str | None:
    """Register this pane; returns the agent name claudeswarm gave."""
    args = [*CLI, "join", "--json"] + ([] if name == "-" else [name])
    out = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    got = json.loads(out.stdout)["name"] if out.returncode == 0 else None
    rec.event(kind="join", name=got, rc=out.returncode, err=out.stderr.strip()[:300])
    return got


def run_editor(rec: Recorder, command: str) -> None:
    """Run ``command`` on our terminal and wait, then take the terminal back (as a
    job-control shell does) in case it moved into a process group of its own."""
    import shlex

    rec.event(kind="editor", state="open")
    subprocess.run(shlex.split(command), check=False)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.tcsetpgrp(0, os.getpgrp())
    rec.event(kind="editor", state="closed")
    sys.stdout.write("\r\n> ")
    sys.stdout.flush()


def handle_line(
    rec: Recorder, line: bytes, name: str | None, read: bool, editor: str | None = None
) -> None:
    text = line.decode("utf-8", "replace")
    rec.event(kind="line", line=text)
    if read and "claudeswarm inbox" in text:
        run_inbox(rec, name)
    elif editor and text == "/edit":
        run_editor(rec, editor)
    else:
        sys.stdout.write("\r\n> ")
        sys.stdout.flush()


def loop(rec: Recorder, name: str | None, read: bool, editor: str | None = None) -> None:
    buf = b""
    while True:
        data = os.read(0, 65536)
        if not data:
            return
        rec.raw(data)
        for byte in data:
            ch = bytes([byte])
            if ch in (b"\r", b"\n"):
                handle_line(rec, buf, name, read, editor)
                buf = b""
            elif ch == b"\x04" and not buf:
                return
            else:
                buf += ch
                if ch.isascii() and ch.decode().isprintable():
                    sys.stdout.write(ch.decode())
        sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", default=os.environ.get("FAKE_AGENT_RECORD", ""))
    parser.add_argument("--join", metavar="NAME", help="register first ('-': default name)")
    parser.add_argument("--busy", action="store_true", help="show a busy status line")
    parser.add_argument("--ignore", action="store_true", help="never read the inbox")
    parser.add_argument("--editor", metavar="CMD", help="what the line /edit runs")
    parser.add_argument("words", nargs="*", help="ignored (lets a test dress it up)")
    ns = parser.parse_args()
    if not ns.record:
        parser.error("--record PATH (or FAKE_AGENT_RECORD) is required")
    rec = Recorder(ns.record)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    name = join(rec, ns.join) if ns.join else None
    rec.event(kind="ready", pid=os.getpid(), name=name)
    if ns.busy:
        sys.stdout.write("* Working... (esc to interrupt)\r\n")
    sys.stdout.write("> ")
    sys.stdout.flush()
    saved = termios.tcgetattr(0) if os.isatty(0) else None
    try:
        if saved is not None:
            tty.setraw(0)
        loop(rec, name, not ns.ignore, ns.editor)
    finally:
        if saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
