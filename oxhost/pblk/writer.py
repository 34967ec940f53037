"""The writer: maps whole write units from the write buffer onto the open line, stripes them
across its LUNs and programs them, then points the L2P at the media (pblk-write.c,
pblk-map.c). It also opens lines (erase-ahead, smeta) and closes them (emeta).

A write unit is one page on every plane of one LUN (8 sectors in dual-plane mode); units
go to the LUNs in stripe order, so consecutive units program different LUNs. One device
call carries up to 1024 sectors (16 commands of 64 addresses, one doorbell).

A failed program (0x40FF with a bitmap) is not fatal: the sectors that failed go back to
the head of the buffer and are written again further on, the line is marked as having a
write error on that block, and the block is retired when GC frees the line.
"""
import logging

import numpy as np

from oxemu.wire import NvmOpc, Status
from oxhost.lightnvm import NvmError

from .errors import PblkIOError, PblkNoSpace
from .l2p import L2P, cache_code
from .lines import Line, LineGeometry, LineManager, LineState
from .metadata import ADDR_EMPTY, ID_NONE, Kind, pack_emeta, pack_oob, pack_smeta
from .writebuffer import WriteBuffer

log = logging.getLogger(__name__)

MAX_SECS_PER_CALL = 1024


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

    # ------------------------------------------------------------ device
    def _program(self, ppas: np.ndarray, data: np.ndarray, meta: np.ndarray) -> np.ndarray | None:
        """Program sectors; None on success, else the bool mask of failed sectors."""
        try:
            self.dev.ppa_io(NvmOpc.PH_WRITE, ppas, self.pmode, data=data, meta=meta)
            return None
        except NvmError as e:
            if e.status != Status.NVM_FAIL_WRITE:
                raise PblkIOError(f"pblk: program failed with NVMe status 0x{e.status:04X}") from e
            return e.mask

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
            line.seq = lm.next_seq
            lm.next_seq += 1
            line.prev_id = lm.last_id
            line.cur = 0
            line.werr[:] = False
            lm.lba[line.id] = -1
            if self._write_smeta(line):
                break
        line.state = LineState.OPEN
        lm.cur = line
        lm.last_id = line.id
        lm.prepare_next()
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
            bad = np.unique(lg.lun_of_unit(line.smeta_units[failed.reshape(-1, lg.unit_secs).any(axis=1)]))
            lm.mark_grown_bad(line, bad)
            good = line.good.copy()
            good[bad] = False
            if not line.set_layout(lg, good):
                line.state = LineState.BAD
                log.warning("pblk: line %d retired: smeta could not be written", line.id)
                return False

    def close_line(self, line: Line) -> None:
        """Write emeta (LBA list, valid counts, WA counters) into the line's last units."""
        lg, lm, c = self.lg, self.lm, self.c
        nxt = lm.next.id if lm.next is not None else ID_NONE
        buf = pack_emeta(lg.meta, line.id, line.seq, line.prev_id, nxt, lm.uuid,
                         ~line.good | line.werr, (c["user"], c["gc"], c["pad"]),
                         lm.lba[line.id], np.clip(lm.vsc, 0, None))
        paddrs = lg.unit_paddrs(line.emeta_units)
        n = paddrs.size
        failed = self._program(lg.ppas(line.id, paddrs), buf, pack_oob(line.seq, Kind.META, ADDR_EMPTY, n))
        c["meta"] += n
        if failed is not None:
            # the line stays recoverable from its OOB; GC it early and retire the block
            c["write_failed"] += int(np.count_nonzero(failed))
            line.werr[lg.lun_of_unit(line.emeta_units[failed.reshape(-1, lg.unit_secs).any(axis=1)])] = True
            log.warning("pblk: emeta of line %d could not be written; recovery will scan its OOB", line.id)
        line.state = LineState.CLOSED
        if lm.cur is line:
            lm.cur = None
        c["lines_closed"] += 1
        log.debug("pblk: closed line %d seq %d, %d valid", line.id, line.seq, int(lm.vsc[line.id]))

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
        rb, lg, lm, c = self.rb, self.lg, self.lm, self.c
        us = lg.unit_secs
        n = k * us
        start = rb.tail(n)
        units = line.data_units[line.cur:line.cur + k]
        paddrs = lg.unit_paddrs(units)
        lbas = rb.lba[start:start + n].copy()
        kinds = rb.kind[start:start + n].copy()
        failed = self._program(lg.ppas(line.id, paddrs), rb.data[start:start + n],
                               pack_oob(line.seq, kinds, lbas))
        line.cur += k
        counts = np.bincount(kinds, minlength=len(Kind))
        c["user"] += int(counts[Kind.USER])
        c["gc"] += int(counts[Kind.GC])
        c["pad"] += int(counts[Kind.PAD])
        slots = np.arange(start, start + n, dtype=np.int64)
        ok = np.ones(n, dtype=bool) if failed is None else ~failed
        # LBA list of the line: every programmed sector's LBA (stale ones are told apart by
        # the L2P, as in pblk)
        row = lm.lba[line.id]
        row[paddrs] = np.where(ok, lbas, ADDR_EMPTY)
        mapped = ok & (lbas >= 0)
        if mapped.all():
            upd = self.l2p.commit(lbas, slots, line.id * lg.sec_per_line + paddrs)
        else:
            upd = self.l2p.commit(lbas[mapped], slots[mapped], line.id * lg.sec_per_line + paddrs[mapped])
        lm.vsc[line.id] += int(np.count_nonzero(upd))
        if failed is None:
            rb.release(n)
            return
        # program failure: requeue the sectors that still matter
        c["write_failed"] += int(np.count_nonzero(failed))
        bad_units = failed.reshape(k, us).any(axis=1)
        line.werr[lg.lun_of_unit(units[bad_units])] = True
        retry = failed & (lbas >= 0)
        retry &= self.l2p.map[np.where(retry, lbas, 0)] == cache_code(slots)
        r_lbas, r_kinds = lbas[retry], kinds[retry]
        rows = rb.data[slots[retry]].copy()
        rb.release(n)
        if r_lbas.size:
            new = rb.put(r_lbas, r_kinds, rows)
            self.l2p.map[r_lbas] = cache_code(new)
            c["requeued"] += int(r_lbas.size)
        log.warning("pblk: program failure on line %d (%d sectors); %d requeued",
                    line.id, int(np.count_nonzero(failed)), int(r_lbas.size))

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

