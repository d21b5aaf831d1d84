"""Modal screens: the detail view of one message, and the keyboard help."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from claudeswarm.messages.record import MessageRecord
from claudeswarm.monitor.widgets.messages import TYPE_STYLES
from claudeswarm.sanitize import inert

HELP = (
    ("?", "this help"),
    ("/", "filter messages: type:question agent:alice from:x to:y words"),
    ("Esc", "clear the filter (in the filter bar) / close a window"),
    ("space", "pause / follow the message stream"),
    ("up/down, j/k", "move in the messages (pauses)"),
    ("End", "jump to the newest message and follow"),
    ("Enter", "details of the message under the cursor"),
    ("Tab", "next panel; Enter on an agent shows only its messages"),
    ("q", "quit (the monitor never changes any state)"),
)


class _Modal(ModalScreen[None]):
    DEFAULT_CSS = """
    _Modal { align: center middle; }
    _Modal > VerticalScroll {
        width: 90%; max-width: 110; height: auto; max-height: 80%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,enter", "dismiss", "Close"),
    ]


class DetailScreen(_Modal):
    """One message in full: every field, and the body (inert, newlines kept)."""

    def __init__(self, record: MessageRecord) -> None:
        super().__init__()
        self.record = record

    def compose(self) -> ComposeResult:
        rec = self.record
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("id", Text(inert(rec.id)))
        grid.add_row("time", Text(inert(rec.ts)))
        grid.add_row("from", Text(inert(rec.sender)))
        grid.add_row("to", Text(inert(", ".join(rec.to))))
        grid.add_row("type", Text(inert(rec.type), style=TYPE_STYLES.get(rec.type, "")))
        if rec.reply_to:
            grid.add_row("reply to", Text(inert(rec.reply_to)))
        with VerticalScroll():
            yield Static(grid)
            yield Static(Text(inert(rec.body, keep_newlines=True)), id="body")


class HelpScreen(_Modal):
    """The keys."""

    def compose(self) -> ComposeResult:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold cyan")
        grid.add_column()
        for key, what in HELP:
            grid.add_row(key, what)
        with VerticalScroll():
            yield Static(Text("claudeswarm monitor: keys", style="bold"))
            yield Static(grid)
