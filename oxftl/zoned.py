"""The zoned host FTL: a log-structured, page-mapped FTL over the zones of a ZNS device,
GC by zone reset -- the stack `ox mount --mode zoned` serves (oxftl.zoned:ZonedFtl@host+zns).

It is the template FTL (oxftl.template.PageFtl) with a zone's life in mind, on
oxhost.zns.ZoneMedia, where a block is a zone, a page a write unit at the write pointer,
and an erase a zone reset:

- data gathers in a buffer of several pages and goes out a batch at a time, the pages
  dealt round-robin over the media's units (one open zone each), in one program call:
  the device writes the zones at once, on their different LUNs, where a page at a time
  would wait for each program in turn. Each sector's LBA and sequence number ride in its
  16 bytes of metadata. A flush pads only the last page it programs;
- GC is greedy: the full zone with the fewest valid sectors; its valid sectors move to the
  open zones and the zone is reset once they are on media;
- recovery reads the metadata of what the zone write pointers say is written (nothing
  past them), rebuilds the map from the newest sequence numbers, then finishes every zone
  it found written: it never appends to one again, and a finished zone holds no open or
  active resource, which the device counts.

Zone append would let several writers share a zone without agreeing on the write
pointer; with one writer per open zone (this FTL's buffer) a plain write at the pointer
says the same and keeps the page order the recovery relies on, so it is not used.
"""
import numpy as np

from .errors import NoSpace, ReadOnly
from .template import FULL, OOB, PAD, PageFtl

PAGES_PER_UNIT = 8               # pages a batch gives each unit


class ZonedFtl(PageFtl):
    name = "zoned"
    version = 1

    def __init__(self, media):
        super().__init__(media)
        g = self.g
        self.batch = PAGES_PER_UNIT * g.units             # pages in the buffer
        self.slots = self.batch * g.sectors
        self.buf = np.zeros(self.slots * self.sb, np.uint8)
        self.buf_oob = np.zeros(self.slots, OOB)
        self.buf_src = np.full(self.slots, -1, np.int64)

    def _writable(self):
        if self.read_only:
            raise ReadOnly("the zoned FTL is read-only: too few good zones are left")

    def open(self):
        super().open()
        finish = getattr(self.media, "finish", None)
        if finish is not None:
            finish(np.flatnonzero(self.state == FULL))

    def flush(self):
        self._place_trims()
        part = self.n % self.g.sectors
        if part:
            pad = self.g.sectors - part
            self.counters["pad_sectors"] += pad
            for _ in range(pad):
                self._put(int(PAD), 0, np.zeros(self.sb, np.uint8))
        if self.n:
            self._program_buffer()
        self._service()

    def _program_buffer(self):
        """The buffer's whole pages to the next pages of the open zones, in one program
        call; a page whose program failed is tried again on another zone, and its zone
        retired later. NoSpace with some pages placed keeps the rest in the buffer."""
        g = self.g
        k = self.n // g.sectors
        oob = np.zeros((k * g.sectors, g.oob_nbytes), np.uint8)
        oob[:, :OOB.itemsize] = self.buf_oob[:k * g.sectors].view(np.uint8).reshape(-1, OOB.itemsize)
        oob = oob.reshape(k, -1)
        data = self.buf[:k * g.page_nbytes].reshape(k, -1)
        placed = np.full(k, -1, np.int64)
        todo = np.arange(k)
        try:
            while todo.size:
                pages = []
                for _ in todo.tolist():
                    b = self._next_block()                 # NoSpace: program what has a page, keep the rest
                    pages.append(b * g.pages + int(self.wp[b]))
                    self.wp[b] += 1
                    if self.wp[b] == g.pages:
                        self.state[b], self.open_block[b // g.blocks] = FULL, -1
                ok = self._program(todo, pages, data, oob, placed)
                todo = todo[~ok]
        except NoSpace:
            if pages:
                self._program(todo[:len(pages)], pages, data, oob, placed)
            self._map(placed)
            raise
        self._map(placed)

    def _program(self, todo, pages, data, oob, placed) -> np.ndarray:
        """Program buffer pages todo[i] at pages[i]; which took."""
        g = self.g
        ok = self.media.program(pages, data[todo[:len(pages)]], oob[todo[:len(pages)]])
        for i in np.flatnonzero(ok).tolist():
            placed[todo[i]] = pages[i]
        for i in np.flatnonzero(~ok).tolist():
            b = pages[i] // g.pages
            self.counters["program_retries"] += 1
            if self.state[b] != FULL:
                self.state[b] = FULL
                if self.open_block[b // g.blocks] == b:
                    self.open_block[b // g.blocks] = -1
            if b not in self.to_retire:
                self.to_retire.append(b)
        return ok

    def _map(self, placed) -> None:
        """The placed pages' sectors into the map; the buffer keeps the others, in order."""
        g = self.g
        done = placed >= 0
        for p in np.flatnonzero(done).tolist():
            page = int(placed[p])
            b = page // g.pages
            lo = p * g.sectors
            seqs = self.buf_oob["seq"][lo:lo + g.sectors][self.buf_oob["lba"][lo:lo + g.sectors] < np.uint64(2**63)]
            if seqs.size:
                self.min_seq[b] = min(self.min_seq[b], int(seqs.astype(np.int64).min()))
            for slot in range(lo, lo + g.sectors):
                lba = int(self.buf_oob["lba"][slot])
                if lba >= self.capacity:
                    continue
                if self.buf_src[slot] < 0:                 # user data: the newest if still cached here
                    if self.cached.get(lba) != slot:
                        continue
                    del self.cached[lba]
                elif self.l2p[lba] != self.buf_src[slot] or lba in self.cached:
                    continue                               # GC copy overtaken by a newer write
                self._unmap(self.l2p[lba:lba + 1])
                self.l2p[lba] = page * g.sectors + (slot - lo)
                self.valid[b] += 1
        keep = np.flatnonzero(~done)
        if keep.size == 0:
            self.n = 0
            self.buf_src[:] = -1
            return
        slots = (keep[:, None] * g.sectors + np.arange(g.sectors)).reshape(-1)      # move them to the front
        moved = {int(s): i for i, s in enumerate(slots.tolist())}
        self.buf[:slots.size * self.sb] = self.buf.reshape(-1, self.sb)[slots].reshape(-1)
        self.buf_oob[:slots.size] = self.buf_oob[slots]
        self.buf_src[:slots.size] = self.buf_src[slots]
        self.buf_src[slots.size:] = -1
        self.cached = {lba: moved[s] for lba, s in self.cached.items() if s in moved}
        self.n = slots.size
