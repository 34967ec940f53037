"""The writer: maps whole write units from the write buffer onto the open line, stripes them
across its LUNs and programs them, then commits them to the mapping (pblk-write.c,
pblk-map.c). It also opens lines (erase-ahead, smeta) and closes them (emeta).

A write unit is one page on every plane of one LUN (8 sectors in dual-plane mode); units
go to the LUNs in stripe order, so consecutive units program different LUNs. One device
call carries up to 1024 sectors (16 commands of 64 addresses, one doorbell).

On Open-Channel SSD 2.0 (pblk/ocssd2.py) the device's write failures arrive as 0x40FF
too, and the ring keeps what it programmed readable while the device caches it
(writebuffer.py).

A failed program (0x40FF with a bitmap) is not fatal: the sectors that still matter go
back into the buffer and are written again further on (a TRIM sector keeps only the
records still needed then), the line is marked as having a write error on that block,
and the block is retired when GC frees the line. A device that refuses writes as
read-only (NS_WRITE_PROTECTED) puts the target in read-only mode.
"""
import logging

import numpy as np

from oxemu.wire import NvmOpc, Status
from oxhost.lightnvm import NvmError

from . import trim
from .errors import PblkIOError, PblkNoSpace, PblkReadOnly
from .l2p import EMPTY, L2P
from .lines import Line, LineGeometry, LineManager
from .metadata import (
    ADDR_EMPTY,
    ADDR_TRIM,
    ID_NONE,
    Kind,
    MetaError,
    pack_emeta,
    pack_oob,
    pack_smeta,
)
from .writebuffer import WriteBuffer

log = logging.getLogger(__name__)

MAX_SECS_PER_CALL = 1024


def write_protected(status: int) -> bool:
    return (int(status) & ~int(Status.DNR)) == Status.NS_WRITE_PROTECTED


def program(dev, ppas: np.ndarray, pmode, data: np.ndarray, meta: np.ndarray) -> np.ndarray | None:
    """Program sectors; None on success, else the bool mask of failed sectors. A device in
    read-only mode raises PblkReadOnly; any other status than a write failure PblkIOError."""
    try:
        dev.ppa_io(NvmOpc.PH_WRITE, ppas, pmode, data=data, meta=meta)
        return None
    except NvmError as e:
        if write_protected(e.status):
            raise PblkReadOnly("pblk: the device refuses writes (its media is read-only)", device=True) from e
        if e.status != Status.NVM_FAIL_WRITE:
            raise PblkIOError(f"pblk: program failed with NVMe status 0x{e.status:04X}") from e
        return e.mask


class Writer:
    """pblk_write_ts + pblk_map_rq + line open/close, synchronously."""

    def __init__(self, dev, lg: LineGeometry, lm: LineManager, rb: WriteBuffer, l2p: L2P,
                 counters: dict, reclaim):
        self.dev = dev
        self.lg = lg
        self.lm = lm
        self.rb = rb
        self.l2p = l2p
        self.c = counters
        self.reclaim = reclaim          # frees collected lines when a new one is needed
        self.pmode = dev.pmode
        self.max_units = max(1, MAX_SECS_PER_CALL // lg.unit_secs)

    def _program(self, ppas: np.ndarray, data: np.ndarray, meta: np.ndarray) -> np.ndarray | None:
        return program(self.dev, ppas, self.pmode, data, meta)

    # ------------------------------------------------------------ lines
    def open_line(self) -> Line:
        """Take the erased-ahead line, write its smeta, erase the one after it."""
        lm = self.lm
        while True:
            line = lm.take_for_open()
            if line is None:
                self.reclaim()
                line = lm.take_for_open()
            if line is None:
                raise PblkNoSpace("pblk: no free line left to write to")
            lm.begin_open(line)
            self.l2p.open_line(line.id)
            if self._write_smeta(line):
                break
        lm.open(line)
        self.c["lines_opened"] += 1
        log.debug("pblk: opened line %d seq %d (%d blocks)", line.id, line.seq, line.nblocks)
        return line

    def _write_smeta(self, line: Line) -> bool:
        """Program smeta into the line's first good unit; a block whose program fails turns
        grown bad and the next good unit takes the smeta. False if the line ran out."""
        lg, lm = self.lg, self.lm
        while True:
            buf = pack_smeta(lg.meta, line.id, line.seq, line.prev_id, lm.uuid, line.good)
            paddrs = lg.unit_paddrs(line.smeta_units)
            n = paddrs.size
            failed = self._program(lg.ppas(line.id, paddrs), buf,
                                   pack_oob(line.seq, Kind.META, ADDR_EMPTY, n))
            self.c["meta"] += n
            if failed is None:
                return True
            self.c["write_failed"] += int(np.count_nonzero(failed))
            if not lm.retire_blocks(line, self._failed_luns(line.smeta_units, failed)):
                return False

    def _failed_luns(self, units: np.ndarray, failed: np.ndarray) -> np.ndarray:
        """LUN indices of the units a program failed in (failed: per sector)."""
        lg = self.lg
        return np.unique(lg.lun_of_unit(units[failed.reshape(-1, lg.unit_secs).any(axis=1)]))

    def close_line(self, line: Line) -> None:
        """Write emeta (LBA list, valid counts, WA counters) into the line's last units."""
        lg, lm, c = self.lg, self.lm, self.c
        nxt = lm.next.id if lm.next is not None else ID_NONE
        paddrs = lg.unit_paddrs(line.emeta_units)
        n = paddrs.size
        counters = dict(c, meta=c["meta"] + n, lines_closed=c["lines_closed"] + 1)   # this emeta too
        buf = pack_emeta(lg.meta, line.id, line.seq, line.prev_id, nxt, lm.uuid,
                         ~line.good | line.werr, (c["user"], c["gc"], c["pad"]),
                         self.l2p.lba[line.id], np.clip(self.l2p.vsc, 0, None), counters)
        failed = self._program(lg.ppas(line.id, paddrs), buf, pack_oob(line.seq, Kind.META, ADDR_EMPTY, n))
        c["meta"] += n
        if failed is not None:
            # the line stays recoverable from its OOB; GC it early and retire the block
            c["write_failed"] += int(np.count_nonzero(failed))
            lm.write_failed(line, self._failed_luns(line.emeta_units, failed))
            log.warning("pblk: emeta of line %d could not be written; recovery will scan its OOB", line.id)
        lm.close(line)
        c["lines_closed"] += 1
        log.debug("pblk: closed line %d seq %d, %d valid", line.id, line.seq, int(self.l2p.vsc[line.id]))

    def current_line(self) -> Line:
        line = self.lm.cur
        if line is not None and line.units_left() == 0:
            self.close_line(line)
            line = None
        if line is None:
            line = self.open_line()
        return line

    # ------------------------------------------------------------ draining the buffer
    def drain(self, max_secs: int | None = None) -> int:
        """Program every whole write unit in the buffer; returns the sectors written."""
        rb, us = self.rb, self.lg.unit_secs
        done = 0
        while True:
            units = rb.count // us
            if max_secs is not None:
                units = min(units, (max_secs - done) // us)
            if units <= 0:
                return done
            line = self.current_line()
            start = rb.sync % rb.n
            k = min(units, line.units_left(), self.max_units, (rb.n - start) // us)
            self._write_units(line, k)
            done += k * us
            if line.units_left() == 0:
                self.close_line(line)

    def _write_units(self, line: Line, k: int) -> None:
        rb, lg, c = self.rb, self.lg, self.c
        us = lg.unit_secs
        n = k * us
        start = rb.tail(n)
        units = line.data_units[line.cur:line.cur + k]
        paddrs = lg.unit_paddrs(units)
        lbas = rb.lba[start:start + n].copy()
        kinds = rb.kind[start:start + n].copy()
        failed = self._program(lg.ppas(line.id, paddrs), rb.data[start:start + n],
                               pack_oob(line.seq, kinds, lbas))
        self.lm.advance(line, k)
        counts = np.bincount(kinds, minlength=len(Kind))
        c["user"] += int(counts[Kind.USER])
        c["gc"] += int(counts[Kind.GC])
        c["pad"] += int(counts[Kind.PAD])
        c["trim_sectors"] += int(counts[Kind.TRIM])
        slots = np.arange(start, start + n, dtype=np.int64)
        # the line's LBA list gets every programmed sector (stale ones are told apart by the
        # L2P, as in pblk); LBAs still pointing at their slot now point at the media
        self.l2p.commit(line.id, paddrs, lbas, slots, None if failed is None else ~failed)
        ok = slice(None) if failed is None else ~failed
        rb.remember(slots[ok], (rb.sync + np.arange(n, dtype=np.int64))[ok], line.id * lg.sec_per_line + paddrs[ok])
        if failed is None:
            rb.release(n)
            return
        self._requeue(line, units, failed, lbas, kinds, slots)

    def _requeue(self, line: Line, units, failed, lbas, kinds, slots) -> None:
        """A program failed: data entries that still matter and TRIM records still needed go
        back into the buffer, in their order, and the block is marked for retirement."""
        rb, c, l2p = self.rb, self.c, self.l2p
        n = lbas.size
        nfail = int(np.count_nonzero(failed))
        c["write_failed"] += nfail
        self.lm.write_failed(line, self._failed_luns(units, failed))
        failed_pos = rb.sync + int(np.argmax(failed))
        keep = failed & l2p.cached_at(lbas, slots)
        rows, r_lbas, r_kinds, r_src = [], [], [], []
        for i in np.flatnonzero(failed & (keep | (kinds == Kind.TRIM))).tolist():
            if kinds[i] == Kind.TRIM:
                for sec in self._still_needed_trims(rb.data[slots[i]]):
                    rows.append(sec)
                    r_lbas.append(ADDR_TRIM)
                    r_kinds.append(Kind.TRIM)
                    r_src.append(-1)
            else:
                rows.append(rb.data[slots[i]].copy())
                r_lbas.append(int(lbas[i]))
                r_kinds.append(int(kinds[i]))
                r_src.append(int(rb.src[slots[i]]))
        rb.release(n)
        new = np.empty(0, dtype=np.int64)
        data_lbas = np.empty(0, dtype=np.int64)
        if rows:
            r_lbas_a = np.array(r_lbas, dtype=np.int64)
            new = rb.put(r_lbas_a, np.array(r_kinds, dtype=np.uint8), np.stack(rows),
                         src=np.array(r_src, dtype=np.int64))
            data = r_lbas_a >= 0
            data_lbas, new = r_lbas_a[data], new[data]
            c["requeued"] += len(rows)
        l2p.requeue(data_lbas, new, failed_pos, rb.mem)
        log.warning("pblk: program failure on line %d (%d sectors); %d requeued", line.id, nfail, len(rows))

    def _still_needed_trims(self, sector: np.ndarray) -> list:
        """The TRIM sectors to write again for a failed one: its ranges that are still
        unmapped (an LBA written since must not be unmapped by a record placed after it)."""
        try:
            rec = trim.unpack(sector)
        except MetaError:
            return []
        m = self.l2p.map
        keep = []
        for s, k in rec.tolist():
            keep.append(trim.runs(m[s:s + k] == EMPTY, s))
        if not keep:
            return []
        rec = np.concatenate(keep)
        return list(trim.pack(rec, self.rb.secb)) if rec.size else []

    def pad(self) -> int:
        """Complete the partial write unit at the buffer head with zero sectors."""
        rb, us = self.rb, self.lg.unit_secs
        k = (-rb.count) % us
        rb.pad(k)
        return k

    def flush(self) -> None:
        """Everything in the buffer onto media (pblk_write_flush: pad, then write)."""
        rb = self.rb
        for _ in range(64):
            if rb.count == 0:
                return
            self.pad()
            self.drain()
        raise PblkIOError("pblk: flush cannot complete (programs keep failing)")

    def close_if_full(self) -> None:
        line = self.lm.cur
        if line is not None and line.units_left() == 0:
            self.close_line(line)
