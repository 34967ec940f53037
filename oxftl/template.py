"""A page-mapped FTL to start from: `ox ftl new my_ftl.py` writes a copy of this file.

It runs unchanged in the host (over open-channel, like pblk) and in the device (behind a
plain NVMe namespace, like AppNVM):

    ox mount /mnt/ox --ftl my_ftl.py:PageFtl --side host      # or --side device
    ox ftl check my_ftl.py:PageFtl --side both

What it does, in the order you will want to change it:
- Mapping: one entry per 4 KiB sector (`l2p`: LBA -> flat sector address, -1 unmapped).
- Writes gather in a one-page buffer and go out a page (write unit) at a time, round-robin
  over the units (LUNs), one open block per unit.
- Every sector carries its LBA and a sequence number in its OOB. Sequence numbers grow
  with every sector written and every trim, so on recovery the newest version of each
  LBA wins, and a trim (kept as a record in a sector of its own) beats older data.
- GC is greedy: the full block with the fewest valid sectors. Moved sectors keep their
  sequence number; the victim is erased only after its data is on media again.
- Recovery reads the OOB of every written page (no checkpoint: simple, and slow on a big
  device -- the first thing to improve).
- flush() programs the partial page (padded) and the pending trim records.
"""
import numpy as np

from oxftl import Ftl, MediaError, NoSpace, ReadOnly, SectorStatus

OOB = np.dtype([("lba", "<u8"), ("seq", "<u8")])           # the first 16 bytes of a sector's OOB
TRIM_RECORD = np.dtype([("lba", "<u8"), ("count", "<u8"), ("seq", "<u8")])
PAD = np.uint64(2**64 - 1)         # OOB lba of a padding sector
TRIMS = np.uint64(2**64 - 2)       # OOB lba of a sector that holds trim records
FREE, OPEN, FULL, BAD = 0, 1, 2, 3


class PageFtl(Ftl):
    name = "template"
    version = 1
    OP = 0.2               # over-provisioning: share of the blocks not exported
    RESERVE = 2            # free blocks beyond one per unit that only GC may take

    def __init__(self, media):
        super().__init__(media)
        g = self.g = media.geometry
        self.spb = g.sectors_per_block
        self.sb = g.sector_nbytes
        self.trims_per_sector = g.sector_nbytes // TRIM_RECORD.itemsize
        self.state = np.zeros(g.total_blocks, np.uint8)
        self.valid = np.zeros(g.total_blocks, np.int64)
        self.min_seq = np.full(g.total_blocks, np.iinfo(np.int64).max, np.int64)
        self.stuck = np.zeros(g.total_blocks, bool)      # holds a sector GC cannot read
        self.wp = np.zeros(g.total_blocks, np.int64)     # next page of an open block
        self.open_block = [-1] * g.units
        self.rr = 0                                      # next unit to write to
        self.seq = 1
        self.slots = g.sectors                           # the buffer gathers one page
        self.buf = np.zeros(self.slots * self.sb, np.uint8)
        self.buf_oob = np.zeros(self.slots, OOB)
        self.buf_src = np.full(self.slots, -1, np.int64)  # GC slots: where the sector came from
        self.n = 0
        self.cached = {}                                 # lba -> buffer slot of its newest data
        self.pending_trims = []                          # TRIM_RECORD tuples not on media yet
        self.to_retire = []                              # blocks a program failed in
        self.read_only = False
        self.busy = False                                # inside GC: no nested collection
        self.counters = dict(user_sectors=0, gc_sectors=0, pad_sectors=0, trim_sectors=0,
                             gc_runs=0, program_retries=0, retired_blocks=0)

    # ------------------------------------------------------------ open: format or recover
    def open(self):
        g = self.g
        data_blocks = int(g.total_blocks * (1 - self.OP))
        self.capacity = data_blocks * self.spb
        self.need_good = data_blocks + g.units + self.RESERVE
        self.l2p = np.full(self.capacity, -1, np.int64)
        self.state[self.media.bad_blocks()] = BAD
        good = np.flatnonzero(self.state != BAD)
        # a block whose first page is empty on every sector was never written since its
        # erase (pages are programmed in order on every plane): skip reading the rest
        first = self._read_oob(good[:, None] * g.pages * g.sectors + np.arange(g.sectors))[1]
        used = good[(first != SectorStatus.EMPTY).reshape(len(good), g.sectors).any(axis=1)]
        newest = np.zeros(self.capacity, np.int64)          # seq of the data l2p points at
        trimmed = np.zeros(self.capacity, np.int64)         # newest trim seq per LBA
        for b in used.tolist():
            secs = b * self.spb + np.arange(self.spb)
            oob, st, data = self._read_oob(secs, keep_data=True)
            ok = st == SectorStatus.OK
            self.state[b] = FULL                             # written: never appended to again
            for i in np.flatnonzero(ok & (oob["lba"] == TRIMS)).tolist():
                for lba, count, seq in self._records(data[i * self.sb:(i + 1) * self.sb]):
                    np.maximum(trimmed[lba:lba + count], seq, out=trimmed[lba:lba + count])
                    self.seq = max(self.seq, seq + 1)
            d = np.flatnonzero(ok & (oob["lba"] < np.uint64(self.capacity)))
            lbas, seqs = oob["lba"][d].astype(np.int64), oob["seq"][d].astype(np.int64)
            if d.size:
                self.min_seq[b] = int(seqs.min())
                self.seq = max(self.seq, int(seqs.max()) + 1)
            order = np.argsort(seqs, kind="stable")          # the newest last: it wins
            lbas, seqs, addrs = lbas[order], seqs[order], secs[d][order]
            win = seqs >= newest[lbas]
            self.l2p[lbas[win]], newest[lbas[win]] = addrs[win], seqs[win]
        self.l2p[trimmed >= newest] = -1
        mapped = self.l2p[self.l2p >= 0]
        self.valid[:] = np.bincount(mapped // self.spb, minlength=g.total_blocks)
        self._check_wear()

    def _read_oob(self, sectors, keep_data=False):
        data, oob, st = self.media.read(np.asarray(sectors).reshape(-1), with_oob=True)
        oob = oob.reshape(-1, self.g.oob_nbytes)[:, :OOB.itemsize].copy().view(OOB).reshape(-1)
        return (oob, st, data) if keep_data else (oob, st)

    def _records(self, sector):
        recs = sector[:self.trims_per_sector * TRIM_RECORD.itemsize].view(TRIM_RECORD)
        return [(int(r["lba"]), int(r["count"]), int(r["seq"])) for r in recs if r["count"]]

    # ------------------------------------------------------------ reads
    def read(self, lba, count, out):
        out = out[:count * self.sb]
        addrs = self.l2p[lba:lba + count].copy()
        for i in range(count) if self.cached else ():   # the newest data may be in the buffer
            slot = self.cached.get(lba + i)
            if slot is not None:
                out[i * self.sb:(i + 1) * self.sb] = self.buf[slot * self.sb:(slot + 1) * self.sb]
                addrs[i] = -2
        unmapped = np.flatnonzero(addrs == -1)
        for i in unmapped.tolist():
            out[i * self.sb:(i + 1) * self.sb] = 0
        on_media = np.flatnonzero(addrs >= 0)
        if on_media.size == 0:
            return
        if on_media.size == count:
            _, _, st = self.media.read(addrs, out=out, with_oob=False)
        else:
            data, _, st = self.media.read(addrs[on_media], with_oob=False)
            rows = out.reshape(count, self.sb)
            rows[on_media] = data.reshape(-1, self.sb)
        if (st != SectorStatus.OK).any():               # unreadable, or a mapped sector gone
            failed = np.zeros(count, bool)
            failed[on_media[st != SectorStatus.OK]] = True
            raise MediaError(f"{int(failed.sum())} of {count} sector(s) unreadable", failed=failed, data=out)

    # ------------------------------------------------------------ writes and trims
    def _writable(self):
        if self.read_only:
            raise ReadOnly("the template FTL is read-only: too few good blocks are left")

    def write(self, lba, data):
        self._writable()
        for i in range(len(data) // self.sb):
            self._put(lba + i, self.seq, data[i * self.sb:(i + 1) * self.sb])
            self.seq += 1
        self.counters["user_sectors"] += len(data) // self.sb

    def _put(self, lba, seq, sector, src=-1):
        """One sector into the buffer; the buffer goes to media when it is full. Before a
        new page is started, GC makes room (it needs the empty buffer for its copies)."""
        if self.n == self.slots:                     # a program that failed for want of room
            self._program_buffer()
        if self.n == 0:
            self._service()
        slot = self.n
        self.buf[slot * self.sb:(slot + 1) * self.sb] = sector
        self.buf_oob[slot] = (lba, seq)
        self.buf_src[slot] = src
        if src < 0 and lba < self.capacity:
            self.cached[lba] = slot
        self.n += 1
        if self.n == self.slots:
            self._program_buffer()

    def trim(self, lba, count):
        self._writable()
        for i in range(lba, lba + count):
            self.cached.pop(i, None)
        self._unmap(self.l2p[lba:lba + count])
        self.l2p[lba:lba + count] = -1
        self.pending_trims.append((lba, count, self.seq))
        self.seq += 1
        if len(self.pending_trims) >= self.trims_per_sector:
            self._place_trims()

    def _unmap(self, addrs):
        addrs = addrs[addrs >= 0]
        np.subtract.at(self.valid, addrs // self.spb, 1)

    def _place_trims(self):
        while self.pending_trims:
            recs = self.pending_trims[:self.trims_per_sector]
            del self.pending_trims[:self.trims_per_sector]
            sector = np.zeros(self.sb, np.uint8)
            sector[:len(recs) * TRIM_RECORD.itemsize] = np.array(recs, TRIM_RECORD).view(np.uint8)
            self.counters["trim_sectors"] += 1
            self._put(int(TRIMS), max(r[2] for r in recs), sector)

    def flush(self):
        self._place_trims()
        if self.n:
            pad = self.g.sectors - self.n
            self.counters["pad_sectors"] += pad
            for _ in range(pad):
                self._put(int(PAD), 0, np.zeros(self.sb, np.uint8))
        self._service()

    # ------------------------------------------------------------ placement
    def _program_buffer(self):
        """The full buffer to the next page of an open block; a failed program is retried
        on another block and its block retired later."""
        g = self.g
        oob = np.zeros((g.sectors, g.oob_nbytes), np.uint8)
        oob[:, :OOB.itemsize] = self.buf_oob.view(np.uint8).reshape(g.sectors, OOB.itemsize)
        while True:
            b = self._next_block()
            page = b * g.pages + int(self.wp[b])
            self.wp[b] += 1
            if self.wp[b] == g.pages:
                self.state[b], self.open_block[b // g.blocks] = FULL, -1
            if self.media.program([page], self.buf, oob)[0]:
                break
            self.counters["program_retries"] += 1
            self.state[b], self.open_block[b // g.blocks] = FULL, -1
            self.to_retire.append(b)
        seqs = self.buf_oob["seq"][self.buf_oob["lba"] < np.uint64(2**63)].astype(np.int64)
        if seqs.size:
            self.min_seq[b] = min(self.min_seq[b], int(seqs.min()))
        for slot in range(g.sectors):
            lba = int(self.buf_oob["lba"][slot])
            addr = page * g.sectors + slot
            if lba >= self.capacity:
                continue
            if self.buf_src[slot] < 0:                   # user data: the newest if still cached here
                if self.cached.get(lba) != slot:
                    continue
                del self.cached[lba]
            elif self.l2p[lba] != self.buf_src[slot] or lba in self.cached:
                continue                                  # GC copy overtaken by a newer write
            self._unmap(self.l2p[lba:lba + 1])
            self.l2p[lba] = addr
            self.valid[b] += 1
        self.n = 0
        self.buf_src[:] = -1

    def _next_block(self):
        """The open block of the next unit in turn, opening (erasing) one if needed."""
        g = self.g
        for _ in range(g.units):
            unit = self.rr
            self.rr = (self.rr + 1) % g.units
            if self.open_block[unit] >= 0:
                return self.open_block[unit]
            b = self._allocate(unit)
            if b is not None:
                return b
        raise NoSpace(f"no free block left to write to {self._debug()}")

    def _debug(self):
        return dict(state=np.bincount(self.state, minlength=4).tolist(), valid=self.valid[self.state == FULL].tolist(), stuck=int(self.stuck.sum()))

    def _allocate(self, unit):
        g = self.g
        free = np.flatnonzero(self.state[unit * g.blocks:(unit + 1) * g.blocks] == FREE) + unit * g.blocks
        if free.size == 0:
            return None
        b = int(free[0])
        self.state[b], self.wp[b], self.open_block[unit] = OPEN, 0, b
        self.min_seq[b] = np.iinfo(np.int64).max
        return b

    # ------------------------------------------------------------ GC and retirement
    def _service(self):
        """After a request: retire blocks a program failed in, collect while space is low."""
        if self.busy:
            return
        self.busy = True
        try:
            while self.to_retire:
                b = self.to_retire.pop()
                self._collect(b, retire=True)
            for _ in range(self.g.total_blocks):         # bounded: a full drive may not gain
                if (self.state == FREE).sum() >= self.g.units + self.RESERVE or not self._collect_one():
                    break
        finally:
            self.busy = False

    def background(self):
        if self.read_only or self.busy:
            return False
        self.busy = True
        try:
            return (self.state == FREE).sum() < 2 * self.g.units and self._collect_one()
        finally:
            self.busy = False

    def _collect_one(self):
        """Greedy: the full block with the fewest valid sectors, if that frees anything."""
        cand = np.flatnonzero((self.state == FULL) & ~self.stuck)
        if cand.size == 0:
            return False
        b = int(cand[np.argmin(self.valid[cand])])
        if self.valid[b] >= self.spb:
            return False
        return self._collect(b)

    def _collect(self, b, retire=False):
        """Move block b's valid sectors and needed trim records out, then erase (or retire) it."""
        g = self.g
        self.counters["gc_runs"] += 1
        lo = b * self.spb
        oob, st, data = self._read_oob(lo + np.arange(self.spb), keep_data=True)
        lbas = np.flatnonzero((self.l2p >= lo) & (self.l2p < lo + self.spb))
        offs = self.l2p[lbas] - lo
        if (st[offs] != SectorStatus.OK).any():
            self.stuck[b] = True        # an unreadable sector stays where it is, and keeps failing
            return False
        others = (self.state != FREE) & (self.state != BAD)
        others[b] = False
        oldest_elsewhere = self.min_seq[others].min() if others.any() else np.iinfo(np.int64).max
        for i in np.flatnonzero((st == SectorStatus.OK) & (oob["lba"] == TRIMS)).tolist():
            for rec in self._records(data[i * self.sb:(i + 1) * self.sb]):
                if rec[2] > oldest_elsewhere:           # older data it hides still exists
                    self.pending_trims.append(rec)
        for lba, i in zip(lbas.tolist(), offs.tolist()):
            self._put(lba, int(oob["seq"][i]), data[i * self.sb:(i + 1) * self.sb], src=lo + i)
        self.counters["gc_sectors"] += len(lbas)
        self.flush()                                     # the copies are on media before the erase
        if self.valid[b]:                                # a copy failed to land: try again later
            return False
        if retire:
            self.media.mark_bad([b])
            self.state[b] = BAD
            self.counters["retired_blocks"] += 1
        elif self.media.erase([b])[0]:                   # erased now: a fresh block after a cut too
            self.state[b] = FREE
        else:
            self.state[b] = BAD                          # the media retired it
        self._check_wear()
        return True

    def _check_wear(self):
        if (self.state != BAD).sum() < self.need_good:
            self.read_only = True

    def spare_blocks(self):
        return max(0, int((self.state != BAD).sum()) - self.need_good)

    # ------------------------------------------------------------ reports
    def stats(self):
        return dict(self.counters, capacity_sectors=self.capacity, valid_sectors=int(self.valid.sum()),
                    spare_blocks=self.spare_blocks(),
                    free_blocks=int((self.state == FREE).sum()), bad_blocks=int((self.state == BAD).sum()),
                    read_only=self.read_only)
