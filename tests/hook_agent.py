#!/usr/bin/env python3
"""A fake Claude Code for hook tests: runs its SessionStart hook the way Claude Code does
(through ``sh -c``, the hook JSON on stdin), records what the hook did, then waits.

Run it under the agent's name so discovery recognises it: ``python3 bin/claude RECORD CMD``
with ``bin/claude`` a symlink to this file. ``RECORD`` gets one JSON object:
``pid``, ``rc``, ``stdout``, ``stderr``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys


def main() -> None:
    record, command = sys.argv[1], sys.argv[2]
    payload = {"hook_event_name": "SessionStart", "source": "startup", "cwd": os.getcwd()}
    out = subprocess.run(
        ["sh", "-c", command],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result = {"pid": os.getpid(), "rc": out.returncode, "stdout": out.stdout, "stderr": out.stderr}
    with open(record + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    os.replace(record + ".tmp", record)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
