"""``send``, ``broadcast``, ``inbox``, ``log``: the message commands."""

from __future__ import annotations

import sys
from datetime import datetime  # typer reads the annotations at run time
from typing import TYPE_CHECKING, Annotated

import typer

from claudeswarm.cli._common import (
    AsOpt,
    JsonOpt,
    after_commit,
    count,
    emit,
    print_json,
    swarm,
    warn,
    when,
)

if TYPE_CHECKING:
    from claudeswarm.messages.record import MessageRecord
    from claudeswarm.messages.service import InboxResult
    from claudeswarm.storage.files.retention_ledger import Loss
    from claudeswarm.swarm import Swarm

TYPE_HELP = (
    "Message type: info, question, answer, blocked, done, review, ack, urgent, task, system."
)
TypeOpt = Annotated[str, typer.Option("--type", "-t", help=TYPE_HELP)]
ReplyOpt = Annotated[str | None, typer.Option("--reply-to", help="Id of the message this answers.")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("send")(send)
    app.command("broadcast")(broadcast)
    app.command("inbox")(inbox)
    app.command("log")(log)


def render(rec: MessageRecord, *, full: bool = True) -> str:
    """One message for people: header line, then the body made inert and indented."""
    from claudeswarm.sanitize import inert

    head = f"{rec.ts[11:19]}  {rec.sender} -> {','.join(rec.to)}  [{rec.type}]  {rec.id}"
    if rec.reply_to:
        head += f"  (re {rec.reply_to})"
    if not full:
        return inert(f"{head}  {rec.body}")
    body = inert(rec.body, keep_newlines=True).replace("\n", "\n    ")
    return f"{inert(head)}\n    {body}"


def send(
    to: Annotated[list[str], typer.Argument(help="Recipient agent names.", show_default=False)],
    message: Annotated[str, typer.Argument(help="The message text (UTF-8).", show_default=False)],
    mtype: TypeOpt = "info",
    reply_to: ReplyOpt = None,
    urgent: Annotated[
        bool, typer.Option("--urgent", help="Type urgent; nudge even a busy agent.")
    ] = False,
    as_name: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send MESSAGE to one or more agents. The log is the truth: it is appended first.

    Exit 2 for bad input (empty, too long, unknown type or recipient), 3 when the rate
    limiter refuses (nothing is logged then; the error says when to retry).
    """
    from claudeswarm.messages import service as messaging

    sw = swarm()
    sender = messaging.resolve_sender(sw, as_name)
    rec = messaging.send(
        sw, sender, to, message, type="urgent" if urgent else mtype, reply_to=reply_to
    )
    after_commit(f"sent {rec.id}", lambda: _nudge(sw, rec))
    emit(rec, as_json, lambda: f"sent {rec.id} to {', '.join(rec.to)}")


def broadcast(
    message: Annotated[str, typer.Argument(help="The message text.", show_default=False)],
    mtype: TypeOpt = "info",
    reply_to: ReplyOpt = None,
    as_name: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send MESSAGE to every agent."""
    from claudeswarm.messages import service as messaging

    sw = swarm()
    sender = messaging.resolve_sender(sw, as_name)
    rec = messaging.broadcast(sw, sender, message, type=mtype, reply_to=reply_to)
    after_commit(f"broadcast {rec.id}", lambda: _nudge(sw, rec))
    emit(rec, as_json, lambda: f"broadcast {rec.id}")


def _nudge(sw: Swarm, rec: MessageRecord) -> None:
    """The record is logged; start the detached nudger if anyone can be nudged (best
    effort: the log is the truth, a nudge only says "look").

    Settings were checked when they were loaded (before logging). The delivery layer is
    imported only when some recipient has a pane: a send that nudges nobody skips it.
    """
    from claudeswarm.agents import registry

    if sw.settings.nudge == "never":
        return
    if registry.reachable(registry.load(sw.paths), rec.to, rec.sender):
        from claudeswarm.tmux import delivery

        delivery.after_send(sw, rec)


def inbox(
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            parser=count(1),
            help="Show at most N, the oldest unread ones; the rest stay unread.",
        ),
    ] = None,
    peek: Annotated[bool, typer.Option("--peek", help="Show without marking read.")] = False,
    show_all: Annotated[
        bool,
        typer.Option("--all", help="Every retained message to you, read or not (marks nothing)."),
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep waiting for new messages (Ctrl-C to stop).")
    ] = False,
    as_name: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show your unread messages, oldest first, and mark them read.

    If retention deleted unread messages before you read them, one line on stderr says
    how many and when they were sent (once; exit 0).
    """
    import time

    from claudeswarm.messages import service as messaging

    sw = swarm()
    me = messaging.resolve_sender(sw, as_name)
    if show_all:
        msgs = messaging.history(sw, me, limit=limit)
        emit(
            {"agent": me, "messages": msgs},
            as_json,
            lambda: "\n".join(render(m) for m in msgs) or "no messages",
        )
        return
    said = None
    while True:
        res = messaging.inbox(sw, me, limit=limit, peek=peek)
        for line in res.warnings:
            warn(line)
        if res.lost is not None and res.lost != said:  # one line, before what remains
            _say(res.lost.sentence(me))
            said = res.lost  # --peek --follow finds it again each round: said once
        if as_json and (res.messages or not follow):
            print_json(res)
        elif not as_json:
            _print_inbox(res, follow)
        if not follow:
            return
        sys.stdout.flush()  # through a pipe too, each batch as it comes
        time.sleep(0.25)


def _say(line: str) -> None:
    """One line on stderr (a loss report: already inert); nobody reading it is no error."""
    import contextlib
    import sys

    with contextlib.suppress(BrokenPipeError):
        print(line, file=sys.stderr, flush=True)


def _print_inbox(res: InboxResult, follow: bool) -> None:
    for m in res.messages:
        print(render(m))
    if res.more:
        print(f"({res.more} more unread: run 'claudeswarm inbox' again)")
    if not res.messages and not follow:
        print("no unread messages")


def log(
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", parser=count(), help="Show at most N, the newest ones."),
    ] = 20,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Then keep printing new ones.")
    ] = False,
    mtype: Annotated[
        list[str] | None, typer.Option("--type", "-t", help="Only these types (repeatable).")
    ] = None,
    agent: Annotated[
        list[str] | None,
        typer.Option("--agent", "-a", help="Only messages from or to this agent (repeatable)."),
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option("--since", parser=when, help="Only since WHEN: 10m, 2h (ago) or an ISO time."),
    ] = None,
    grep: Annotated[
        list[str] | None,
        typer.Option("--grep", help="Only bodies containing TEXT (case-insensitive)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the message log (everyone's messages), newest last.

    With --follow, rotated logs deleted by retention before they were read are reported
    in one stderr line each.
    """
    from claudeswarm.messages import service as messaging
    from claudeswarm.messages.filters import MessageFilter

    for t in mtype or ():
        messaging.check_type(t)
    filt = MessageFilter(
        types=frozenset(mtype) if mtype else None,
        agents=frozenset(agent) if agent else None,
        since=since,
        text=tuple(grep or ()),
    )
    sw = swarm()
    start = messaging.end_cursor(sw) if follow else None  # first: nothing slips by
    msgs = messaging.recent(sw, limit, filt) if limit else []
    for m in msgs:
        print_json(m) if as_json else print(render(m))
    if not follow:
        if not msgs and not as_json:
            print("no messages")
        return
    sys.stdout.flush()  # a pipe's reader sees these now, not with the next new message
    shown = frozenset(m.id for m in msgs)
    for m in messaging.follow(sw, filt, cursor=start, skip=shown, on_gap=_say_gap):
        print_json(m) if as_json else print(render(m), flush=True)


def _say_gap(lost: Loss) -> None:
    """One stderr line for rotated logs deleted before the follower read them."""
    _say(lost.sentence())
