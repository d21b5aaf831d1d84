"""The Messages panel: a bounded ring of records, filtered, drawn one line per message.

The ring is a ``deque(maxlen=ring_size)``: memory does not grow with the log. The widget
draws with the line API (only visible rows are rendered, each cached by id), so a full
ring costs the same as an empty one. Bodies are made inert and drawn as Rich ``Text``,
never markup: ``[bold]`` or ``\\x1b[2J`` in a body is shown, not obeyed.

Following (the default) keeps the newest message in view; paused freezes what is shown
while the ring goes on filling. Moving the cursor pauses; ``space`` toggles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from claudeswarm.messages.filters import MessageFilter
from claudeswarm.messages.record import MessageRecord
from claudeswarm.sanitize import inert

#: colour of each message type
TYPE_STYLES: dict[str, str] = {
    "info": "bright_black",
    "question": "bold cyan",
    "answer": "green",
    "blocked": "bold red",
    "done": "bold green",
    "review": "magenta",
    "ack": "bright_black",
    "urgent": "bold white on red",
    "task": "blue",
    "system": "yellow",
}
ROUTE_WIDTH = 26


def route(rec: MessageRecord) -> str:
    """``sender -> recipients`` (made inert)."""
    return inert(f"{rec.sender} → {','.join(rec.to)}")


def row_text(rec: MessageRecord) -> Text:
    """One message as one line of styled text: time, route, type, body."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(inert(rec.ts[11:19]), "dim")
    text.append("  ")
    text.append(route(rec)[:ROUTE_WIDTH].ljust(ROUTE_WIDTH), "bold")
    text.append("  ")
    text.append(inert(rec.type).ljust(8), TYPE_STYLES.get(rec.type, ""))
    text.append("  ")
    text.append(inert(rec.body))  # one line: newlines become visible \x0a
    return text


class MessageList(ScrollView, can_focus=True):
    """The newest messages in a bounded ring, one line each, with a cursor."""

    DEFAULT_CSS = """
    MessageList {
        height: 1fr;
        border: round $primary 50%;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        overflow-x: hidden;
        &:focus { border: round $primary; }
    }
    MessageList > .message-list--cursor { background: $accent 40%; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"message-list--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor(-20)", "Page up", show=False),
        Binding("pagedown", "cursor(20)", "Page down", show=False),
        Binding("home", "cursor(-1000000)", "First", show=False),
        Binding("end", "follow", "Follow", show=False),
        Binding("enter", "open", "Detail"),
    ]

    following: reactive[bool] = reactive(True)
    """True: new messages show and stay in view. False: the view is frozen."""

    class Opened(Message):
        """The user asked for the detail view of one record."""

        def __init__(self, record: MessageRecord) -> None:
            super().__init__()
            self.record = record

    def __init__(self, ring_size: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ring: deque[MessageRecord] = deque(maxlen=ring_size)
        self.filter = MessageFilter()
        self.filter_text = ""
        self.seen = 0  # records that went through the ring
        self.waiting = 0  # arrived while paused (not shown yet)
        self.note = ""  # shown after the state in the subtitle (e.g. lines skipped)
        self._view: list[MessageRecord] = []
        self.cursor = -1
        self._cache: LRUCache[tuple[str, int, bool], Strip] = LRUCache(512)

    # -- data -----------------------------------------------------------------------------

    @property
    def shown(self) -> list[MessageRecord]:
        """The records currently drawn, oldest first."""
        return self._view

    def extend(self, records: Iterable[MessageRecord], arrived: int | None = None) -> None:
        """Add records to the ring (oldest evicted); redraw if following. ``arrived``: how
        many records came in all, when only the newest of a burst are passed."""
        batch = list(records)
        self.ring.extend(batch)
        count = len(batch) if arrived is None else arrived
        self.seen += count
        if not self.following:
            self.waiting += count
            self._update_title()
            return
        self._rebuild(to_end=True)

    def set_filter(self, filt: MessageFilter, text: str) -> None:
        """Show only records passing ``filt`` (``text`` is how the user wrote it)."""
        self.filter, self.filter_text = filt, text
        self.waiting = 0  # the rebuilt view holds everything in the ring
        self._rebuild(to_end=self.following)

    def _rebuild(self, *, to_end: bool) -> None:
        keep = self.filter.matches
        selected = self._view[self.cursor].id if 0 <= self.cursor < len(self._view) else None
        self._view = [r for r in self.ring if keep(r)]
        if to_end or selected is None:
            self.cursor = len(self._view) - 1
        else:
            ids = [r.id for r in self._view]
            self.cursor = ids.index(selected) if selected in ids else len(ids) - 1
        self.virtual_size = Size(self.size.width, len(self._view))
        self._update_title()
        self.refresh()
        if to_end:
            self._scroll_to_end()
        else:
            self._show_cursor()

    def _update_title(self) -> None:
        state = "following" if self.following else f"paused (+{self.waiting} new)"
        # Text, not str: a title string is markup, and the filter is typed by the user
        size = f"{len(self._view)}/{len(self.ring)} of {self.ring.maxlen}"
        self.border_title = Text(f"Messages {size}")
        shown_filter = f"filter: {inert(self.filter_text)}" if self.filter_text else "no filter"
        note = f" · {self.note}" if self.note else ""
        self.border_subtitle = Text(f"{state} · {shown_filter}{note}")

    def watch_following(self, following: bool) -> None:
        if following:
            self.waiting = 0
            self._rebuild(to_end=True)
        else:
            self._update_title()

    # -- actions --------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        """Move the cursor (this pauses, so what you look at stays put)."""
        if not self._view:
            return
        self.following = False
        self.cursor = max(0, min(len(self._view) - 1, self.cursor + delta))
        self._show_cursor()
        self.refresh()

    def action_follow(self) -> None:
        """Jump to the newest message and follow."""
        self.following = True

    def action_open(self) -> None:
        """Open the detail view of the message under the cursor."""
        if 0 <= self.cursor < len(self._view):
            self.post_message(self.Opened(self._view[self.cursor]))

    def _show_cursor(self) -> None:
        height = self.scrollable_content_region.height or 1
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    # -- drawing --------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._cache.clear()
        self.virtual_size = Size(self.size.width, len(self._view))
        if self.following:  # the first layout: now the height is known
            self.call_after_refresh(self._scroll_to_end)
        else:
            self.call_after_refresh(self._show_cursor)

    def _scroll_to_end(self) -> None:
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def render_line(self, y: int) -> Strip:
        """Draw the message at row ``y`` of the visible area."""
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if not 0 <= index < len(self._view):
            return Strip.blank(width, self.rich_style)
        rec = self._view[index]
        key = (rec.id, width, index == self.cursor)
        strip = self._cache.get(key)
        if strip is None:
            text = row_text(rec)
            text.truncate(width, overflow="ellipsis", pad=True)
            style: Style = self.rich_style
            if index == self.cursor:
                style = style + self.get_component_rich_style("message-list--cursor")
            text.style = style  # under the spans: type colours stay
            strip = Strip(text.render(self.app.console), cell_len(text.plain))
            strip = strip.crop_extend(0, width, style)
            self._cache[key] = strip
        return strip.apply_offsets(0, index)
