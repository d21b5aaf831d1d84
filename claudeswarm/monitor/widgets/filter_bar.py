"""The filter line: ``/`` opens it, Enter applies, Escape clears and closes."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input

from claudeswarm.messages.filters import MessageFilter
from claudeswarm.monitor.query import parse_filter


class FilterBar(Input):
    """An input that posts :class:`FilterBar.Applied` with a parsed filter."""

    DEFAULT_CSS = """
    FilterBar {
        dock: bottom;
        display: none;
        border: tall $accent;
        &.-open { display: block; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "clear", "Clear filter")]

    class Applied(Message):
        """A new filter (``text`` as typed; empty: everything)."""

        def __init__(self, filt: MessageFilter, text: str) -> None:
            super().__init__()
            self.filter = filt
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            placeholder="filter: type:question agent:alice from:x to:y words…  (Esc clears)",
            id=id,
        )

    def open(self) -> None:
        """Show the bar and focus it."""
        self.add_class("-open")
        self.focus()

    def close(self) -> None:
        """Hide the bar."""
        self.remove_class("-open")

    @on(Input.Submitted)
    def _apply(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            filt = parse_filter(event.value)
        except ValueError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.post_message(self.Applied(filt, event.value.strip()))
        self.close()

    def action_clear(self) -> None:
        """Clear the filter and close the bar."""
        self.value = ""
        self.post_message(self.Applied(MessageFilter(), ""))
        self.close()
