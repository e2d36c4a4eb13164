"""Value types shared by every layer: events, instruments, sides."""

from quotewise.model.events import EVENT_DTYPE, EventKind, empty_events
from quotewise.model.instrument import Instrument

__all__ = ["EVENT_DTYPE", "EventKind", "Instrument", "empty_events"]
