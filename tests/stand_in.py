#!/usr/bin/env python3
"""A stand-in agent: a long-lived process that runs commands as its own children.

An agent's tool calls are its child processes, whatever environment they are given.
Tests register a stand-in's pid as an agent, then run the CLI through it, so the CLI's
process ancestry holds that agent exactly as it would under Claude Code.

As a script it reads one JSON request a line on stdin (``argv``, ``env``, ``cwd``,
``input``), runs it, and answers one JSON line (``rc``, ``stdout``, ``stderr``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


class StandIn:
    """A stand-in agent process (``pid``) and a way to run commands under it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid

    def run(
        self, argv: list[str], env: dict[str, str], cwd: Path, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as a child of this process; its exit code and output."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        request = {"argv": argv, "env": env, "cwd": str(cwd), "input": stdin}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        got = json.loads(self.proc.stdout.readline())
        return subprocess.CompletedProcess(argv, got["rc"], got["stdout"], got["stderr"])

    def close(self) -> None:
        """End the process (closing its stdin ends its loop) and reap it."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def serve() -> None:
    for line in sys.stdin:
        req: dict[str, Any] = json.loads(line)
        out = subprocess.run(
            req["argv"],
            env=req["env"],
            cwd=req["cwd"],
            input=req["input"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        reply = {"rc": out.returncode, "stdout": out.stdout, "stderr": out.stderr}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    serve()
