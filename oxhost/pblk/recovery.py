"""Recovery: rebuild the L2P and the line lists from the media at start (pblk-recovery.c).

Every line's smeta is read (one batched read); lines with a valid one were in use and are
replayed in sequence order, so a later write of an LBA wins over an earlier one. A line
with valid emeta gives its LBA list directly. A line without one (the open line at a
crash, or one whose emeta is damaged) is scanned: the OOB of each written sector carries
its LBA and the line's sequence number, and the empty-page status 0x42FF marks where the
writing stopped. The newest line, if its written part is a clean prefix, is reopened and
writing continues in it; a line found full without emeta gets its emeta now.

The same path serves a clean stop and a kill -9: nothing is written at close beyond the
flush. Damaged smeta or emeta is reported with a warning and skipped, never fatal.
"""
import logging
import time
import uuid

import numpy as np

from oxemu.wire import NvmOpc, PMode, Status
from oxhost.lightnvm import NvmError

from .lines import Line, LineState
from .metadata import (
    ADDR_EMPTY,
    PBLK_MAGIC,
    Kind,
    MetaError,
    pack_oob,
    unpack_emeta,
    unpack_oob,
    unpack_smeta,
)

log = logging.getLogger(__name__)

SCAN_SECS = 1024            # sectors per read while scanning a line's OOB


def _read(dev, ppas: np.ndarray, with_meta: bool = False):
    """(data, meta, failed mask or None, status): reads that fail only in part are normal here."""
    try:
        data, meta = dev.ppa_io(NvmOpc.PH_READ, ppas, PMode.SNGL, with_meta=with_meta)
        return data, meta, None, 0
    except NvmError as e:
        if e.status == Status.NVM_WARN_HIGH_ECC:
            return e.data, e.meta, None, 0
        return e.data, e.meta, e.mask, e.status


class Recovery:
    """pblk_recov_l2p for one target; `run()` leaves the Pblk ready to write."""

    def __init__(self, pblk):
        self.p = pblk
        self.dev = pblk.dev
        self.lg = pblk.lg
        self.lm = pblk.lm
        self.report = {"lines_in_use": 0, "lines_from_emeta": 0, "lines_scanned": 0, "lines_free": 0,
                       "lines_bad": 0, "corrupt_smeta": 0, "corrupt_emeta": 0, "foreign_lines": 0,
                       "reopened_line": None, "lbas_mapped": 0, "seconds": 0.0}

    # ------------------------------------------------------------ smeta
    def _read_smetas(self, lines: list[Line]) -> list:
        """(line, Smeta) for every line whose smeta is valid, in no particular order."""
        lg, sz = self.lg, self.lg.meta
        nsec = -(-sz.smeta_len // sz.sector_nbytes)
        if not lines:
            return []
        ppas = np.concatenate([lg.ppas(ln.id, lg.unit_paddrs(ln.smeta_units)[:nsec]) for ln in lines])
        data, _, failed, _ = _read(self.dev, ppas)
        secb = sz.sector_nbytes
        found = []
        for i, ln in enumerate(lines):
            sl = slice(i * nsec, (i + 1) * nsec)
            buf = data[sl.start * secb:sl.stop * secb]
            if failed is not None and failed[sl].any():
                # a batch reports one status: ask this line alone whether it is just empty
                buf, _, f1, st = _read(self.dev, ppas[sl])
                if f1 is not None:
                    if st != Status.NVM_EMPTY_PAGE:
                        log.warning("pblk: smeta of line %d unreadable (status 0x%04X); line skipped",
                                    ln.id, st)
                        self.report["corrupt_smeta"] += 1
                    continue
            try:
                found.append((ln, unpack_smeta(sz, buf, ln.id)))
            except MetaError as e:
                if int(buf[4:8].view("<u4")[0]) == PBLK_MAGIC:
                    log.warning("pblk: line %d: %s; line skipped", ln.id, e)
                    self.report["corrupt_smeta"] += 1
                # otherwise the first unit holds data of an older use of the block: free
        return found

    # ------------------------------------------------------------ emeta / OOB
    def _read_emeta(self, ln: Line):
        lg, sz = self.lg, self.lg.meta
        ppas = lg.ppas(ln.id, lg.unit_paddrs(ln.emeta_units))
        data, _, failed, status = _read(self.dev, ppas)
        if failed is not None and failed.any():
            if status != Status.NVM_EMPTY_PAGE:
                log.warning("pblk: emeta of line %d unreadable (status 0x%04X); scanning its OOB",
                            ln.id, status)
                self.report["corrupt_emeta"] += 1
            return None
        try:
            em = unpack_emeta(sz, data, ln.id)
        except MetaError as e:
            log.warning("pblk: line %d: %s; scanning its OOB", ln.id, e)
            self.report["corrupt_emeta"] += 1
            return None
        if em.seq != ln.seq:
            log.warning("pblk: line %d: emeta of sequence %d under smeta of %d; scanning its OOB",
                        ln.id, em.seq, ln.seq)
            self.report["corrupt_emeta"] += 1
            return None
        return em

    def _scan(self, ln: Line):
        """LBA list and write counts of a line from its OOB, and how far it was written.

        Returns (lbas, counts, nfull, clean, missing): nfull counts the leading data units
        fully programmed; clean is True when nothing is programmed after unit nfull; missing
        lists the unprogrammed sectors of unit nfull when a power cut left it half written
        (one plane page programmed, the other not), else None.
        """
        lg, sz = self.lg, self.lg.meta
        us = lg.unit_secs
        du = ln.data_units
        lbas = np.full(sz.nr_lba_slots, -1, dtype=np.int64)
        counts = np.zeros(len(Kind), dtype=np.int64)
        wmap = np.zeros((du.size, us), dtype=bool)  # programmed sectors, unit by unit
        step = max(ln.nblocks, SCAN_SECS // us)     # >= one unit per good LUN: an empty chunk ends it
        trusted = True
        for s in range(0, du.size, step):
            units = du[s:s + step]
            paddrs = lg.unit_paddrs(units)
            _, meta, failed, status = _read(self.dev, lg.ppas(ln.id, paddrs), with_meta=True)
            written = np.ones(paddrs.size, dtype=bool) if failed is None else ~failed
            if failed is not None and status != Status.NVM_EMPTY_PAGE:
                trusted = False
                log.warning("pblk: line %d: read errors while scanning OOB (status 0x%04X)", ln.id, status)
            seq, kind, lba = unpack_oob(meta)
            mine = written & (seq == ln.seq)
            data = mine & ((kind == Kind.USER) | (kind == Kind.GC))
            lbas[paddrs[data]] = lba[data]
            counts += np.bincount(kind[mine], minlength=len(Kind))[:len(Kind)]
            wmap[s:s + units.size] = written.reshape(-1, us)
            if not written.any():
                break
        full = wmap.all(axis=1)
        nfull = int(np.argmin(full)) if not full.all() else du.size
        clean = trusted and not wmap[nfull + 1:].any()
        missing = None
        if clean and nfull < du.size and wmap[nfull].any():
            missing = np.flatnonzero(~wmap[nfull])
        return lbas, counts, nfull, clean, missing

    def _pad_half_unit(self, ln: Line, missing: np.ndarray) -> bool:
        """Program the plane pages a power cut left out of unit ln.cur (single-plane
        writes of padding), so the planes line up again and writing can go on after it."""
        lg = self.lg
        paddrs = lg.unit_paddrs(ln.data_units[ln.cur:ln.cur + 1])[missing]
        n = paddrs.size
        try:
            self.dev.ppa_io(NvmOpc.PH_WRITE, lg.ppas(ln.id, paddrs), PMode.SNGL,
                            data=np.zeros(n * lg.meta.sector_nbytes, np.uint8),
                            meta=pack_oob(ln.seq, Kind.PAD, ADDR_EMPTY, n))
        except NvmError as e:
            log.warning("pblk: line %d: padding its half-written unit failed: %s", ln.id, e)
            return False
        self.p.c["pad"] += n
        ln.cur += 1
        return True

    # ------------------------------------------------------------ the whole pass
    def run(self) -> dict:
        t0 = time.perf_counter()
        p, lg, lm = self.p, self.lg, self.lm
        lm.load_bbt()
        candidates = []
        for ln in lm.lines:
            if ln.set_layout(lg, ~lm.bad_blk[ln.id]):
                candidates.append(ln)
            else:
                ln.state = LineState.BAD
        found = self._read_smetas(candidates)
        in_use = set()
        if found:
            newest = max(found, key=lambda f: f[1].seq)
            lm.uuid = newest[1].uuid
            mine = []
            for ln, sm in found:
                if sm.uuid != lm.uuid:
                    log.warning("pblk: line %d belongs to another pblk instance; treated as free", ln.id)
                    self.report["foreign_lines"] += 1
                    continue
                if not ln.set_layout(lg, sm.luns):
                    log.warning("pblk: line %d: smeta names too few blocks; line skipped", ln.id)
                    self.report["corrupt_smeta"] += 1
                    continue
                ln.seq, ln.prev_id = sm.seq, sm.prev_id
                mine.append(ln)
            mine.sort(key=lambda ln: ln.seq)
            self._replay(mine)
            in_use = {ln.id for ln in mine}
        else:
            lm.uuid = uuid.uuid4().bytes
        # everything else that can hold data is free
        for ln in candidates:
            if ln.id not in in_use:
                ln.seq, ln.cur = 0, 0
                lm.setup(ln, LineState.FREE)
        good = [ln for ln in lm.lines if ln.state != LineState.BAD]
        lm.total_blocks = sum(ln.nblocks for ln in good)
        lm.reserve_secs = max((ln.data_units.size * lg.unit_secs for ln in good), default=0)
        p.rl.configure(sum(ln.data_units.size * lg.unit_secs for ln in good), lm.reserve_secs)
        lm.rl_update()
        r = self.report
        r["lines_in_use"] = len(in_use)
        r["lines_free"] = len(lm.free)
        r["lines_bad"] = lm.count(LineState.BAD)
        r["lbas_mapped"] = int(np.count_nonzero(p.l2p.map >= 0))
        r["seconds"] = round(time.perf_counter() - t0, 4)
        if in_use:
            log.info("pblk: recovered %d lines (%d from emeta, %d scanned), %d LBAs mapped in %.3fs",
                     len(in_use), r["lines_from_emeta"], r["lines_scanned"], r["lbas_mapped"], r["seconds"])
        return r

    def _replay(self, lines: list[Line]) -> None:
        p, lg, lm = self.p, self.lg, self.lm
        spl = lg.sec_per_line
        nslots = lg.meta.nr_lba_slots
        paddr = np.arange(nslots, dtype=np.int64)
        wa = np.zeros(3, dtype=np.int64)          # user, gc, pad
        wa_seq = -1
        scanned = []
        last = None
        for ln in lines:
            em = self._read_emeta(ln)
            if em is not None:
                lbas = em.lbas
                ln.werr = em.bad & ln.good
                ln.cur = ln.data_units.size
                if em.seq > wa_seq:
                    wa[:] = em.wa
                    wa_seq = em.seq
                self.report["lines_from_emeta"] += 1
                last = (ln, None, None)
            else:
                lbas, counts, nfull, clean, missing = self._scan(ln)
                ln.cur = nfull
                scanned.append((ln, counts))
                self.report["lines_scanned"] += 1
                last = (ln, clean, missing)
            bad = (lbas >= p.l2p.nsectors)
            if bad.any():
                log.warning("pblk: line %d maps %d LBAs beyond the capacity; ignored", ln.id, int(bad.sum()))
                lbas = np.where(bad, -1, lbas)
            lm.lba[ln.id] = lbas
            p.l2p.load_line(lbas, ln.id * spl + paddr)
            ln.state = LineState.CLOSED
        for ln, counts in scanned:
            if ln.seq > wa_seq:
                wa += (counts[Kind.USER], counts[Kind.GC], counts[Kind.PAD])
        p.c["user"], p.c["gc"], p.c["pad"] = (int(x) for x in wa)
        lm.vsc[:] = p.l2p.valid_counts(spl, lg.nlines)
        lm.next_seq = lines[-1].seq + 1
        lm.last_id = lines[-1].id
        ln, clean, missing = last
        if clean and missing is not None:
            clean = self._pad_half_unit(ln, missing)
        if clean:                       # the newest line was open: go on writing it
            ln.state = LineState.OPEN
            lm.cur = ln
            self.report["reopened_line"] = ln.id
            if ln.units_left() == 0:
                p.writer.close_line(ln)
        elif clean is False:
            log.info("pblk: line %d was left with a ragged end; closed as it is", ln.id)
