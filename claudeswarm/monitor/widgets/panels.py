"""The Agents, Locks and Tasks panels: a table each, or a one-line note while the data is
not available (say, before ``claudeswarm.locks.manager`` exists).

Every cell is Rich ``Text`` made inert: a DataTable would read a plain ``str`` as markup,
and an agent name, a lock reason or a task title is untrusted text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from claudeswarm.monitor.data import AgentRow, LockRow, Section, TaskRow
from claudeswarm.sanitize import inert

STATE_STYLES = {"busy": "bold yellow", "idle": "green", "active": "green", "gone": "dim red"}


def cell(value: object, style: str = "") -> Text:
    """A table cell: inert text, never markup."""
    return Text(inert(str(value)), style=style, no_wrap=True, overflow="ellipsis")


class SectionPanel(Vertical):
    """A bordered panel showing a :class:`Section` as a table (or its note)."""

    DEFAULT_CSS = """
    SectionPanel {
        border: round $secondary 50%;
        border-title-color: $text;
        height: 1fr;
        &:focus-within { border: round $secondary; }
        & > DataTable { height: 1fr; background: transparent; }
        & > .note { color: $text-muted; padding: 0 1; }
    }
    """
    TITLE: ClassVar[str] = ""
    COLUMNS: ClassVar[Sequence[str]] = ()

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.section: Section | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(cursor_type="row", zebra_stripes=False)
        table.add_columns(*self.COLUMNS)
        yield table
        yield Static(Text("loading…"), classes="note")

    def on_mount(self) -> None:
        self.border_title = Text(self.TITLE)

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one(DataTable)

    def show(self, section: Section) -> None:
        """Replace the panel's content with ``section``."""
        self.section = section
        note = self.query_one(".note", Static)
        table = self.table
        table.display = section.available
        note.display = not section.available or not section.rows
        note.update(Text(section.note if not section.available else self.empty_note()))
        self.border_title = Text(self.title_for(section))  # Text: never markup
        row = table.cursor_row
        table.clear()
        for r in section.rows:
            table.add_row(*self.cells(r))
        if section.rows:
            table.move_cursor(row=min(row, len(section.rows) - 1), animate=False)

    def title_for(self, section: Section) -> str:
        """The border title (row count when available)."""
        return f"{self.TITLE} ({len(section.rows)})" if section.available else self.TITLE

    def empty_note(self) -> str:
        return "none"

    def cells(self, row: Any) -> list[Text]:
        """The cells for one row (panels override)."""
        raise NotImplementedError


class AgentsPanel(SectionPanel):
    """Name, kind, pane, state, last seen, unread count (and messages lost, if any)."""

    TITLE = "Agents"
    COLUMNS = ("name", "kind", "pane", "state", "seen", "unread")

    def empty_note(self) -> str:
        return "no agents yet (claudeswarm join NAME)"

    def cells(self, row: AgentRow) -> list[Text]:
        return [
            cell(row.name, "bold"),
            cell(row.kind),
            cell(row.pane),
            cell(row.state, STATE_STYLES.get(row.state, "")),
            cell(row.seen_ago),
            self._unread(row),
        ]

    @staticmethod
    def _unread(row: AgentRow) -> Text:
        if row.lost:  # mail retention deleted before the agent read it: in red
            return cell(f"{row.unread}, {row.lost} lost", "bold red")
        return cell(row.unread, "bold" if row.unread not in ("0", "…") else "dim")


class LocksPanel(SectionPanel):
    """Pattern, mode, holder, reason, age, time left."""

    TITLE = "Locks"
    COLUMNS = ("pattern", "mode", "holder", "reason", "age", "left")

    def empty_note(self) -> str:
        return "no locks held"

    def cells(self, row: LockRow) -> list[Text]:
        return [  # the holder's pane is in the Agents panel (and in --once --json)
            cell(row.pattern, "bold"),
            cell(row.mode, "yellow" if row.mode == "exclusive" else "cyan"),
            cell(row.holder),
            cell(row.reason),
            cell(row.age),
            cell(row.left, "bold red" if row.left == "expired" else ""),
        ]


class TasksPanel(SectionPanel):
    """Counts by state in the title, then the tasks; ghosts flagged."""

    TITLE = "Tasks"
    COLUMNS = ("id", "title", "status", "pri", "assignee", "try", "")

    def title_for(self, section: Section) -> str:
        if not section.available:
            return self.TITLE
        counts = " · ".join(f"{n} {c}" for n, c in section.counts)
        return f"{self.TITLE}: {counts}"

    def empty_note(self) -> str:
        return "no tasks"

    def cells(self, row: TaskRow) -> list[Text]:
        styles = {"claimed": "yellow", "done": "green", "failed": "red", "pending": "cyan"}
        return [
            cell(row.id[-8:], "dim"),
            cell(row.title, "bold"),
            cell(row.status, styles.get(row.status, "")),
            cell(row.priority),
            cell(row.assignee),
            cell(row.attempts),
            cell("GHOST" if row.ghost else "", "bold white on red"),
        ]
