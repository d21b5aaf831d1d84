#!/usr/bin/env python3
"""A fake ``$EDITOR`` for nudge tests: it reads the terminal and records every byte.

``python3 fake_editor.py RECORD [--own-group]``: writes ``RECORD.jsonl`` (one ``ready``
line: pid, process group) and appends every byte read from stdin to ``RECORD.bytes``,
until end of input or SIGTERM. With ``--own-group`` it first moves into a process group
of its own and takes the terminal's foreground (what a job-control shell does for vim);
without, it stays in its parent's group and so shares the foreground with the agent
(what ``spawnSync(editor, {stdio: "inherit"})`` does).
"""

from __future__ import annotations

import json
import os
import signal
import sys


def main() -> None:
    record, own_group = sys.argv[1], "--own-group" in sys.argv[2:]
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if own_group:
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not take it
        os.setpgid(0, 0)
        os.tcsetpgrp(0, os.getpgrp())
    with open(record + ".jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"kind": "ready", "pid": os.getpid(), "pgrp": os.getpgrp()}) + "\n")
    while data := os.read(0, 4096):
        with open(record + ".bytes", "ab") as fh:
            fh.write(data)


if __name__ == "__main__":
    main()
