"""The zoned host FTL: a log-structured, page-mapped FTL over the zones of a ZNS device,
GC by zone reset -- the stack `ox mount --mode zoned` serves (oxftl.zoned:ZonedFtl@host+zns).

It is the template FTL (oxftl.template.PageFtl) with a zone's life in mind, on
oxhost.zns.ZoneMedia, where a block is a zone, a page a write unit at the write pointer,
and an erase a zone reset:

- data goes out a write unit at a time, round-robin over the media's units, one open
  zone per unit, each sector's LBA and sequence number in its 16 bytes of metadata;
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

from .template import FULL, PageFtl


class ZonedFtl(PageFtl):
    name = "zoned"
    version = 1

    def open(self):
        super().open()
        finish = getattr(self.media, "finish", None)
        if finish is not None:
            finish(np.flatnonzero(self.state == FULL))
