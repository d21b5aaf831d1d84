"""``init`` and ``config``: create the state directory, show effective settings."""

from __future__ import annotations

import typer

from claudeswarm.cli._common import JsonOpt, emit, swarm, table


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("init")(init)
    app.command("config")(show_config)


def init(as_json: JsonOpt = False) -> None:
    """Create the state directory (0700) and a commented config.toml. Safe to re-run."""
    import os

    from claudeswarm.config import commented_template
    from claudeswarm.storage.files import atomic as _atomic
    from claudeswarm.storage.paths import ensure_state

    sw = swarm()
    ensure_state(sw.paths)
    created = False
    try:
        fd = _atomic.open_state(sw.paths.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(commented_template())
        created = True
    result = {
        "state_dir": str(sw.paths.state),
        "root": str(sw.paths.root),
        "config": str(sw.paths.config),
        "created_config": created,
    }
    emit(
        result,
        as_json,
        lambda: (
            f"state directory {sw.paths.state}"
            + ("" if created else " (already set up; nothing changed)")
        ),
    )


def show_config(as_json: JsonOpt = False) -> None:
    """Show every setting's effective value and where it came from."""
    from dataclasses import asdict, fields

    from claudeswarm.config import Settings, load

    paths = swarm().paths
    loaded = load(paths)
    values = asdict(loaded.settings)
    docs = {f.name: f.metadata["doc"] for f in fields(Settings)}
    rows = [
        {"key": k, "value": v, "source": loaded.sources[k], "doc": docs[k]}
        for k, v in values.items()
    ]
    emit(
        {"state_dir": str(paths.state), "settings": rows},
        as_json,
        lambda: table(
            [(r["key"], r["value"], r["source"]) for r in rows], ("KEY", "VALUE", "SOURCE")
        ),
    )
