"""ChunkMedia: the FTL API's Media over Open-Channel SSD 2.0 (lightnvm2 vector commands on
the bus), so any FTL written against the API runs on 2.0 where it runs on 1.2.

Units are the parallel units of the range (global PU order), blocks are chunks, a page is
one ws_min unit -- one page on every plane, the shape HostMedia gives on 1.2 -- sectors
in logical block order. What 2.0 adds, ChunkMedia keeps from the FTL:

- the write cache: the device will not read the last mw_cunits sectors of an open chunk,
  so ChunkMedia keeps a copy of them (what a 2.0 host must buffer) and serves those reads.
  After a restart that copy is gone: reading there pads the chunk by mw_cunits sectors
  first (as Linux pblk pads open lines at recovery), which makes the data readable. A
  filler sector reads back zeros with an all-ones OOB -- the mark pblk and the template
  FTL give padding;
- resets: 2.0 resets only closed chunks. Erasing a free chunk does nothing (it is
  erased); erasing an open one pads it to the end first, then resets it;
- bad blocks: a 2.0 device owns them and reports them as offline chunks; it takes a chunk
  whose programs failed offline at its next reset. `mark_bad` closes and resets the
  chunk so the device can; a chunk the host retires without any failure comes back free
  (after a restart: the host keeps no bad block table on 2.0, as pblk keeps none).
"""
import numpy as np

from oxemu.wire import ChunkState, Status
from oxftl import Media, MediaGeometry, ReadOnly, SectorStatus

from ..lightnvm import NvmError

READ_RETRIES = 4
FILLER_OOB = 0xFF             # a filler sector's OOB bytes: all ones
_UNRECOVERED = int(Status.UNRECOVERED_READ | Status.DNR)
_UNWRITTEN = int(Status.UNWRITTEN_BLOCK | Status.DNR)
_OFFLINE = int(Status.OCSSD_OFFLINE_CHUNK | Status.DNR)
_PROTECTED = int(Status.NS_WRITE_PROTECTED | Status.DNR)


class ChunkMedia(Media):
    """Media over PUs pu_begin..pu_end (inclusive, global ids) of a lightnvm2 Device20."""

    side = "host"

    def __init__(self, dev, pu_begin: int, pu_end: int):
        geo = self.dev_geo = dev.geo
        self.dev = dev
        self.pus = [(p // geo.npunit, p % geo.npunit) for p in range(pu_begin, pu_end + 1)]
        super().__init__(MediaGeometry(
            units=len(self.pus), blocks=geo.nchunk, pages=geo.nsectr // geo.ws_min, sectors=geo.ws_min,
            sector_nbytes=geo.nbytes, oob_nbytes=geo.nbytes_oob, unit_channels=tuple(g for g, _ in self.pus)))
        self.counters.update(pad_sectors=0, read_retries=0)
        self.mw = geo.mw_cunits
        self._grp = np.array([g for g, _ in self.pus], dtype=np.int64)
        self._pu = np.array([p for _, p in self.pus], dtype=np.int64)
        n = self.geometry.total_blocks
        self.state = np.zeros(n, dtype=np.uint8)          # the device's chunk states, kept in step
        self.wp = np.zeros(n, dtype=np.int64)             # ... and write pointers (sectors)
        self.retired: set[int] = set()                    # chunks retired this session without a failure
        self._cache: dict = {}                            # block -> (data (mw, B), oob (mw, oob), have (mw,))
        self.refresh()

    # ------------------------------------------------------------ chunk state
    def refresh(self, blocks=None) -> None:
        """Read the chunk states and write pointers from the device's chunk report."""
        g = self.geometry
        from ..lightnvm2 import ChunkAddr
        for u, (grp, pu) in enumerate(self.pus):
            if blocks is not None and not any(u * g.blocks <= b < (u + 1) * g.blocks for b in blocks):
                continue
            r = self.dev.rprt(ChunkAddr(grp, pu, 0), g.blocks)
            self.state[u * g.blocks:(u + 1) * g.blocks] = r["cs"]
            self.wp[u * g.blocks:(u + 1) * g.blocks] = r["wp"].astype(np.int64)

    def _lbas(self, blocks: np.ndarray, sectr: np.ndarray) -> np.ndarray:
        unit, chunk = np.divmod(blocks, self.geometry.blocks)
        return self.dev.chunk_lbas(self._grp[unit], self._pu[unit], chunk, sectr)

    # ------------------------------------------------------------ bad blocks
    def bad_blocks(self) -> np.ndarray:
        bad = self.state == ChunkState.OFFLINE
        bad[list(self.retired)] = True
        return bad

    def mark_bad(self, blocks) -> None:
        for b in self._check_blocks(blocks).tolist():
            self._close(b)
            if self.state[b] == ChunkState.CLOSED:
                self._reset(b)                            # offline if its programs failed
            if self.state[b] != ChunkState.OFFLINE:
                self.retired.add(b)

    # ------------------------------------------------------------ flash operations
    def erase(self, blocks) -> np.ndarray:
        b = self._check_blocks(blocks)
        ok = np.ones(b.size, dtype=bool)
        for i, blk in enumerate(b.tolist()):
            if blk in self.retired or self.state[blk] == ChunkState.OFFLINE:
                ok[i] = False
                continue
            if self.state[blk] == ChunkState.FREE:        # erased already: a 2.0 chunk is reset once
                continue
            self._close(blk)
            ok[i] = self._reset(blk)
        self.counters["erases"] += int(b.size)
        self.counters["erase_fails"] += int((~ok).sum())
        return ok

    def _reset(self, b: int) -> bool:
        try:
            self.dev.erase(self._lbas(np.array([b]), 0))
        except NvmError as e:
            if (e.statuses == _PROTECTED).any():
                raise ReadOnly("the device refuses resets: its media is write-protected") from None
        self._cache.pop(b, None)
        self.refresh([b])
        return self.state[b] == ChunkState.FREE

    def _close(self, b: int) -> None:
        """An open chunk padded to its end (2.0 resets closed chunks only)."""
        if self.state[b] == ChunkState.OPEN:
            self._pad(b, self.geometry.sectors_per_block - int(self.wp[b]))

    def _pad(self, b: int, count: int) -> None:
        """Filler sectors at the chunk's write pointer: zeros, with an all-ones OOB."""
        g = self.geometry
        count = min(count, g.sectors_per_block - int(self.wp[b]))
        count -= count % g.sectors
        if count <= 0:
            return
        data = np.zeros(count * g.sector_nbytes, np.uint8)
        oob = np.full(count * g.oob_nbytes, FILLER_OOB, np.uint8)
        self._write(b, int(self.wp[b]), data, oob)
        self.counters["pad_sectors"] += count

    def program(self, pages, data, oob=None) -> np.ndarray:
        p, data, oob = self._check_pages(pages, data, oob)
        g = self.geometry
        ok = np.ones(p.size, dtype=bool)
        block, pg = np.divmod(p, g.pages)
        pnb, onb = g.page_nbytes, g.sectors * g.oob_nbytes
        i = 0
        while i < p.size:                                 # runs of consecutive pages of one block
            j = i + 1
            while j < p.size and block[j] == block[i] and pg[j] == pg[j - 1] + 1:
                j += 1
            ok[i:j] = self._write(int(block[i]), int(pg[i]) * g.sectors, data[i * pnb:j * pnb], oob[i * onb:j * onb])
            i = j
        self.counters["pages_programmed"] += int(p.size)
        self.counters["program_fails"] += int((~ok).sum())
        return ok

    def _write(self, b: int, first: int, data: np.ndarray, oob: np.ndarray) -> np.ndarray:
        """Sectors first.. of chunk b: bool per page written. A chunk the write leaves
        open keeps its last mw_cunits sectors in the cache."""
        g = self.geometry
        n = data.nbytes // g.sector_nbytes
        secs = first + np.arange(n)
        try:
            self.dev.write(self._lbas(np.full(n, b), secs), data, meta=oob)
            st = None
        except NvmError as e:
            if (e.statuses == _PROTECTED).any():
                raise ReadOnly("the device refuses writes: its media is write-protected") from None
            st = e.statuses
        good = np.ones(n, dtype=bool) if st is None else st == 0
        if st is None and first == self.wp[b]:
            self.wp[b] = first + n
            self.state[b] = ChunkState.CLOSED if self.wp[b] == g.sectors_per_block else ChunkState.OPEN
        else:
            self.refresh([b])
        self._remember(b, secs, data, oob, good)
        return good.reshape(-1, g.sectors).all(axis=1)

    def _remember(self, b: int, secs: np.ndarray, data: np.ndarray, oob: np.ndarray, good: np.ndarray) -> None:
        """Keep the sectors the device will not read back yet (its write cache's share)."""
        if self.state[b] != ChunkState.OPEN:
            self._cache.pop(b, None)
            return
        g = self.geometry
        keep = secs >= self.wp[b] - self.mw
        if not keep.any():
            return
        c = self._cache.get(b)
        if c is None:
            c = self._cache[b] = (np.zeros((self.mw, g.sector_nbytes), np.uint8),
                                  np.zeros((self.mw, g.oob_nbytes), np.uint8), np.full(self.mw, -1, np.int64))
        rows = secs[keep] % self.mw
        c[0][rows] = data.reshape(-1, g.sector_nbytes)[keep]
        c[1][rows] = oob.reshape(-1, g.oob_nbytes)[keep]
        c[2][rows] = np.where(good[keep], secs[keep], -1)        # a failed sector is not kept

    def read(self, sectors, out=None, with_oob=True):
        s, out = self._check_sectors(sectors, out)
        g = self.geometry
        n = s.size
        status = np.zeros(n, dtype=np.uint8)
        oob = np.zeros(n * g.oob_nbytes, dtype=np.uint8) if with_oob else None
        if n == 0:
            return out, oob, status
        block, sec = np.divmod(s, g.sectors_per_block)
        rows = out.reshape(n, g.sector_nbytes)
        orows = oob.reshape(n, g.oob_nbytes) if with_oob else None
        cached = np.zeros(n, dtype=bool)
        for pass_ in ("pad", "serve"):
            for b in np.unique(block[(self.state[block] == ChunkState.OPEN)]).tolist():
                sel = np.flatnonzero((block == b) & (sec >= self.wp[b] - self.mw) & (sec < self.wp[b]))
                c = self._cache.get(b)
                have = (c[2][sec[sel] % self.mw] == sec[sel]) if c is not None else np.zeros(sel.size, bool)
                if pass_ == "pad":
                    if not have.all():                     # after a restart: pad them out of the cache
                        self._pad(b, self.mw)
                    continue
                for i in sel[have].tolist():
                    r = sec[i] % self.mw
                    rows[i] = c[0][r]
                    if with_oob:
                        orows[i] = c[1][r]
                    cached[i] = True
        todo = np.flatnonzero(~cached)
        if todo.size:
            self._read_device(block[todo], sec[todo], todo, rows, orows, status)
        self.counters["sectors_read"] += n
        self.counters["sectors_unreadable"] += int((status == SectorStatus.UNREADABLE).sum())
        return out, oob, status

    def _read_device(self, block, sec, idx, rows, orows, status) -> None:
        """Read through the device, failed sectors again (alone of the rest) a few times."""
        lbas = self._lbas(block, sec)
        st = self._read_lbas(lbas, idx, rows, orows)
        for _ in range(READ_RETRIES):
            again = np.flatnonzero(st == _UNRECOVERED)
            if again.size == 0:
                break
            self.counters["read_retries"] += int(again.size)
            st[again] = self._read_lbas(lbas[again], idx[again], rows, orows)
        status[idx[st == _UNWRITTEN]] = SectorStatus.EMPTY
        status[idx[(st != 0) & (st != _UNWRITTEN)]] = SectorStatus.UNREADABLE
        rows[idx[st != 0]] = 0
        if orows is not None:
            orows[idx[st != 0]] = 0

    def _read_lbas(self, lbas, idx, rows, orows) -> np.ndarray:
        secb = self.geometry.sector_nbytes
        contiguous = idx.size and idx[-1] - idx[0] + 1 == idx.size
        buf = rows[idx[0]:idx[-1] + 1].reshape(-1) if contiguous else np.empty(idx.size * secb, np.uint8)
        try:
            _, meta = self.dev.read(lbas, out=buf, with_meta=orows is not None)
            st = np.zeros(idx.size, dtype=np.uint16)
        except NvmError as e:
            meta, st = e.meta, e.statuses.astype(np.uint16)
        if not contiguous:
            rows[idx] = buf.reshape(-1, secb)
        if orows is not None:
            orows[idx] = meta.reshape(idx.size, -1)
        return st

    def buf_alloc(self, nbytes: int) -> np.ndarray:
        return self.dev.buf_alloc(nbytes)
