"""The monitor app: panels on top, the message ring below, fed by one reader thread.

The reader thread (a Textual thread worker) owns the :class:`~claudeswarm.monitor.feed.Feed`
and does nothing but poll it and ``post_message`` the result. It posts at most one update
at a time: until the app has applied the last one, new records are merged into a pending
update bounded by the ring size, so a flood never builds a queue of events, and the app
always catches up with the newest state.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Footer
from textual.worker import get_current_worker

from claudeswarm.errors import SwarmError, UsageError
from claudeswarm.messages.filters import MessageFilter
from claudeswarm.monitor.data import Section, aged
from claudeswarm.monitor.feed import Feed, FeedUpdate
from claudeswarm.monitor.screens import DetailScreen, HelpScreen
from claudeswarm.monitor.widgets.filter_bar import FilterBar
from claudeswarm.monitor.widgets.messages import MessageList
from claudeswarm.monitor.widgets.panels import AgentsPanel, LocksPanel, SectionPanel, TasksPanel
from claudeswarm.swarm import Swarm

POLL_SECONDS = 0.1
AGE_REFRESH_SECONDS = 1.0


class FeedUpdated(Message):
    """New records and changed panels, posted by the reader thread."""

    def __init__(self, update: FeedUpdate) -> None:
        super().__init__()
        self.update = update


class MonitorApp(App[None]):
    """``claudeswarm monitor``: live and read-only. Build it with :func:`create_app`."""

    TITLE = "claudeswarm monitor"
    CSS = """
    #top { height: 10; }
    #top > #agents { width: 46; }
    #top > #locks { width: 1fr; }
    #tasks { height: 8; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("space", "toggle_follow", "Pause/Follow"),
        Binding("slash", "filter", "Filter"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(self, swarm: Swarm, *, ring_size: int, poll: float = POLL_SECONDS) -> None:
        super().__init__()
        self.swarm = swarm
        self.ring_size = ring_size
        self.poll = poll
        self.feed = Feed(swarm, ring_size=ring_size)
        self.ready = False  # the reader thread's first update (unread counts) is shown
        self.bad_lines = 0
        self.skipped_logs = 0  # rotated logs deleted before the reader got to them
        self.problem = ""  # why the log cannot be read now ("" when it can)
        self._stop = threading.Event()
        self._ack = threading.Event()
        self._ack.set()

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield AgentsPanel(id="agents")
            yield LocksPanel(id="locks")
        yield TasksPanel(id="tasks")
        yield MessageList(self.ring_size, id="messages")
        yield FilterBar(id="filter")
        yield Footer()

    @property
    def messages(self) -> MessageList:
        """The message panel (its ``ring`` is the bounded ring)."""
        return self.query_one(MessageList)

    def on_mount(self) -> None:
        # the first screen: newest records read backwards, panels read once; unread
        # counts (which may scan) follow from the reader thread
        try:
            self.messages.extend(self.feed.start())
        except (SwarmError, OSError):  # the reader thread keeps trying
            self.problem = self.feed.problem
            self.messages.note = self._note()
        self._apply(self.feed.panels())
        self.messages.focus()
        # the reader starts once the first screen is drawn: it must not compete with it
        self.call_after_refresh(self._start_reader)
        self.set_interval(AGE_REFRESH_SECONDS, self._refresh_ages)

    def _start_reader(self) -> None:
        self.run_worker(self._read_loop, thread=True, exclusive=True, group="feed", name="feed")

    def on_unmount(self) -> None:
        self._stop.set()

    # -- the reader thread ----------------------------------------------------------------

    def _read_loop(self) -> None:
        """Poll the feed; post one update at a time (merged while the app is busy)."""
        worker = get_current_worker()
        pending = FeedUpdate()
        first = True  # always posted: it marks the first screen complete (``ready``)
        try:
            while not (self._stop.is_set() or worker.is_cancelled):
                update = self.feed.poll()
                pending = pending.merge(update, self.ring_size)
                if (pending or first) and self._ack.is_set():
                    first = False
                    self._ack.clear()
                    self.post_message(FeedUpdated(pending))
                    pending = FeedUpdate()
                if update.seen < self.feed.batch:
                    self._stop.wait(self.poll)
        finally:
            self.feed.close()

    def on_feed_updated(self, event: FeedUpdated) -> None:
        try:
            self._apply(event.update)
            self.ready = True
        finally:
            self._ack.set()

    def _apply(self, update: FeedUpdate) -> None:
        now = self.swarm.clock()
        for section in (update.agents, update.locks, update.tasks):
            if section is not None:
                self._panel(section).show(aged(section, now))
        if update.bad:
            self.bad_lines += update.bad
        for lost in update.gaps:
            self.skipped_logs += lost.files
            self.notify(lost.sentence(), title="messages skipped", severity="warning")
        if update.problem is not None:
            self.problem = update.problem
        if update.bad or update.gaps or update.problem is not None:
            self.messages.note = self._note()
        if update.seen:
            self.messages.extend(update.records, arrived=update.seen)

    def _note(self) -> str:
        """What the message panel's title says was skipped."""
        notes = [self.problem] if self.problem else []
        if self.bad_lines:
            notes.append(f"{self.bad_lines} unreadable lines skipped")
        if self.skipped_logs:
            logs = f"{self.skipped_logs} rotated log{'s' if self.skipped_logs != 1 else ''}"
            notes.append(f"{logs} deleted before read")
        return " · ".join(notes)

    def _panel(self, section: Section) -> SectionPanel:
        return self.query_one(f"#{section.name}", SectionPanel)

    def _refresh_ages(self) -> None:
        now = self.swarm.clock()
        for panel in self.query(SectionPanel):
            if panel.section is not None and panel.section.rows:
                fresh = aged(panel.section, now)
                if fresh != panel.section:
                    panel.show(fresh)

    # -- actions --------------------------------------------------------------------------

    def action_toggle_follow(self) -> None:
        """Pause or follow the message stream."""
        self.messages.following = not self.messages.following

    def action_filter(self) -> None:
        """Open the filter bar."""
        self.query_one(FilterBar).open()

    def action_help(self) -> None:
        """Show the keys."""
        self.push_screen(HelpScreen())

    def on_message_list_opened(self, event: MessageList.Opened) -> None:
        self.push_screen(DetailScreen(event.record))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on an agent: show only messages from or to that agent."""
        panel = self.query_one(AgentsPanel)
        if event.data_table is not panel.table or panel.section is None:
            return
        name = panel.section.rows[event.cursor_row].name
        self.query_one(FilterBar).value = f"agent:{name}"
        self.messages.set_filter(MessageFilter(agents=frozenset({name})), f"agent:{name}")
        self.messages.focus()

    def on_filter_bar_applied(self, event: FilterBar.Applied) -> None:
        self.messages.set_filter(event.filter, event.text)
        self.messages.focus()


def create_app(
    swarm: Swarm, *, ring_size: int | None = None, poll: float = POLL_SECONDS
) -> MonitorApp:
    """Build the monitor for ``swarm`` (tests call this, then ``app.run_test()``).

    Parameters
    ----------
    swarm : the state directory, settings and clock (ages are computed with its clock).
    ring_size : messages kept in memory (default: setting ``monitor_ring``).
    poll : seconds the reader thread sleeps when the log has nothing new.

    Examples
    --------
    >>> app = create_app(open_swarm(), ring_size=500)   # doctest: +SKIP
    >>> app.run()                                       # doctest: +SKIP
    """
    size = swarm.settings.monitor_ring if ring_size is None else ring_size
    if size < 1:
        raise UsageError(f"the message ring must hold at least 1 message, not {size}")
    return MonitorApp(swarm, ring_size=size, poll=poll)
