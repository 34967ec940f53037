"""The pblk target as a block device: the write buffer, L2P, lines, writer, GC and rate
limiter of Linux 4.12 pblk put together behind BlockDevice (SPEC 9).

Everything is synchronous. A write lands in the write buffer and returns; once 512 entries
are buffered (or users run out of their share) a drain cycle gives GC its share of the
buffer and programs every whole write unit. A flush pads the last unit and writes it. GC
runs inline from that cycle as soon as free lines run low, so correctness never depends
on `background()` being called; the FUSE layer may call it when idle to get ahead.

Discards are durable by default: their TRIM records enter the log where they were issued
(trim.py). Media errors follow one policy (media.py): a sector that cannot be read after
retries fails its read with PblkIOError and stays mapped; the rest of the request is served.
When grown bad blocks leave too little spare space for GC the target turns read-only.
"""
import ctypes
import logging
from collections import Counter
from typing import Self

import numpy as np

from oxemu.wire import LABEL_MAGIC, MediaLabel, NvmOpc, PMode, TargetKind
from oxhost.driver import DriverError
from oxhost.lightnvm import LightnvmError, NvmError

from ..blockdev import BlockDevice, HostBuffer
from . import media, trim
from .errors import (
    InvariantError,
    PblkError,
    PblkIOError,
    PblkNoSpace,
    PblkReadOnly,
    PblkWrongTarget,
)
from .gc import MAX_GC_TRIES, Gc
from .l2p import L2P
from .lines import LineGeometry, LineManager, LineState
from .metadata import ADDR_TRIM, COUNTERS, Kind
from .ocssd2 import ChunkDevice
from .params import PblkParams, spare_need
from .recovery import Recovery
from .rl import RateLimiter
from .writebuffer import WriteBuffer
from .writer import Writer

log = logging.getLogger(__name__)

DRAIN_AT = 512              # buffered entries that start a drain: 64 units, one doorbell
READ_CHUNK = 1024           # sectors per device read call


class Pblk(BlockDevice):
    """A pblk target over the LUNs lun_begin..lun_end (inclusive, global numbering
    ch * nluns + lun) of an open-channel Device. The constructor checks the media label,
    recovers the volume from the media (fresh media give an empty volume) and records
    the target in the label. close() flushes; the Device stays open.

    durable_discard=False keeps pblk 4.12's volatile discard: the mapping is dropped but
    nothing is logged, so a restart can bring the old data back. `params` (PblkParams)
    sets over-provisioning, the GC victim policy, the rate limiter's thresholds and the
    write buffer's size; the defaults are pblk 4.12's."""

    def __init__(self, dev, lun_begin: int = 0, lun_end: int | None = None, *, durable_discard: bool = True,
                 params: PblkParams | None = None):
        geo = dev.geo
        if geo.sector_nbytes != self.sector_nbytes:
            raise PblkError(f"pblk needs {self.sector_nbytes}-byte sectors, the device has {geo.sector_nbytes}")
        if geo.meta_nbytes < 16:
            raise PblkError("pblk needs 16 OOB bytes per sector for its LBA map")
        self.dev = dev
        self.params = params = params or PblkParams()
        self.lg = lg = LineGeometry(geo, lun_begin, lun_end, op=params.op, capacity_sectors=params.capacity_sectors)
        label = self._read_label()
        uuid = self._label_uuid(label)             # PblkWrongTarget before anything is written
        self.durable_discard = durable_discard
        self.c = dict.fromkeys(COUNTERS, 0)
        self._spl = lg.sec_per_line
        self._paddr_ppa = lg.paddr_ppa.tolist()          # plain integers for the 4 KiB read
        self._blk_off = lg.blk_off
        self.l2p = L2P(lg.capacity_sectors, lg.nlines, lg.sec_per_line, lg.meta.nr_lba_slots)
        nentries = params.write_buffer_entries - params.write_buffer_entries % lg.unit_secs
        if nentries < lg.unit_secs:
            raise PblkError(f"a write buffer of {params.write_buffer_entries} entries does not hold "
                            f"one write unit of {lg.unit_secs} sectors")
        # 2.0: the ring also keeps the last mw_cunits sectors of every open chunk readable,
        # and a write unit (ws_opt) more per LUN (Linux: "guarantee mw_cunits on read buffer")
        keep = (dev.mw_cunits + dev.ws_opt) * lg.nluns if isinstance(dev, ChunkDevice) else 0
        self.rl = RateLimiter(nentries, high_frac=params.gc_background, low_div=params.rl_low_div,
                              rsv_lines=params.gc_foreground)
        self.lm = LineManager(dev, lg, self.c)
        self._rb_buf = dev.buf_alloc((nentries + keep) * geo.sector_nbytes)
        self.rb = WriteBuffer(self._rb_buf, nentries + keep, geo.sector_nbytes, keep=keep)
        self.gc = Gc(dev, lg, self.lm, self.rb, self.l2p, self.c, policy=params.gc_policy, d=params.gc_d,
                     seed=params.gc_seed, pad_secs=dev.mw_cunits * lg.nluns if keep else 0)
        self.writer = Writer(dev, lg, self.lm, self.rb, self.l2p, self.c, self._reclaim)
        self.lm.on_change = self._rl_update
        self._trims = trim.PendingTrims(geo.sector_nbytes)
        self._ro: str | None = None                # why the target is read-only
        self._frozen = False                       # the device itself refuses writes
        self._closed = False
        self._max_cycles = 4 * lg.nlines * lg.units_per_line + 64
        try:
            rec = Recovery(self, uuid)
            self.recovery = rec.load()
            self.lm.set_reserve(self.rl.rsv)             # params.gc_foreground lines for GC alone
            if label is not None and label.read_only:
                self._enter_read_only("the media label marks the media read-only", frozen=True)
            self._update_read_only()
            self.lm.on_bad = self._update_read_only
            if self._ro is None:
                try:
                    rec.resume()
                    self.gc.reclaim()
                except PblkReadOnly as e:
                    self._enter_read_only(str(e), frozen=e.device)
            self._record_target(label)
        except BaseException:
            self._release()
            raise
        log.info("pblk: luns %d-%d, %d lines of %d sectors, capacity %d sectors, buffer %d entries",
                 lg.lun_begin, lg.lun_end, lg.nlines, lg.sec_per_line, lg.capacity_sectors, nentries)

    # ------------------------------------------------------------ media label
    def _read_label(self) -> MediaLabel | None:
        """The device's media label, or None when it has none (or cannot tell)."""
        try:
            label = self.dev.driver.media_label()
        except DriverError as e:
            log.debug("pblk: no media label: %s", e)
            return None
        return label if label.magic == LABEL_MAGIC else None

    def _label_uuid(self, label: MediaLabel | None) -> bytes | None:
        """The instance uuid the label records for this LUN range (None: unknown). A pblk
        volume recorded on an overlapping but different range is refused."""
        if label is None or label.target != TargetKind.PBLK:
            return None
        lg = self.lg
        b, e = int(label.lun_begin), int(label.lun_end)
        if (b, e) == (lg.lun_begin, lg.lun_end):
            uuid = bytes(label.uuid)
            return uuid if any(uuid) else None
        if b <= lg.lun_end and lg.lun_begin <= e:
            raise PblkWrongTarget(f"the media holds a pblk volume on LUNs {b}-{e}: open it with --luns {b}-{e}")
        return None                    # a target on other LUNs: the label is not about us

    def _record_target(self, label: MediaLabel | None) -> None:
        """Record this target (LUN range, instance uuid, capacity) in a label that has none."""
        if label is None or self._frozen:
            return
        lg = self.lg
        if label.target == TargetKind.PBLK:
            if (int(label.lun_begin), int(label.lun_end)) != (lg.lun_begin, lg.lun_end):
                return
            if any(bytes(label.uuid)) and label.capacity_bytes:
                return
        elif label.target != TargetKind.NONE:
            return
        new = MediaLabel.from_buffer_copy(bytes(label))
        new.target = TargetKind.PBLK
        new.lun_begin, new.lun_end = lg.lun_begin, lg.lun_end
        ctypes.memmove(ctypes.addressof(new) + MediaLabel.uuid.offset, self.lm.uuid, 16)
        new.capacity_bytes = self.size
        try:
            self.dev.driver.set_target(new)
        except DriverError as e:
            log.warning("pblk: could not record the target in the media label: %s", e)

    # ------------------------------------------------------------ read-only mode
    def _spare_secs(self) -> int:
        """Data sectors beyond the exported capacity that GC can work with: every usable
        line, less what lines left holding unreadable sectors cannot give back."""
        lm, l2p = self.lm, self.l2p
        spare = lm.usable_secs() - self.lg.capacity_sectors
        for ln in lm.lines:
            if ln.collected and ln.gc_tries >= MAX_GC_TRIES and ln.state == LineState.CLOSED:
                spare -= int(ln.data_units.size) * self.lg.unit_secs - int(l2p.vsc[ln.id])
        return spare

    def _update_read_only(self) -> None:
        """Go read-only once the spare space is below what GC needs to keep freeing lines
        at a bounded cost (params.spare_need: its reserve and half as much again)."""
        need = spare_need(self.lm.reserve_secs)
        if self._ro is None and need:
            spare = self._spare_secs()
            if spare < need:
                self._enter_read_only(f"bad blocks (and sectors GC cannot read) left {max(spare, 0)} "
                                      f"spare sectors, GC needs {need}")

    def _enter_read_only(self, reason: str, frozen: bool = False) -> None:
        self._frozen |= frozen
        if self._ro is None:
            self._ro = reason
            log.warning("pblk: LUNs %d-%d are read-only from now on: %s; reads keep working",
                        self.lg.lun_begin, self.lg.lun_end, reason)

    def _writable(self) -> None:
        if self._ro is not None:
            raise PblkReadOnly(f"pblk is read-only: {self._ro}")

    @property
    def read_only(self) -> bool:
        return self._ro is not None

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
        return self.read_into(lba, count, np.empty(count * self.sector_nbytes, dtype=np.uint8))

    def read_into(self, lba: int, count: int, out: np.ndarray) -> np.ndarray:
        """Sectors lba.. into `out`; media reads land there directly when it is in guest
        RAM (buf_alloc), which is how the FUSE edge reads."""
        self._check(lba, count)
        secb = self.sector_nbytes
        out = out.reshape(-1).view(np.uint8)[:count * secb]
        if out.nbytes < count * secb:
            raise PblkError(f"read buffer of {out.nbytes} bytes is short of {count * secb}")
        self.c["user_read_sectors"] += count
        if count == 1:
            v = int(self.l2p.map[lba])
            if v == -1:
                out[:] = 0
                return out
            if v <= -2:
                out[:] = self.rb.data[-2 - v]
                return out
            line, paddr = divmod(v, self._spl)          # the 4 KiB fast path: no arrays
            self.c["media_read_sectors"] += 1
            try:
                self.dev.ppa_io(NvmOpc.PH_READ, self._paddr_ppa[paddr] | (line << self._blk_off), PMode.SNGL,
                                out=out)
            except NvmError:
                self.c["media_read_sectors"] -= 1           # read again with the retry policy
                _, failed = self._read_media(np.array([v], dtype=np.int64), out)
                if failed is not None:
                    self._raise_read(failed, out)
            return out
        vals = self.l2p.map[lba:lba + count]
        media_ = vals >= 0
        nm = int(np.count_nonzero(media_))
        if nm == count:
            _, failed = self._read_media(vals, out)
            if failed is not None:
                self._raise_read(failed, out)
            return out
        out2 = out.reshape(count, secb)
        out2[vals == -1] = 0
        cache = vals <= -2
        if cache.any():
            out2[cache] = self.rb.data[-2 - vals[cache]]
        if nm:
            part = np.empty(nm * secb, dtype=np.uint8)
            _, failed = self._read_media(vals[media_], part)
            out2[media_] = part.reshape(nm, secb)
            if failed is not None:
                full = np.zeros(count, dtype=bool)
                full[media_] = failed
                self._raise_read(full, out)
        return out

    def buf_alloc(self, nbytes: int) -> np.ndarray:
        """A zeroed buffer in guest RAM: reads land in it and writes leave from it in place."""
        return self.dev.buf_alloc(nbytes)

    def _read_media(self, addrs: np.ndarray, out: np.ndarray):
        """Read media sectors into out with the retry policy; (out, failed mask or None)."""
        secb = self.sector_nbytes
        n = addrs.size
        ppas = self.lg.addr_ppas(addrs)
        self.c["media_read_sectors"] += n
        failed = None
        for s in range(0, n, READ_CHUNK):
            e = min(n, s + READ_CHUNK)
            _, st = media.read(self.dev, ppas[s:e], out[s * secb:e * secb], self.c)
            if st is not None and self.rb.keep:        # 2.0: what the device still caches, from the ring
                st = self._from_ring(addrs[s:e], out[s * secb:e * secb], st)
            if st is not None:
                if failed is None:
                    failed = np.zeros(n, dtype=bool)
                failed[s:e] = st != 0
                self.c["read_empty"] += int(np.count_nonzero(st == media.EMPTY))
        return out, failed

    def _from_ring(self, addrs: np.ndarray, out: np.ndarray, st: np.ndarray):
        """Sectors a 2.0 device reported unwritten (the last mw_cunits of an open chunk)
        copied from the ring entries that wrote them; the statuses left (None: none)."""
        empty = np.flatnonzero(st == media.EMPTY)
        slots = self.rb.lookup(addrs[empty])
        hit = slots >= 0
        if hit.any():
            rows = out.reshape(-1, self.sector_nbytes)
            rows[empty[hit]] = self.rb.data[slots[hit]]
            st[empty[hit]] = 0
            self.c["ring_reads"] += int(hit.sum())
        return st if st.any() else None

    def _raise_read(self, failed: np.ndarray, data: np.ndarray):
        nf = int(np.count_nonzero(failed))
        self.c["read_failed"] += nf
        first = int(np.argmax(failed))
        raise PblkIOError(f"pblk: {nf} sector(s) of the read could not be read from the media "
                          f"(first: request sector {first})", failed=failed, data=data)

    def write_sectors(self, lba: int, data) -> None:
        if isinstance(data, np.ndarray):
            d = data if data.dtype == np.uint8 and data.strides == (1,) else \
                np.ascontiguousarray(data).reshape(-1).view(np.uint8)      # (bytes in a row: as they are)
        else:
            d = np.frombuffer(data, dtype=np.uint8)
        secb = self.sector_nbytes
        n, rem = divmod(d.nbytes, secb)
        if rem:
            raise PblkError(f"write of {d.nbytes} bytes is not a whole number of {secb}-byte sectors")
        self._check(lba, n)
        if self._ro is not None:
            self._writable()
        rb = self.rb
        try:
            if self._trims:
                self._place_trims()
            if n == 1 and self._room() > 0:          # the 4 KiB write with room: one entry
                self._put(lba, d, 1)
                if rb.count >= DRAIN_AT:
                    self._cycle()
                return
            off = 0
            while off < n:
                room = self._room()
                if room <= 0:
                    room = self._make_room()
                k = min(room, n - off)
                self._put(lba + off, d[off * secb:(off + k) * secb], k)
                off += k
                if rb.count >= DRAIN_AT:
                    self._cycle()
        except PblkReadOnly as e:
            self._enter_read_only(str(e), frozen=e.device)
            raise

    def _room(self) -> int:
        """Entries users may put in the buffer now: the rate limiter's share, the ring's
        space, and what the lines can still take less the free sectors users may not take
        (a line for GC, plus GC's margin for failures)."""
        rb = self.rb
        return min(self.rl.user_max - rb.nuser, rb.space,
                   self.lm.avail_secs() - rb.count - self.lm.reserve_secs - self.gc.margin)

    def _put(self, lba: int, d: np.ndarray, k: int) -> None:
        """User sectors into the buffer; the L2P points at them and their old media copies
        stop counting as valid."""
        rb = self.rb
        if k == 1:
            pos = rb.put_one(lba, d)
            self.l2p.write_one(lba, pos % rb.n, rb.mem)
            return
        pos = rb.put_user(lba, d, k)
        self.l2p.write(lba, k, rb.slots(pos, k), rb.mem)

    def _place_trims(self) -> None:
        """The pending TRIM records into the buffer as TRIM sectors, ahead of any later write."""
        rec = self._trims.take()
        secs = trim.pack(rec, self.sector_nbytes)
        for _ in range(4):
            if self.rb.space >= secs.shape[0]:
                break
            self._cycle()
        else:
            raise PblkNoSpace("pblk: no room in the write buffer for TRIM records")
        self.rb.put(np.full(secs.shape[0], ADDR_TRIM, dtype=np.int64), Kind.TRIM, secs)
        self.l2p.trims_placed(self.rb.mem)
        self.c["trim_records"] += rec.shape[0]

    def _make_room(self) -> int:
        """Run drain/GC cycles until users may put at least one entry in the buffer.

        The exported capacity always fits a target that is not read-only, so GC that stalls,
        or rewrites every line twice over without making room, means what is left of the
        spare space (after bad blocks, failed programs and sectors GC cannot read) is too
        small or too scattered to go on: the target turns read-only rather than answer
        ENOSPC forever. What the buffer holds can still be flushed (Pblk.flush)."""
        rb, lm, c = self.rb, self.lm, self.c
        freed0 = c["lines_freed"]
        stalls = 0
        try:
            for _ in range(self._max_cycles):
                room = self._room()
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
        except PblkNoSpace as e:         # the writer found no line for what the buffer holds
            log.warning("%s", e)
        self._update_read_only()
        self._enter_read_only(f"GC cannot free space ({lm.count(LineState.FREE)} free lines, "
                              f"{int(self.l2p.vsc.sum())} valid sectors, {self._spare_secs()} spare)")
        raise PblkReadOnly(f"pblk is read-only: {self._ro}")

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

    def _reclaim(self) -> int:
        return self.gc.reclaim()

    def _rl_update(self) -> None:
        """The rate limiter sees the sectors still writable beyond what the buffer holds."""
        self.rl.update(self.lm.avail_secs() - self.rb.count)

    def flush(self) -> None:
        if self._closed:
            raise PblkError("pblk is closed")
        if self._frozen:
            if self.rb.count or self._trims:
                raise PblkReadOnly(f"pblk is read-only: {self._ro}; {self.rb.count} buffered "
                                   "sector(s) cannot be written")
            return
        try:
            if self._trims:
                self._place_trims()
            try:
                self.writer.flush()
            except PblkNoSpace:
                # no line left for what the buffer holds: GC's share can wait on its victims
                self.gc.revert_buffered()
                if self.gc.buffer_needed():
                    raise
                self.rb.drop()
            self.gc.reclaim()
        except PblkReadOnly as e:
            self._enter_read_only(str(e), frozen=e.device)
            raise
        self.c["flushes"] += 1

    def discard_sectors(self, lba: int, count: int) -> None:
        self._check(lba, count)
        self._writable()
        if not self.durable_discard:
            self.l2p.discard(lba, count, self.rb.mem)
        else:
            rec = self.l2p.discard(lba, count, None)
            if rec.size:
                self._trims.add(rec)
                if self._trims.full:
                    try:
                        self._place_trims()
                    except PblkReadOnly as e:
                        self._enter_read_only(str(e), frozen=e.device)
                        raise
        self.c["discarded_sectors"] += count

    def force_gc(self) -> bool:
        """Collect one line now, whatever the free space (pblk's sysfs gc_force): the
        victim the GC policy picks among closed lines holding invalid sectors. Its valid
        data moves through the write buffer and whole units are written; the line is freed
        once all of it is on media (at once, or with the next write or flush). False when
        no line has anything to reclaim or the valid data does not fit the room left."""
        if self._closed:
            raise PblkError("pblk is closed")
        self._writable()
        gc, rb, lm = self.gc, self.rb, self.lm
        try:
            gc.reclaim()
            if gc.victim is None:
                mv = gc.movable()
                best = gc.choose(lm.lines, mv, self.l2p.vsc, self.lg.unit_secs)   # the most to reclaim
                if best is None or mv[best.id] >= int(best.data_units.size) * self.lg.unit_secs:
                    return False
                if gc.pick() is None:
                    return False
            victim = gc.victim
            for _ in range(self._max_cycles):
                mark = (rb.mem, rb.sync)
                gc.fill(rb.space)
                self.writer.drain()
                gc.reclaim()
                if gc.victim is not victim or mark == (rb.mem, rb.sync):
                    break
            self._rl_update()
        except PblkReadOnly as e:
            self._enter_read_only(str(e), frozen=e.device)
            raise
        return True

    # ------------------------------------------------------------ housekeeping
    def background(self) -> bool:
        """A bounded slice of deferred work: one drain cycle (GC's share included while free
        lines are low). True if more is pending."""
        if self._closed or self._frozen:
            return False
        rb, us = self.rb, self.lg.unit_secs
        try:
            if rb.count < us and not self.rl.gc_active:
                self.gc.reclaim()
                return False
            mark = (rb.sync, rb.mem, self.lm.free_secs)
            self._cycle()
        except PblkReadOnly as e:
            self._enter_read_only(str(e), frozen=e.device)
            return False
        progressed = mark != (rb.sync, rb.mem, self.lm.free_secs)
        return progressed and (rb.count >= us or self.rl.gc_active)

    def check(self) -> None:
        """Raise InvariantError unless the target's state is consistent: the mapping's own
        invariants (L2P.check), free lines holding nothing, the free-space accounting, the
        buffer's per-kind counts, and held lines only while TRIM records are pending."""
        lm, rb = self.lm, self.rb
        free = [ln.id for ln in lm.lines if ln.state in (LineState.FREE, LineState.BAD)]
        self.l2p.check(rb, free)
        errs = []
        in_list = {ln.id for ln in lm.free}
        if in_list != {ln.id for ln in lm.lines if ln.state == LineState.FREE and ln is not lm.next}:
            errs.append("the free list and the FREE lines differ")
        counted = sum(int(ln.data_units.size) * self.lg.unit_secs for ln in lm.free)
        if lm.next is not None:
            counted += int(lm.next.data_units.size) * self.lg.unit_secs
        if counted != lm.free_secs:
            errs.append(f"free sectors {lm.free_secs} but the free lines hold {counted}")
        opened = [ln.id for ln in lm.lines if ln.state == LineState.OPEN]
        if opened != ([lm.cur.id] if lm.cur is not None else []):
            errs.append(f"open lines {opened} but the current line is {lm.cur}")
        live = rb.slots(rb.sync, rb.count)
        kinds = rb.kind[live]
        if (rb.nuser, rb.ngc) != (int(np.count_nonzero(kinds == Kind.USER)), int(np.count_nonzero(kinds == Kind.GC))):
            errs.append("write buffer user/GC counts differ from its entries")
        if self.l2p.held.any() and not self._trims:
            errs.append("lines held for TRIM records that are not pending")
        if errs:
            raise InvariantError("pblk: " + "; ".join(errs))

    def stats(self) -> dict:
        c, lm, lg, rb, l2p = self.c, self.lm, self.lg, self.rb, self.l2p
        user, gc, pad, meta, tr = c["user"], c["gc"], c["pad"], c["meta"], c["trim_sectors"]
        states = Counter(ln.state for ln in lm.lines)
        grown = lm.bad_blk & ~lm.factory_bad
        return {
            "capacity_bytes": self.size,
            "luns": [lg.lun_begin, lg.lun_end],
            "user_sectors": user,
            "gc_sectors": gc,
            "pad_sectors": pad,
            "meta_sectors": meta,
            "trim_sectors": tr,
            "write_amplification": round((user + gc + pad + tr) / user, 4) if user else 0.0,
            "media_write_amplification": round((user + gc + pad + tr + meta) / user, 4) if user else 0.0,
            "free_lines": states[LineState.FREE],
            "open_lines": states[LineState.OPEN],
            "closed_lines": states[LineState.CLOSED],
            "gc_lines": states[LineState.GC],
            "bad_lines": states[LineState.BAD],
            "total_lines": lg.nlines,
            "gc_runs": c["gc_runs"],
            "gc_sectors_moved": c["gc_moved"],
            "bad_blocks": {"factory": int(lm.factory_bad.sum()), "grown": int(grown.sum())},
            "valid_sectors": int(l2p.vsc.sum()),
            "mapped_sectors": int(np.count_nonzero(l2p.map != -1)),
            "unreadable_sectors": l2p.stuck_total(),
            "spare_sectors": self._spare_secs(),
            "read_only": self._ro is not None,
            "read_only_reason": self._ro,
            "durable_discard": self.durable_discard,
            "pending_trim_records": len(self._trims),
            "write_buffer": {"entries": rb.n, "buffered": rb.count, "user": rb.nuser, "gc": rb.ngc},
            "rate_limiter": self.rl.as_dict(),
            "counters": dict(c),
            "counters_persist": "all: as of the last line close (emeta), sector counts then "
                                "exact from the OOB of later lines",
            "recovery": dict(self.recovery),
            "device": dict(self.dev.driver.stats),
        }

    # ------------------------------------------------------------ the measuring surface
    def ftl_params(self) -> dict:
        """What pblk made of its parameters: capacity, GC policy, the rate limiter's
        thresholds, the write buffer, lines."""
        rl, lg = self.rl, self.lg
        return dict(capacity_bytes=self.size, gc_policy=self.gc.policy, write_buffer_entries=self.rb.n,
                    line_sectors=int(self.lm.reserve_secs // max(1, self.params.gc_foreground)),
                    rl_high_sectors=rl.high, rl_low_sectors=rl.low, rl_reserve_sectors=rl.rsv,
                    lines=lg.nlines, luns=lg.nluns, lun_range=[lg.lun_begin, lg.lun_end])

    def block_valid_sectors(self) -> np.ndarray:
        """Valid sectors per (global LUN, block) from the L2P: each mapped LBA's line (its
        block index) and the LUN its write unit striped to."""
        lg, l2p, geo = self.lg, self.l2p, self.dev.geo
        addrs = l2p.map[l2p.map >= 0].astype(np.int64)
        line, paddr = np.divmod(addrs, lg.sec_per_line)
        li = (paddr // lg.unit_secs) % lg.nluns
        glun = np.array([ch * geo.nluns + lun for ch, lun in lg.luns], dtype=np.int64)[li]
        out = np.zeros((geo.nchannels * geo.nluns, geo.nblocks), dtype=np.int64)
        np.add.at(out, (glun, line), 1)
        return out

    def host_buffer(self) -> HostBuffer:
        c = self.c
        return HostBuffer(self.rb.n, self.rb.count, c["user"] + c["gc"] + c["pad"] + c["trim_sectors"],
                          c["gc_moved"], c["user_read_sectors"], c["media_read_sectors"])

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
