"""The pblk target as a block device: the write buffer, L2P, lines, writer, GC and rate
limiter of Linux 4.12 pblk put together behind BlockDevice (SPEC 9).

Everything is synchronous. A write lands in the write buffer and returns; once 512 entries
are buffered (or users run out of their share) a drain cycle gives GC its share of the
buffer and programs every whole write unit. A flush pads the last unit and writes it. GC
runs inline from that cycle as soon as free lines run low, so correctness never depends
on `background()` being called; the FUSE layer may call it when idle to get ahead.
"""
import logging
from collections import Counter
from typing import Self

import numpy as np

from oxemu.wire import NvmOpc, PMode, Status
from oxhost.lightnvm import LightnvmError, NvmError

from ..blockdev import BlockDevice
from .errors import PblkError, PblkIOError, PblkNoSpace
from .gc import Gc
from .l2p import L2P, cache_code
from .lines import LineGeometry, LineManager, LineState
from .recovery import Recovery
from .rl import RateLimiter
from .writebuffer import NR_ENTRIES, WriteBuffer
from .writer import Writer

log = logging.getLogger(__name__)

DRAIN_AT = 512              # buffered entries that start a drain: 64 units, one doorbell
READ_CHUNK = 1024           # sectors per device read call

COUNTERS = ("user", "gc", "pad", "meta", "gc_runs", "gc_moved", "lines_opened", "lines_closed",
            "lines_freed", "erases", "erase_failed", "write_failed", "requeued", "read_failed",
            "read_failed_gc", "read_empty", "grown_bad_marked", "user_read_sectors",
            "media_read_sectors", "discarded_sectors", "flushes")


class Pblk(BlockDevice):
    """A pblk target over the LUNs lun_begin..lun_end (inclusive, global numbering
    ch * nluns + lun) of an open-channel Device. The constructor recovers the volume from
    the media; fresh media give an empty volume. close() flushes; the Device stays open."""

    def __init__(self, dev, lun_begin: int = 0, lun_end: int | None = None):
        geo = dev.geo
        if geo.sector_nbytes != self.sector_nbytes:
            raise PblkError(f"pblk needs {self.sector_nbytes}-byte sectors, the device has {geo.sector_nbytes}")
        if geo.meta_nbytes < 16:
            raise PblkError("pblk needs 16 OOB bytes per sector for its LBA map")
        self.dev = dev
        self.lg = lg = LineGeometry(geo, lun_begin, lun_end)
        self.c = dict.fromkeys(COUNTERS, 0)
        self.l2p = L2P(lg.capacity_sectors)
        self._spl = lg.sec_per_line
        nentries = NR_ENTRIES - NR_ENTRIES % lg.unit_secs
        self.rl = RateLimiter(nentries)
        self.lm = LineManager(dev, lg, self.c)
        self._rb_buf = dev.buf_alloc(nentries * geo.sector_nbytes)
        self.rb = WriteBuffer(self._rb_buf, nentries, geo.sector_nbytes)
        self.gc = Gc(dev, lg, self.lm, self.rb, self.l2p, self.c)
        self.writer = Writer(dev, lg, self.lm, self.rb, self.l2p, self.c, self.gc.reclaim)
        self.lm.on_change = self._rl_update
        self._closed = False
        self._max_cycles = 4 * lg.nlines * lg.units_per_line + 64
        try:
            self.recovery = Recovery(self).run()
            self.gc.reclaim()
        except BaseException:
            self._release()
            raise
        log.info("pblk: luns %d-%d, %d lines of %d sectors, capacity %d sectors, buffer %d entries",
                 lg.lun_begin, lg.lun_end, lg.nlines, lg.sec_per_line, lg.capacity_sectors, nentries)

    def _rl_update(self) -> None:
        """The rate limiter sees the sectors still writable beyond what the buffer holds."""
        self.rl.update(self.lm.avail_secs() - self.rb.count)

    # ------------------------------------------------------------ BlockDevice
    @property
    def size(self) -> int:
        return self.lg.capacity_sectors * self.sector_nbytes

    def _check(self, lba: int, count: int) -> None:
        if self._closed:
            raise PblkError("pblk is closed")
        if lba < 0 or count < 0 or lba + count > self.l2p.nsectors:
            raise PblkError(f"sectors [{lba}, +{count}) outside the volume of {self.l2p.nsectors} sectors")

    def read_sectors(self, lba: int, count: int) -> np.ndarray:
        self._check(lba, count)
        secb = self.sector_nbytes
        self.c["user_read_sectors"] += count
        if count == 1:
            v = int(self.l2p.map[lba])
            if v == -1:
                return np.zeros(secb, dtype=np.uint8)
            if v <= -2:
                return self.rb.data[-2 - v].copy()
            line, paddr = divmod(v, self._spl)          # the 4 KiB fast path: no arrays
            out = np.empty(secb, dtype=np.uint8)
            self.c["media_read_sectors"] += 1
            try:
                self.dev.ppa_io(NvmOpc.PH_READ, [int(self.lg.paddr_ppa[paddr]) | (line << self.lg.blk_off)],
                                PMode.SNGL, out=out)
            except NvmError as err:
                self._read_error(err, np.array([v], dtype=np.int64), out)
            return out
        vals = self.l2p.map[lba:lba + count]
        media = vals >= 0
        nm = int(np.count_nonzero(media))
        if nm == count:
            return self._read_media(vals)
        out = np.zeros((count, secb), dtype=np.uint8)
        cache = vals <= -2
        if cache.any():
            out[cache] = self.rb.data[-2 - vals[cache]]
        if nm:
            out[media] = self._read_media(vals[media]).reshape(nm, secb)
        return out.reshape(-1)

    def _read_media(self, addrs: np.ndarray) -> np.ndarray:
        secb = self.sector_nbytes
        n = addrs.size
        ppas = self.lg.addr_ppas(addrs)
        out = np.empty(n * secb, dtype=np.uint8)
        self.c["media_read_sectors"] += n
        for s in range(0, n, READ_CHUNK):
            e = min(n, s + READ_CHUNK)
            try:
                self.dev.ppa_io(NvmOpc.PH_READ, ppas[s:e], PMode.SNGL, out=out[s * secb:e * secb])
            except NvmError as err:
                self._read_error(err, addrs[s:e], out[s * secb:e * secb])
        return out

    def _read_error(self, err: NvmError, addrs: np.ndarray, out: np.ndarray) -> None:
        if err.status == Status.NVM_WARN_HIGH_ECC:
            return
        failed = err.mask
        if err.status == Status.NVM_EMPTY_PAGE:
            # a mapped sector that was never written: only a lost write can do this
            self.c["read_empty"] += int(failed.sum())
            log.error("pblk: %d mapped sector(s) read as empty (first address %d); returning zeros",
                      int(failed.sum()), int(addrs[failed][0]))
            out.reshape(addrs.size, -1)[failed] = 0
            return
        self.c["read_failed"] += int(failed.sum())
        raise PblkIOError(f"pblk: media read failed with NVMe status 0x{err.status:04X} "
                          f"for {int(failed.sum())} sector(s)") from err

    def write_sectors(self, lba: int, data) -> None:
        if isinstance(data, np.ndarray):
            d = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        else:
            d = np.frombuffer(data, dtype=np.uint8)
        secb = self.sector_nbytes
        n, rem = divmod(d.nbytes, secb)
        if rem:
            raise PblkError(f"write of {d.nbytes} bytes is not a whole number of {secb}-byte sectors")
        self._check(lba, n)
        rb, rl, lm = self.rb, self.rl, self.lm
        off = 0
        while off < n:
            room = min(rl.user_max - rb.nuser, rb.space, lm.avail_secs() - rb.count - lm.reserve_secs)
            if room <= 0:
                room = self._make_room()
            k = min(room, n - off)
            self._put(lba + off, d[off * secb:(off + k) * secb], k)
            off += k
            if rb.count >= DRAIN_AT:
                self._cycle()

    def _put(self, lba: int, d: np.ndarray, k: int) -> None:
        """User sectors into the buffer; the L2P points at them and their old media copies
        stop counting as valid."""
        rb, m, lm = self.rb, self.l2p.map, self.lm
        if k == 1:
            old = int(m[lba])
            pos = rb.put_one(lba, d)
            m[lba] = -2 - pos % rb.n
            if old >= 0:
                li = old // self._spl
                lm.vsc[li] -= 1
                lm.inval_pos[li] = rb.mem
            return
        pos = rb.put_user(lba, d, k)
        view = m[lba:lba + k]
        old = view[view >= 0]
        view[:] = cache_code(rb.slots(pos, k))
        if old.size:
            self._invalidate(old)

    def _invalidate(self, old: np.ndarray) -> None:
        lm = self.lm
        lines = old // self._spl
        lm.vsc -= np.bincount(lines, minlength=lm.vsc.size)
        lm.inval_pos[lines] = self.rb.mem

    def _make_room(self) -> int:
        """Run drain/GC cycles until users may put at least one entry in the buffer. GC that
        has rewritten every line twice over without making room means the valid data does
        not fit the media (a target too small for the exported capacity): PblkNoSpace."""
        rb, rl, lm, c = self.rb, self.rl, self.lm, self.c
        freed0 = c["lines_freed"]
        stalls = 0
        for _ in range(self._max_cycles):
            room = min(rl.user_max - rb.nuser, rb.space, lm.avail_secs() - rb.count - lm.reserve_secs)
            if room > 0:
                return room
            if c["lines_freed"] - freed0 > 2 * self.lg.nlines:
                break
            mark = (rb.sync, rb.mem, lm.free_secs, c["lines_freed"])
            self._cycle()
            if mark != (rb.sync, rb.mem, lm.free_secs, c["lines_freed"]):
                stalls = 0
                continue
            stalls += 1
            if stalls > 2:
                break
            self.writer.pad()        # a partial unit may be holding back a line's release
        raise PblkNoSpace(f"pblk: GC cannot free space ({lm.count(LineState.FREE)} free lines, "
                          f"{int(lm.vsc.sum())} valid sectors)")

    def _cycle(self) -> None:
        """One drain cycle: GC puts in its share, the writer programs whole units, and lines
        whose data has all moved are freed."""
        rb, rl = self.rb, self.rl
        if rl.gc_active:
            q = min(rl.gc_quota(rb.nuser, rb.ngc), rb.space)
            if q > 0:
                self.gc.fill(q)
        self.writer.drain()
        if not self.gc.reclaim() and rl.user_max == 0 and rb.count and self.gc.waiting_on(rb.mem):
            # users are held back and a collected line waits only for the partial unit at
            # the buffer head: the next victim's data pushes it out, else a pad does
            if not (rl.gc_active and self.gc.fill(min(rl.gc_quota(rb.nuser, rb.ngc), rb.space))):
                self.writer.pad()
            self.writer.drain()
            self.gc.reclaim()
        self._rl_update()

    def flush(self) -> None:
        if self._closed:
            raise PblkError("pblk is closed")
        self.writer.flush()
        self.gc.reclaim()
        self.c["flushes"] += 1

    def discard_sectors(self, lba: int, count: int) -> None:
        self._check(lba, count)
        view = self.l2p.map[lba:lba + count]
        old = view[view >= 0]
        view[:] = -1
        if old.size:
            self._invalidate(old)
        self.c["discarded_sectors"] += count

    # ------------------------------------------------------------ housekeeping
    def background(self) -> bool:
        """A bounded slice of deferred work: one drain cycle (GC's share included while free
        lines are low). True if more is pending."""
        if self._closed:
            return False
        rb, us = self.rb, self.lg.unit_secs
        if rb.count < us and not self.rl.gc_active:
            self.gc.reclaim()
            return False
        mark = (rb.sync, rb.mem, self.lm.free_secs)
        self._cycle()
        progressed = mark != (rb.sync, rb.mem, self.lm.free_secs)
        return progressed and (rb.count >= us or self.rl.gc_active)

    def stats(self) -> dict:
        c, lm, lg, rb = self.c, self.lm, self.lg, self.rb
        user, gc, pad, meta = c["user"], c["gc"], c["pad"], c["meta"]
        states = Counter(ln.state for ln in lm.lines)
        grown = lm.bad_blk & ~lm.factory_bad
        return {
            "capacity_bytes": self.size,
            "luns": [lg.lun_begin, lg.lun_end],
            "user_sectors": user,
            "gc_sectors": gc,
            "pad_sectors": pad,
            "meta_sectors": meta,
            "write_amplification": round((user + gc + pad) / user, 4) if user else 0.0,
            "media_write_amplification": round((user + gc + pad + meta) / user, 4) if user else 0.0,
            "free_lines": states[LineState.FREE],
            "open_lines": states[LineState.OPEN],
            "closed_lines": states[LineState.CLOSED],
            "gc_lines": states[LineState.GC],
            "bad_lines": states[LineState.BAD],
            "total_lines": lg.nlines,
            "gc_runs": c["gc_runs"],
            "gc_sectors_moved": c["gc_moved"],
            "bad_blocks": {"factory": int(lm.factory_bad.sum()), "grown": int(grown.sum())},
            "valid_sectors": int(lm.vsc.sum()),
            "mapped_sectors": int(np.count_nonzero(self.l2p.map != -1)),
            "write_buffer": {"entries": rb.n, "buffered": rb.count, "user": rb.nuser, "gc": rb.ngc},
            "rate_limiter": self.rl.as_dict(),
            "counters": dict(c),
            "recovery": dict(self.recovery),
            "device": dict(self.dev.driver.stats),
        }

    def close(self) -> None:
        """Flush; what is on media then is all a restart needs. The Device stays open."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._release()

    def _release(self) -> None:
        buf, self._rb_buf = self._rb_buf, None
        if buf is not None:
            try:
                self.dev.buf_free(buf)
            except LightnvmError as e:
                log.debug("pblk: releasing the write buffer: %s", e)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
