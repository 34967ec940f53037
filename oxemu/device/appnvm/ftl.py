"""AppNVM FTL (lnvm = 0): the device-side FTL behind a standard NVMe namespace of 4 KiB
LBAs -- flush, write, read and dataset management (deallocate) (SPEC 6).

Writes are buffered one unit at a time (a page on every plane of a LUN) and units are
striped round-robin over all LUNs, channel first. Each LUN has one open user block; GC
moves data into its own open block, and metadata (checkpoints, trim journal) has a
third stream. Media operations are charged to the timing model, so `timing="model"`
yields modeled completion times: a write completes once its data is in the buffer (it
waits only when the buffer is full), a read when its pages are sensed and transferred,
a flush when everything buffered is on media.
"""
import logging

import numpy as np

from ...volt import MediaOp
from ...wire import FtlLog, LogPage, MediaMode, NvmOpc, Status
from ..core import MmgrCmd
from ..errors import CommandError
from ..identity import identify_controller, identify_namespace
from ..mode import DeviceMode
from ..prp import Transfer
from . import provisioning
from .blocks import Blocks
from .checkpoint import Checkpointer
from .gc import GarbageCollector
from .layout import FORMAT_VERSION, OOB_MAGIC, Seq, Stream, UnitKind, unit_header_dtype
from .mapping import CACHE_BASE, UNMAPPED, Addr, Mapping
from .media import Media
from .params import AppNvmParams
from .recovery import Recovered, Recovery
from .writebuf import BufferClock, WriteBuffer

log = logging.getLogger(__name__)

ONCS_DSM = 1 << 2                # identify controller ONCS: dataset management
PROGRAM_TRIES = 8                # a unit is re-placed this often after program failures
FUA = 1 << 30                    # write cdw12: force unit access
DSM_AD = 1 << 2                  # dsm cdw11: attribute deallocate
DSM_RANGE = np.dtype([("cattr", "<u4"), ("nlb", "<u4"), ("slba", "<u8")])
NSID_ALL = 0xFFFF_FFFF
WRITE_PROTECTED = Status.NS_WRITE_PROTECTED | Status.DNR


class AppNvmFtl(DeviceMode):
    """AppNVM mode ops: a page-mapped FTL with GC, over-provisioning, bad-block handling
    and a map that survives power loss (OOB LBAs + checkpoints) (SPEC 6).

    The FTL wires its parts together and owns only the command paths: `media` is the
    door to VOLT, `blocks` the block states and open blocks, `map` the L2P/P2L and the
    rule that keeps a buffered sector's durable copy valid, `wbuf` the write buffer's
    bytes, `ckpt` checkpoints and the trim journal, `gc` the collector, `seq` the sequence
    counter; `program_units` is the one way units reach media.

    Read-only (SPEC 8): once grown bad blocks leave fewer good blocks than the exported
    capacity needs (`Provision.min_good`), or no metadata fits at start, `read_only` is
    set for good (recorded in the media label): every byte stays readable, FLUSH works,
    WRITE and DATASET MANAGEMENT complete with NS_WRITE_PROTECTED | DNR (0x4020). A
    read-only open of the disk file behaves the same for its session, and writes nothing:
    no checkpoint at start, none at shutdown, the label untouched.
    """

    media_mode = MediaMode.APPNVM
    read_only = False                    # a plain attribute here: set when the spares run out

    def __init__(self, core, dma, capacity: int | None = None, params: AppNvmParams | None = None):
        """capacity: exported bytes (a multiple of 4 KiB); None = pblk's rule, or what
        the media was formatted with. params: victim policy, GC thresholds, buffer depth,
        wear levelling, checkpoint interval (default: the built-in behaviour)."""
        super().__init__(core.volt.timing)
        self.params = params or AppNvmParams()
        self.core = core
        self.volt = core.volt
        self.geo = self.volt.geo
        self.dma = dma
        self.tracer = core.tracer
        self.addr = addr = Addr(self.geo)
        self.sector_nbytes = addr.sector_nbytes
        self.hdr_dtype = unit_header_dtype(addr.unit_secs)
        if self.hdr_dtype.itemsize > self.geo.oob_nbytes:
            raise ValueError("geometry: the page OOB cannot hold the FTL's unit header")
        self._planes = np.arange(addr.nplanes, dtype=np.uint8)
        self._plane_list = list(range(addr.nplanes))
        self._hdr_templates: dict = {}
        self.counters = dict(host_sectors_written=0, host_sectors_read=0, user_sectors=0, gc_sectors=0,
                             pad_sectors=0, meta_sectors=0, erases=0, checkpoints=0, gc_runs=0,
                             trimmed_sectors=0, program_fails=0, read_retries=0, flushes=0,
                             unrecovered_reads=0)
        self.media = Media(core, self.counters)
        self.blocks = Blocks(self.media, addr, self.counters, self.params.wear_leveling)
        self.seq = Seq()
        self.wbuf = WriteBuffer(addr.unit_secs, addr.sector_nbytes)
        self.read_only = False
        self.read_only_reason = ""
        self._worn = (0, 0)                 # (retired, program failures) last looked at
        if capacity is not None:
            if capacity <= 0 or capacity % addr.sector_nbytes:
                raise ValueError(f"AppNVM capacity {capacity} is not a positive multiple of {addr.sector_nbytes}")
            capacity //= addr.sector_nbytes
        self.recovery = Recovery(addr, self.media, self.blocks, self.hdr_dtype, self.counters, self.seq)
        err = None
        try:
            rec = self.recovery.run(capacity)
            self._setup(rec)
            self._start(rec)
        except Exception as e:            # noqa: BLE001 - drop the frames: they hold views of the media,
            err = e.with_traceback(None)  # which would keep the disk file mapped and locked
        if err is not None:
            raise err

    def _setup(self, rec: Recovered) -> None:
        """Size the tables for the capacity recovery found and wire the parts."""
        prov = self.prov = provisioning.plan(self.addr, rec.prov.nlbas, self.params)
        self.nlbas = prov.nlbas
        self.map = Mapping(prov.nlbas, self.addr)
        self.map.load(rec.l2p)
        self.clock = BufferClock(prov.wb_units)
        self.ckpt = Checkpointer(self.addr, prov, self.blocks, self.map, self.counters,
                                 self.seq, self.program_units, ckpt_seq=rec.ckpt_seq)
        self.gc = GarbageCollector(self.addr, prov, self.map, self.blocks, self.media,
                                   self.program_units, self.ckpt, self.counters, self.params)

    def _start(self, rec: Recovered) -> None:
        """Read-only for a read-only open (the recovered map stays in memory: nothing is
        written), as the media label says, or as the good blocks say; otherwise a fresh
        checkpoint after an unclean stop (room is made for it first if need be)."""
        if self.volt.store.readonly:
            self.read_only = True
            self.read_only_reason = "the disk file is open read-only"
            return
        if self.media.read_only:
            self.read_only = True
            self.read_only_reason = "recorded in the media label"
            log.warning("AppNVM: the media is read-only (its spare blocks were used up in an earlier "
                        "session); every byte stays readable, writes and deallocates fail")
            return
        self._check_wear(force=True)
        if rec.clean or self.read_only:
            return
        try:
            self.ckpt.write(clean=False)
            return
        except CommandError as e:
            first = e
        try:                               # room for the metadata, from data blocks with garbage
            self.gc.make_room(self.prov.gc_floor + 1)
            self.gc.flush()
            self.ckpt.write(clean=False)
        except CommandError as e:
            self._go_read_only(f"no room for the map at start ({first}; then {e})")

    # ------------------------------------------------------------------ read-only
    def _check_wear(self, force: bool = False) -> None:
        """Go read-only once the blocks that stay good cannot hold the capacity (looked at
        again whenever a block was retired or a program failed)."""
        worn = (self.blocks.counters["retired"], self.counters["program_fails"])
        if worn == self._worn and not force:
            return
        self._worn = worn
        lasting = self.blocks.lasting
        if lasting < self.prov.min_good:
            self._go_read_only(f"{lasting} good blocks left, {self.prov.min_good} needed for the exported "
                               f"capacity of {self.nlbas * self.sector_nbytes} bytes")

    def _go_read_only(self, reason: str) -> None:
        if self.read_only:
            return
        self.read_only = True
        self.read_only_reason = reason
        log.warning("AppNVM: the device is read-only from now on: %s. Every byte stays readable; "
                    "WRITE and DATASET MANAGEMENT fail with 0x%04x", reason, int(WRITE_PROTECTED))
        self.media.set_read_only(reason)
        if self.wbuf.n:                    # what was acknowledged goes to media while there is room
            try:
                self._flush_buffer()
            except CommandError as e:
                log.error("AppNVM: the write buffer could not be programmed on going read-only: %s", e)

    # ------------------------------------------------------------------ identity
    def identify_controller(self, serial: str) -> bytes:
        return identify_controller(serial, nn=1, max_nbytes=provisioning.MAX_IO_NBYTES,
                                   oncs=ONCS_DSM, vwc=1)

    def identify_namespace(self) -> bytes:
        return identify_namespace(self.nlbas, lnvm=False)

    def log_pages(self) -> dict:
        return {LogPage.OX_FTL: self.ftl_log}

    # ------------------------------------------------------------------ programming units
    def program_units(self, stream: Stream, data: np.ndarray, lbas: np.ndarray, *, kind=UnitKind.DATA,
                      ckpt: int = 0, parts: np.ndarray | None = None, count: int = 0, buffered: bool = False,
                      tries: int = PROGRAM_TRIES) -> list[tuple[int, int, int]]:
        """Program units at the stream's next free pages, as one batch of MMGR commands.

        data: k * unit_nbytes bytes; lbas: (k, unit_secs) int64, -1 = no sector, written into
        every plane's OOB header (with the CKPT part numbers `parts`). Returns (block, page,
        done_ns) per unit placed, in order -- fewer than k when the user stream has no free
        block left (the caller makes room and goes on). A unit whose program fails is placed
        again elsewhere; its block is sealed, and retired once GC has emptied it.
        buffered: user data, acknowledged once in the write buffer, so done_ns is when its
        buffer slot was free rather than when the program ends.
        """
        addr = self.addr
        blocks = self.blocks
        npl, ub = addr.nplanes, addr.unit_nbytes
        k = lbas.shape[0]
        redo = tries < PROGRAM_TRIES           # re-placing failed units: the reserve may be used
        prov = self.prov
        if stream == Stream.USER:          # read-only: only the buffer's last unit, from any block
            floor = 0 if self.read_only else prov.gc_floor if redo else prov.reserve
        else:
            floor = self.gc.floor() if stream == Stream.GC else 0
        slots = []
        for _ in range(k):
            b = blocks.slot(stream, floor)
            if b < 0:
                break
            seq = self.seq.take()
            pg, epoch = blocks.fill(b, stream, seq)
            slots.append((b, pg, seq, epoch))
        n = len(slots)
        if n == 0:
            return []
        hdr = self._unit_headers(kind, stream, ckpt, count, n)
        if n == 1:                             # the 4 KiB writes' unit: plain integers, scalars broadcast
            b, pg, seq, epoch = slots[0]
            ch, lun, blk = addr.chlunblk(b)
            b_l, pg_l, ch_l, lun_l = [b], [pg], [ch], [lun]
            hdr["seq"] = seq
            hdr["epoch"] = epoch
            if parts is not None:
                hdr["part"] = parts[0]
            hdr["lba"] = lbas[0].view(np.uint64)
            coords = [ch] * npl, [lun] * npl, [blk] * npl, self._plane_list, [pg] * npl
        else:
            sl = np.array(slots, dtype=np.int64)
            b_a, pg_a = sl[:, 0], sl[:, 1]
            glun, blk_a = np.divmod(b_a, addr.nblocks)
            ch_a, lun_a = np.divmod(glun, addr.nluns)
            b_l, pg_l, ch_l, lun_l = b_a.tolist(), pg_a.tolist(), ch_a.tolist(), lun_a.tolist()
            hdr["seq"] = np.repeat(sl[:, 2], npl)
            hdr["epoch"] = np.repeat(sl[:, 3], npl)
            if parts is not None:
                hdr["part"] = np.repeat(parts[:n], npl)
            hdr["lba"] = np.repeat(lbas[:n].view(np.uint64), npl, axis=0)
            coords = (np.repeat(ch_a, npl), np.repeat(lun_a, npl), np.repeat(blk_a, npl),
                      np.tile(self._planes, n), np.repeat(pg_a, npl))
        pages = data[:n * ub].reshape(n * npl, addr.page_nbytes)
        oob = hdr.view(np.uint8).reshape(n * npl, -1)
        failed = self.media.program(*coords, pages, oob)
        media = self.media
        if not self.timing.enabled:            # every time is `now`: no charges to make
            now = media.now
            out = [(b, pg, now) for b, pg in zip(b_l, pg_l)]
        else:
            out = self._charge_units(ch_l, lun_l, b_l, pg_l, buffered)
        if failed.any():
            idx = np.flatnonzero(failed.reshape(n, npl).any(axis=1))
            for i in idx.tolist():
                self._program_failed(b_l[i], stream, pg_l[i])
            if tries <= 1:
                raise CommandError(Status.WRITE_FAULT, "AppNVM: unit program failed repeatedly")
            redo_data = np.concatenate([data[i * ub:(i + 1) * ub] for i in idx.tolist()])
            redo = self.program_units(stream, redo_data, lbas[idx], kind=kind, ckpt=ckpt,
                                      parts=None if parts is None else parts[idx], count=count,
                                      buffered=buffered, tries=tries - 1)
            if len(redo) < idx.size:
                raise CommandError(Status.CAP_EXCEEDED, "AppNVM: no room to re-place a failed unit")
            for i, r in zip(idx.tolist(), redo):
                out[i] = r
        return out

    def _charge_units(self, ch_l, lun_l, b_l, pg_l, buffered: bool) -> list:
        """(block, page, done_ns) per programmed unit, charged to the timing model in order;
        buffered: user data, acknowledged once in the write buffer."""
        media, ub, clock = self.media, self.addr.unit_nbytes, self.clock
        out = []
        for ch, lun, b, pg in zip(ch_l, lun_l, b_l, pg_l):
            if buffered:
                t = clock.admit(media.now)
                clock.programmed(media.charge(MediaOp.PROGRAM, ch, lun, ub, t, pg))
                out.append((b, pg, t))
            else:
                out.append((b, pg, media.charge(MediaOp.PROGRAM, ch, lun, ub, pg=pg)))
        return out

    def _unit_headers(self, kind, stream, ckpt: int, count: int, n: int) -> np.ndarray:
        """OOB headers of n units (one per plane) with the fields every unit of a batch
        shares filled in: a copy of a template kept per kind of batch."""
        npl = self.addr.nplanes
        key = (int(kind), int(stream), int(ckpt), int(count))
        t = self._hdr_templates.get(key)
        if t is None or t.size < n * npl:
            t = np.zeros(max(n, 64) * npl, dtype=self.hdr_dtype)
            t["magic"] = OOB_MAGIC
            t["version"] = FORMAT_VERSION
            t["kind"] = kind
            t["stream"] = stream
            t["ckpt"] = ckpt
            t["count"] = count
            t["plane"] = np.tile(self._planes, t.size // npl)
            if len(self._hdr_templates) > 16:
                self._hdr_templates.clear()
            self._hdr_templates[key] = t
        return t[:n * npl].copy()

    def _program_failed(self, b: int, stream: Stream, pg: int) -> None:
        self.counters["program_fails"] += 1
        ch, lun, blk = self.addr.chlunblk(b)
        log.warning("AppNVM: program failed at ch %d lun %d blk %d pg %d; sealing the block", ch, lun, blk, pg)
        self.blocks.seal(b, stream)

    # ------------------------------------------------------------------ room for user data
    def _user_room(self) -> bool:
        floor = 0 if self.read_only else self.prov.reserve
        return self.blocks.nfree > floor or any(b >= 0 for b in self.blocks.open_user)

    def _ensure_room(self) -> None:
        """GC before a user unit is placed, so that a place exists for it."""
        if self.blocks.nfree < self.prov.gc_low:
            self.gc.make_room()
        if not self._user_room():
            self.gc.make_room(self.prov.reserve + 1)
            self.gc.flush()
            if not self._user_room():
                raise CommandError(Status.CAP_EXCEEDED, "AppNVM: out of space (GC found nothing to reclaim)")

    def _user_units(self, lbas: np.ndarray | None, data: np.ndarray) -> int:
        """Program user data: the write buffer's unit (lbas None), or whole units straight
        from the host's buffer (lbas (k, unit_secs)). Returns when the data was accepted."""
        m = self.map
        us = self.addr.unit_secs
        from_buffer = lbas is None
        if from_buffer:
            lbas = m.buffered_lbas().reshape(1, us)
        done = self.media.now
        pos, k = 0, lbas.shape[0]
        stalls = 0
        while pos < k:
            self._ensure_room()
            rows = lbas[pos:]
            res = self.program_units(Stream.USER, data[pos * self.addr.unit_nbytes:], rows, buffered=True)
            n = len(res)
            if n == 0:                     # e.g. the free block it took failed its erase
                stalls += 1
                if stalls > 3:
                    raise CommandError(Status.CAP_EXCEEDED, "AppNVM: out of space for user data")
                self.gc.make_room(self.prov.gc_low + 1)
                continue
            stalls = 0
            rows = rows[:n]
            if n == 1:
                base = self.addr.unit_loc(res[0][0], res[0][1])
                locs = np.arange(base, base + us, dtype=np.int64)
            else:
                bases = np.array([self.addr.unit_loc(b, pg) for b, pg, _t in res], dtype=np.int64)
                locs = (bases[:, None] + np.arange(us)).reshape(-1)
            if from_buffer:
                m.buffer_programmed(locs)
            else:
                m.write_units(rows.reshape(-1), locs)
            done = max(done, max(t for _b, _pg, t in res))
            live = int(np.count_nonzero(rows >= 0))
            self.counters["user_sectors"] += live
            self.counters["pad_sectors"] += rows.size - live
            self.ckpt.note_units(n)
            pos += n
        return done

    def _flush_buffer(self) -> int:
        """Program the partly filled write buffer, padded. Returns the program's end."""
        wb = self.wbuf
        if wb.n == 0:
            return self.media.now
        wb.data[wb.n * self.sector_nbytes:] = 0
        self._user_units(None, wb.data)
        wb.reset()
        return self.clock.drained(self.media.now)

    # ------------------------------------------------------------------ I/O
    def io(self, cmd, arrival_ns):
        self.media.now = arrival_ns
        op = cmd.opcode
        if op not in (NvmOpc.READ, NvmOpc.WRITE, NvmOpc.FLUSH, NvmOpc.DSM):
            return Status.INVALID_OPCODE | Status.DNR, 0, arrival_ns
        if cmd.nsid != 1 and not (op == NvmOpc.FLUSH and cmd.nsid == NSID_ALL):
            return Status.INVALID_NS | Status.DNR, 0, arrival_ns
        if self.read_only and op in (NvmOpc.WRITE, NvmOpc.DSM):
            return WRITE_PROTECTED, 0, arrival_ns
        try:
            done = self._io(cmd, op)
        except CommandError as e:
            self._check_wear()
            if e.status == Status.CAP_EXCEEDED and self.blocks.grown_bad and not self.read_only:
                self._go_read_only(f"no room for data although GC ran: {self.blocks.grown_bad} grown bad "
                                   f"block(s) took the spare space it needs ({e})")
            if not self.read_only:
                raise
            if op in (NvmOpc.WRITE, NvmOpc.DSM):          # it wore out on this one
                raise CommandError(WRITE_PROTECTED, f"{e}; the device went read-only") from None
            if op != NvmOpc.FLUSH:
                raise
            done = self.flush()                           # read-only: the buffer may take any block
        self._check_wear()
        if self.ckpt.wanted:
            self._periodic_checkpoint()
        return Status.SUCCESS, 0, done

    def _io(self, cmd, op) -> int:
        if op == NvmOpc.FLUSH:
            if self.tracer is not None:
                self._trace(cmd, 0, None)
            done = self.flush()
        elif op == NvmOpc.DSM:
            if self.tracer is not None:
                self._trace(cmd, 0, None)
            done = self._dsm(cmd)
        else:
            slba = cmd.cdw10 | (cmd.cdw11 << 32)
            n = (cmd.cdw12 & 0xFFFF) + 1
            if n > self.prov.max_sectors:
                raise CommandError(Status.INVALID_FIELD | Status.DNR,
                                   f"{n} sectors exceed the maximum transfer of {self.prov.max_sectors}")
            if slba + n > self.nlbas:
                raise CommandError(Status.LBA_RANGE | Status.DNR,
                                   f"LBAs {slba}+{n} beyond the namespace of {self.nlbas}")
            xfer = Transfer(self.dma, cmd.prp1, cmd.prp2, n * self.sector_nbytes)
            if self.tracer is not None:
                self._trace(cmd, n, xfer)
            if op == NvmOpc.WRITE:
                done = self._write(slba, n, xfer, bool(cmd.cdw12 & FUA))
            else:
                done = self._read(slba, n, xfer)
        return done

    def _periodic_checkpoint(self) -> None:
        try:
            self.ckpt.write()
        except CommandError as e:          # no room now: the command itself succeeded
            log.warning("AppNVM: periodic checkpoint postponed: %s", e)
            self.ckpt.postpone()

    def _write(self, slba: int, n: int, xfer: Transfer, fua: bool) -> int:
        data = xfer.read()
        sb = self.sector_nbytes
        us = self.addr.unit_secs
        wb = self.wbuf
        m = self.map
        done = self.media.now
        i = 0
        while i < n:
            if wb.n == 0 and n - i >= us:                 # whole units: no buffer copy
                q = (n - i) // us
                t = self._user_units(np.arange(slba + i, slba + i + q * us, dtype=np.int64).reshape(q, us),
                                     data[i * sb:(i + q * us) * sb])
                i += q * us
            else:
                if n == 1:                                # one sector: plain integers
                    m.buffer_one(slba, wb.put_one(data))
                    i = 1
                else:
                    k = min(us - wb.n, n - i)
                    m.buffer(np.arange(slba + i, slba + i + k), wb.put(data[i * sb:(i + k) * sb]))
                    i += k
                t = self.media.now
                if wb.full:
                    t = self._user_units(None, wb.data)
                    wb.reset()
            done = max(done, t)
        self.counters["host_sectors_written"] += n
        self.bytes_written += n * sb
        self.ckpt.note_write()
        if fua:
            done = max(done, self._flush_buffer())
        return done

    def _read(self, slba: int, n: int, xfer: Transfer) -> int:
        sb = self.sector_nbytes
        sink = xfer.sink()
        out = sink if sink is not None else np.empty(n * sb, dtype=np.uint8)
        locs = self.map.l2p[slba:slba + n]
        done = self.media.now
        if n == 1:
            loc = int(locs[0])
            if loc < CACHE_BASE:
                done = self._read_media(out, np.zeros(1, np.int64), np.array([loc], np.int64))
            elif loc == UNMAPPED:
                out[:] = 0
            else:
                j = loc - CACHE_BASE
                out[:] = self.wbuf.data[j * sb:(j + 1) * sb]
        else:
            media = locs < CACHE_BASE
            if not media.all():
                for i in np.flatnonzero(~media).tolist():
                    loc = int(locs[i])
                    if loc == UNMAPPED:
                        out[i * sb:(i + 1) * sb] = 0
                    else:
                        j = loc - CACHE_BASE
                        out[i * sb:(i + 1) * sb] = self.wbuf.data[j * sb:(j + 1) * sb]
                idx = np.flatnonzero(media)
            else:
                idx = np.arange(n)
            if idx.size:
                done = self._read_media(out, idx, locs[idx].astype(np.int64))
        if sink is None:
            xfer.write(out)
        self.counters["host_sectors_read"] += n
        self.bytes_read += n * sb
        return done

    def _read_media(self, out: np.ndarray, idx: np.ndarray, locs: np.ndarray) -> int:
        """Fill out[idx[i]] from media sector locs[i], one page read per run of sectors."""
        addr = self.addr
        sb, ns, us = addr.sector_nbytes, addr.nsectors, addr.unit_secs
        media = self.media
        done = media.now
        if idx.size == 1:
            starts, ends = [0], [1]
        else:
            brk = np.flatnonzero((np.diff(idx) != 1) | (np.diff(locs) != 1) | (np.diff(locs // ns) != 0)) + 1
            starts = [0] + brk.tolist()
            ends = brk.tolist() + [idx.size]
        copied = len(starts) > 1 and self._read_runs(out, idx, locs, starts)
        if copied and not self.timing.enabled:
            return done
        last_unit, last_cl, nbytes = -1, None, 0
        for s, e in zip(starts, ends):
            loc = int(locs[s])
            ch, lun, blk, pl, pg, sec = addr.decode(loc)
            if not copied:                     # else read and copied at once: the charges only
                page = media.read_page(ch, lun, blk, pl, pg)
                if page is None:               # SPEC 9: the sector stays mapped and keeps failing
                    self.counters["unrecovered_reads"] += 1
                    raise CommandError(Status.UNRECOVERED_READ,
                                       f"AppNVM: unrecoverable read at ch {ch} lun {lun} blk {blk} pl {pl} pg {pg}")
                o = int(idx[s])
                k = e - s
                out[o * sb:(o + k) * sb] = page[sec * sb:(sec + k) * sb]
            unit = loc // us
            if unit != last_unit:
                if nbytes:
                    done = max(done, media.charge(MediaOp.READ, last_cl[0], last_cl[1], nbytes, pg=last_cl[2]))
                last_unit, last_cl, nbytes = unit, (ch, lun, pg), 0
            nbytes += addr.page_nbytes
        if nbytes:
            done = max(done, media.charge(MediaOp.READ, last_cl[0], last_cl[1], nbytes, pg=last_cl[2]))
        return done

    def _read_runs(self, out: np.ndarray, idx: np.ndarray, locs: np.ndarray, starts: list) -> bool:
        """_read_media's page reads and copies at once, when every page reads fine on the
        first try (Media.read_pages); False, having read nothing, otherwise."""
        addr = self.addr
        ns, us, nb, nl, npg = addr.nsectors, addr.unit_secs, addr.nblocks, addr.nluns, addr.npages
        sl = locs[starts]
        unit, r = np.divmod(sl, us)
        b, pg = np.divmod(unit, npg)
        glun, blk = np.divmod(b, nb)
        ch, lun = np.divmod(glun, nl)
        rows = self.media.read_pages(ch, lun, blk, r // ns, pg)
        if rows is None:
            return False
        # sector i of the request comes from its run's page row, at its sector in the page
        run = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, idx.size)))
        src = rows[run] * ns + locs % ns
        secs = self.volt.data_rows.reshape(-1, addr.sector_nbytes)
        dst = out.reshape(-1, addr.sector_nbytes)
        if idx[0] == 0 and idx[-1] == idx.size - 1 and idx.size == dst.shape[0]:
            np.take(secs, src, axis=0, out=dst, mode="clip")
        else:
            dst[idx] = np.take(secs, src, axis=0, mode="clip")
        return True

    def flush(self) -> int:
        """Everything acknowledged is on media: program the buffer, journal the trims."""
        self.counters["flushes"] += 1
        done = self._flush_buffer()
        self.ckpt.write_trims()
        return max(done, self.clock.drained(self.media.now))

    def _dsm(self, cmd) -> int:
        if not cmd.cdw11 & DSM_AD:
            return self.media.now               # only access hints: nothing to do
        nr = (cmd.cdw10 & 0xFF) + 1
        raw = Transfer(self.dma, cmd.prp1, cmd.prp2, nr * DSM_RANGE.itemsize).read()
        ranges = np.frombuffer(raw.tobytes(), dtype=DSM_RANGE)
        slba = ranges["slba"].astype(object)
        nlb = ranges["nlb"].astype(object)
        for s, k in zip(slba, nlb):
            if s + k > self.nlbas:
                raise CommandError(Status.LBA_RANGE | Status.DNR,
                                   f"deallocate of LBAs {s}+{k} beyond the namespace of {self.nlbas}")
        for s, k in zip(slba, nlb):
            if k:
                self.trim(int(s), int(k))
        return self.media.now

    def trim(self, slba: int, nlb: int) -> None:
        """Deallocate [slba, slba + nlb): later reads return zeros."""
        self.map.deallocate(slba, nlb)
        self.counters["trimmed_sectors"] += nlb
        self.ckpt.note_trim(slba, nlb)

    # ------------------------------------------------------------------ power
    def reset(self) -> None:
        """A controller reset persists like a shutdown (the seed's `nvme reset`)."""
        self.shutdown()

    def shutdown(self) -> None:
        """Controller shutdown or reset: buffer and GC stage to media, a clean checkpoint,
        and the media file flushed. With no room for them the data stays where it is (and
        recovery finds it at the next start): the shutdown itself completes. A read-only
        open has nothing to stage and writes nothing."""
        if not self.volt.powered or self.volt.store.readonly:
            return
        media = self.media
        media.now = max(media.now, self.timing.now_ns)
        try:
            self._flush_buffer()
            self.gc.flush()
            ck = self.ckpt
            if ck.dirty or ck.pending_trims or ck.due:
                ck.write(clean=True)
        except CommandError as e:
            log.error("AppNVM: shutdown without a clean checkpoint: %s", e)
        self.volt.flush()

    # ------------------------------------------------------------------ reporting
    def stats(self) -> dict:
        """Counters of the FTL; waf = sectors programmed / sectors the host wrote."""
        c = dict(self.counters)
        host = c["host_sectors_written"]
        programmed = c["user_sectors"] + c["pad_sectors"] + c["gc_sectors"] + c["meta_sectors"]
        blocks = self.blocks
        return dict(
            mode="appnvm", nlbas=self.nlbas, capacity_bytes=self.nlbas * self.sector_nbytes,
            mapped_sectors=self.map.mapped_count(), media_sectors_programmed=programmed,
            waf=programmed / host if host else 0.0,
            waf_data=(c["user_sectors"] + c["pad_sectors"] + c["gc_sectors"]) / host if host else 0.0,
            free_blocks=blocks.nfree, good_blocks=blocks.good, factory_bad_blocks=blocks.factory_bad,
            grown_bad_blocks=blocks.grown_bad,
            retired_blocks=blocks.counters["retired"], erase_fails=blocks.counters["erase_fails"],
            gc_victims=c["gc_runs"], gc_read_errors=self.gc.counters["read_errors"],
            gc_stuck_blocks=self.gc.counters["stuck_blocks"], held_blocks=len(self.ckpt.held),
            read_only=self.read_only, read_only_reason=self.read_only_reason,
            min_good_blocks=self.prov.min_good,
            gc_policy=self.params.gc_policy, gc_reserve_blocks=self.prov.reserve,
            gc_low_blocks=self.prov.gc_low, write_buffer_units=self.prov.wb_units,
            wear_leveling=self.params.wear_leveling,
            checkpoint_every_units=self.prov.ckpt_every,
            recovery=dict(self.recovery.stats), **c)

    def block_valid_sectors(self) -> np.ndarray:
        g = self.geo
        return np.asarray(self.map.valid, dtype=np.int64).reshape(g.nchannels * g.nluns, g.nblocks).copy()

    def ftl_log(self) -> bytes:
        """Vendor log page 0xC1: the counters a host compares with pblk's (wire.ox.FtlLog)."""
        c, b = self.counters, self.blocks
        return bytes(FtlLog(
            host_sectors_written=c["host_sectors_written"], host_sectors_read=c["host_sectors_read"],
            user_sectors=c["user_sectors"], gc_sectors=c["gc_sectors"], pad_sectors=c["pad_sectors"],
            meta_sectors=c["meta_sectors"], gc_runs=c["gc_runs"], erases=c["erases"],
            discarded_sectors=c["trimmed_sectors"], checkpoints=c["checkpoints"],
            valid_sectors=int(self.map.valid.sum()), capacity_sectors=self.nlbas,
            free_blocks=b.nfree, good_blocks=b.good, total_blocks=self.addr.total_blocks,
            factory_bad_blocks=b.factory_bad, grown_bad_blocks=b.grown_bad,
            read_only=int(self.read_only), program_fails=c["program_fails"],
            erase_fails=b.counters["erase_fails"], read_retries=c["read_retries"],
            unrecovered_reads=c["unrecovered_reads"]))

    # ------------------------------------------------------------------ trace
    def _trace(self, cmd, n: int, xfer) -> None:
        sb = self.sector_nbytes
        prps = []
        if xfer is not None:
            base = [int(p) for p in xfer.pages]
            prps = [base[(xfer.offset + i * sb) // 4096] + (xfer.offset + i * sb) % 4096 for i in range(n)]
        self.tracer.io_cmd(cmd.seq, cmd, n, n * sb, 0, [], prps, [])
        mtype = {NvmOpc.READ: MmgrCmd.READ_PG}.get(cmd.opcode, MmgrCmd.WRITE_PG)
        self.core.submit(cmd, mtype, 0)

