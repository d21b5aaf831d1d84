"""``status``: what happened to one message, per recipient (logged, nudged, read)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from claudeswarm.cli._common import JsonOpt, emit, swarm, table

if TYPE_CHECKING:
    from claudeswarm.tmux.delivery import DeliveryStatus


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("status")(status)


def _text(st: DeliveryStatus) -> str:
    head = f"{st.id}  {st.sender} -> {','.join(st.to)}  [{st.type}]  logged {st.ts[11:23]}"
    rows = [
        (
            r.agent,
            r.logged[11:23],
            (r.nudged or "-")[11:23] or "-",
            (r.read or "-")[11:23] or "-",
            r.summary,
        )
        for r in st.recipients
    ]
    return head + "\n" + table(rows, ("RECIPIENT", "LOGGED", "NUDGED", "READ", "STATUS"))


def status(
    message_id: Annotated[str, typer.Argument(help="The message id (from send).")],
    as_json: JsonOpt = False,
) -> None:
    """Per recipient: logged, nudged (tmux accepted the keys) and read (the recipient's
    inbox showed it), with times. A nudge alone is never reported as delivered."""
    from claudeswarm.tmux import delivery

    st = delivery.status(swarm(), message_id)
    emit(st, as_json, lambda: _text(st))
