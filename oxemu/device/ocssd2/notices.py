"""The chunk notification log (log page 0xD0, spec 2.0 2.1.5) and the asynchronous event
that announces it: the device tells the host when a chunk's error rate or wear calls for
action (refresh its data, or level wear), without the host polling the chunk log.

The log keeps the newest LOG_ENTRIES notifications (not across power cycles: they are
hints). One asynchronous event is raised per unread batch: once reported, further
notifications wait until the host reads the log page, as NVMe masks an event type
until its log page is read."""
import ctypes

from ...wire import AsyncEventType, ChunkNotification, NotifyMask, NotifyState, Ocssd2LogPage, async_event_result

LOG_ENTRIES = 64

EVENT = async_event_result(AsyncEventType.VENDOR, Ocssd2LogPage.CHUNK_NOTIFICATION)


class Notices:
    """`raise_event(result)` is the controller's asynchronous-event hook (None: none yet)."""

    def __init__(self):
        self.entries: list[ChunkNotification] = []
        self.count = 0
        self.unread = False
        self.raise_event = None

    def post(self, lba: int, state: NotifyState, mask: NotifyMask, nlb: int = 0) -> None:
        self.count += 1
        e = ChunkNotification(nc=self.count, lba=lba, nsid=1, state=int(state), mask=int(mask), nlb=nlb)
        self.entries.insert(0, e)
        del self.entries[LOG_ENTRIES:]
        if not self.unread:
            self.unread = True
            if self.raise_event is not None:
                self.raise_event(EVENT)

    def log(self) -> bytes:
        """The log page, newest first, LOG_ENTRIES entries (unused ones zero). Reading it
        re-arms the event."""
        self.unread = False
        out = bytearray(LOG_ENTRIES * ctypes.sizeof(ChunkNotification))
        for i, e in enumerate(self.entries):
            out[i * 64:(i + 1) * 64] = bytes(e)
        return bytes(out)
