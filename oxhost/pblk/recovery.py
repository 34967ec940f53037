"""Recovery: rebuild the mapping and the line lists from the media at start (pblk-recovery.c).

Every line's smeta is read (one batched read); lines with a valid one of this instance were
in use and are replayed in sequence order, so a later write of an LBA wins over an earlier
one and a TRIM record unmaps what precedes it. A line with valid emeta gives its LBA list
directly. A line without one (the open line at a crash, or one whose emeta is damaged or
was cut short) is scanned: the OOB of each written sector carries its LBA and the line's
sequence number, and the empty-page status 0x42FF marks where writing stopped.

Recovery never programs a page it has not seen empty (SPEC 8: a power cut never costs a
good block). The scan learns what every page of the newest line is -- programmed, torn by
the cut (uncorrectable, consumed), or empty -- and NAND's in-order rule makes every page
after a fully empty stripe row empty too. Writing goes on after the last consumed page: a
unit the cut left half programmed gets its empty plane pages padded, a line whose data
part is full gets its emeta only if every emeta page is empty, and a line whose emeta was
cut short stays closed without it (later recoveries scan it). Nothing is written when the
target comes up read-only.

On Open-Channel SSD 2.0 (pblk/ocssd2.py), chunk states and write pointers come first: the
lines with open chunks are padded out of the device's write cache before anything is
read (`pad_open_lines`), as Linux 4.17+ pblk pads an open line at recovery.

The same path serves a clean stop and a kill -9: nothing is written at close beyond the
flush. Damaged smeta or emeta is reported with a warning and skipped, never fatal.
"""
import logging
import time
import uuid as uuidlib
from dataclasses import dataclass

import numpy as np

from oxemu.wire import ChunkState, PMode

from . import media, trim
from .errors import PblkReadOnly
from .lines import Line, LineState
from .ocssd2 import ChunkDevice
from .metadata import (
    ADDR_EMPTY,
    ADDR_TRIM,
    PBLK_MAGIC,
    Kind,
    MetaError,
    pack_oob,
    unpack_emeta,
    unpack_oob,
    unpack_smeta,
)
from .writer import program

log = logging.getLogger(__name__)

SCAN_SECS = 1024            # sectors per read while scanning a line's OOB


@dataclass
class Scan:
    """What a line's OOB scan found."""
    lbas: np.ndarray        # LBA list (ADDR_TRIM for TRIM sectors, ADDR_EMPTY elsewhere)
    counts: np.ndarray      # sectors per Kind written by this line
    consumed: int           # plane pages programmed (readable or not), in program order
    clean: bool             # nothing programmed after them
    unreadable: int         # consumed sectors that read uncorrectable (torn or failed)


class Recovery:
    """pblk_recov_l2p for one target: `load()` rebuilds the state from the media without
    writing; `resume()` then makes the newest line writable again."""

    def __init__(self, pblk, uuid: bytes | None = None):
        self.p = pblk
        self.dev = pblk.dev
        self.lg = pblk.lg
        self.lm = pblk.lm
        self.uuid = uuid                  # the label's instance uuid, when it names one
        self._last = None                 # (newest line, its Scan or None)
        self._wps = None                  # 2.0: write pointer of every chunk, (line, LUN index)
        self.report = {"lines_in_use": 0, "lines_from_emeta": 0, "lines_scanned": 0, "lines_free": 0,
                       "lines_bad": 0, "corrupt_smeta": 0, "corrupt_emeta": 0, "foreign_lines": 0,
                       "reopened_line": None, "lbas_mapped": 0, "trim_sectors": 0, "trim_unreadable": 0,
                       "unreadable_sectors": 0, "padded_pages": 0, "emeta_written": 0,
                       "closed_without_emeta": 0, "seconds": 0.0}

    # ------------------------------------------------------------ smeta
    def _read_smetas(self, lines: list[Line]) -> list:
        """(line, Smeta) for every line whose smeta is valid, in no particular order."""
        lg, sz = self.lg, self.lg.meta
        nsec = -(-sz.smeta_len // sz.sector_nbytes)
        if not lines:
            return []
        ppas = np.concatenate([lg.ppas(ln.id, lg.unit_paddrs(ln.smeta_units)[:nsec]) for ln in lines])
        secb = sz.sector_nbytes
        data = np.empty(ppas.size * secb, dtype=np.uint8)
        _, st = media.read(self.dev, ppas, data, self.p.c)
        found = []
        for i, ln in enumerate(lines):
            buf = data[i * nsec * secb:(i + 1) * nsec * secb]
            s = None if st is None else st[i * nsec:(i + 1) * nsec]
            if s is not None and s.any():
                if (s != media.EMPTY).any():
                    # a smeta program the power cut tore: the line never got data
                    log.warning("pblk: smeta of line %d unreadable (status 0x%04X); line treated as free",
                                ln.id, int(s.max()))
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

    # ------------------------------------------------------------ emeta / OOB / TRIM
    def _read_emeta(self, ln: Line):
        lg, sz = self.lg, self.lg.meta
        ppas = lg.ppas(ln.id, lg.unit_paddrs(ln.emeta_units))
        data = np.empty(ppas.size * sz.sector_nbytes, dtype=np.uint8)
        _, st = media.read(self.dev, ppas, data, self.p.c)
        if st is not None:
            if (st != media.EMPTY).any() and not (st == media.EMPTY).any():
                log.warning("pblk: emeta of line %d unreadable (status 0x%04X); scanning its OOB",
                            ln.id, int(st.max()))
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

    def _scan(self, ln: Line) -> Scan:
        """The line's LBA list and write counts from its OOB, and what every page is, in
        program order (smeta, data, emeta units; the planes of a unit in order). Stops
        after a stripe row (one unit on every good LUN) found entirely empty: pages are
        programmed in order within a block, so every later page of the line is empty."""
        lg, sz = self.lg, self.lg.meta
        us, npl, nsec, secb = lg.unit_secs, lg.nplanes, lg.nsectors, sz.sector_nbytes
        units = np.concatenate([ln.smeta_units, ln.data_units, ln.emeta_units])
        nu = units.size
        prog = np.zeros((nu, npl), dtype=bool)
        lbas = np.full(sz.nr_lba_slots, ADDR_EMPTY, dtype=np.int64)
        counts = np.zeros(len(Kind), dtype=np.int64)
        unreadable = 0
        row = max(1, ln.nblocks)
        step = max(row, (SCAN_SECS // us) // row * row)
        for s in range(0, nu, step):
            u = units[s:s + step]
            paddrs = lg.unit_paddrs(u)
            buf = np.empty(paddrs.size * secb, dtype=np.uint8)
            meta, st = media.read(self.dev, lg.ppas(ln.id, paddrs), buf, self.p.c, with_meta=True)
            if st is None:
                st = np.zeros(paddrs.size, dtype=np.uint16)
            written = st != media.EMPTY
            readable = st == 0
            if self._wps is not None:               # 2.0: below the write pointer is written, read or not
                cached = ~written & (self._chunk_pos(paddrs) < self._wps[ln.id, lg.lun_of_unit(paddrs // us)])
                written |= cached
                unreadable -= int(np.count_nonzero(cached))
            unreadable += int(np.count_nonzero(written & ~readable))
            seq, kind, lba = unpack_oob(meta)
            mine = readable & (seq == ln.seq)
            listed = mine & (paddrs < sz.nr_lba_slots)
            data = listed & ((kind == Kind.USER) | (kind == Kind.GC))
            lbas[paddrs[data]] = lba[data]
            lbas[paddrs[listed & (kind == Kind.TRIM)]] = ADDR_TRIM
            counts += np.bincount(kind[mine], minlength=len(Kind))[:len(Kind)]
            pages = written.reshape(u.size, npl, nsec).any(axis=2)
            prog[s:s + u.size] = pages
            if u.size >= row and not pages[-row:].any():
                break
        flat = prog.reshape(-1)
        consumed = int(np.argmin(flat)) if not flat.all() else flat.size
        return Scan(lbas, counts, consumed, not flat[consumed:].any(), unreadable)

    def _read_trims(self, ln: Line, lbas: np.ndarray) -> dict:
        """Records of the line's TRIM sectors, by line sector."""
        tp = np.flatnonzero(lbas == ADDR_TRIM)
        if tp.size == 0:
            return {}
        lg = self.lg
        secb = lg.meta.sector_nbytes
        buf = np.empty(tp.size * secb, dtype=np.uint8)
        _, st = media.read(self.dev, lg.ppas(ln.id, tp), buf, self.p.c)
        out = {}
        for i, pa in enumerate(tp.tolist()):
            try:
                if st is not None and st[i]:
                    raise MetaError(f"status 0x{int(st[i]):04X}")
                out[pa] = trim.unpack(buf[i * secb:(i + 1) * secb])
            except MetaError as e:
                log.error("pblk: line %d: TRIM sector %d unreadable (%s); its discards are lost",
                          ln.id, pa, e)
                self.report["trim_unreadable"] += 1
        self.report["trim_sectors"] += len(out)
        return out

    # ------------------------------------------------------------ the whole pass
    def load(self) -> dict:
        """Read the media and rebuild the mapping, writing nothing -- except on 2.0, where
        lines with open chunks are padded first (`pad_open_lines`)."""
        t0 = time.perf_counter()
        p, lm = self.p, self.lm
        lm.load_bbt()
        candidates = [ln for ln in lm.lines if lm.lay_out_from_tables(ln)]
        if isinstance(self.dev, ChunkDevice):
            self.pad_open_lines(candidates)
        found = self._read_smetas(candidates)
        if self.uuid is not None:
            lm.uuid = self.uuid
        elif found:
            lm.uuid = max(found, key=lambda f: f[1].seq)[1].uuid
        else:
            lm.uuid = uuidlib.uuid4().bytes
        mine = []
        for ln, sm in found:
            if sm.uuid != lm.uuid:
                log.warning("pblk: line %d belongs to another pblk instance; treated as free", ln.id)
                self.report["foreign_lines"] += 1
                continue
            if not lm.recovered_in_use(ln, sm.seq, sm.prev_id, sm.luns):
                log.warning("pblk: line %d: smeta names too few blocks; line skipped", ln.id)
                self.report["corrupt_smeta"] += 1
                continue
            mine.append(ln)
        mine.sort(key=lambda ln: ln.seq)
        if mine:
            self._replay(mine)
        in_use = {ln.id for ln in mine}
        # everything else that can hold data is free (and erased before it is used)
        for ln in candidates:
            if ln.id not in in_use:
                lm.recovered_free(ln)
        lm.recovered(mine[-1] if mine else None)
        p.rl.configure(lm.usable_secs(), lm.reserve_secs)
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

    def pad_open_lines(self, lines: list[Line]) -> None:
        """2.0: the device does not read the last mw_cunits sectors of an open chunk, and the
        write buffer that held them is gone. The chunks' write pointers say where writing
        stopped (what a cut tore the device has already consumed): every line with an open
        chunk is padded on from there in stripe order, a half-written unit completed, by
        mw_cunits sectors on each of its blocks (pblk_recov_pad_line), so smeta and data
        written before the stop read back and the line stays a prefix of its units. The
        filler is padding of no line; `_scan` counts what is below a write pointer as
        written. A line whose chunks do not form a prefix is left as it is."""
        dev, lg = self.dev, self.lg
        us, part = lg.unit_secs, lg.nsectors
        oob = pack_oob(0, Kind.PAD, ADDR_EMPTY, 1).view(np.uint8).reshape(-1)
        states = np.zeros((lg.nlines, lg.nluns), dtype=np.uint8)
        self._wps = np.zeros((lg.nlines, lg.nluns), dtype=np.int64)
        for li, (ch, lun) in enumerate(lg.luns):
            states[:, li], self._wps[:, li] = dev.chunk_report(ch, lun)
        padded = 0
        for ln in lines:
            if not (states[ln.id] == ChunkState.OPEN).any():
                continue
            left = dev.mw_cunits * ln.nblocks
            units = np.concatenate([ln.smeta_units, ln.data_units, ln.emeta_units]).tolist()
            for u in units:
                li = u % lg.nluns
                first = (u // lg.nluns) * us
                if first + us <= self._wps[ln.id, li]:
                    continue                                  # written
                if left <= 0:
                    break
                ch, lun = lg.luns[li]
                for pos in range(max(first, int(self._wps[ln.id, li])), first + us, part):
                    n = dev.pad_chunk(ch, lun, ln.id, part, oob, at=pos)
                    if n == 0:
                        log.warning("pblk: line %d: chunk on LUN index %d is not where its line stopped; "
                                    "not padded", ln.id, li)
                        left = 0
                        break
                    self._wps[ln.id, li] += n
                    left -= n
                    padded += n
        self.report["padded_pages"] += padded // part
        if padded:
            log.info("pblk: padded open lines by %d sectors out of the device's write cache", padded)

    def _chunk_pos(self, paddrs: np.ndarray) -> np.ndarray:
        """Sector within its chunk of each line sector (2.0)."""
        lg = self.lg
        unit, k = np.divmod(paddrs, lg.unit_secs)
        return (unit // lg.nluns) * lg.unit_secs + k

    def _replay(self, lines: list[Line]) -> None:
        p, lm, l2p = self.p, self.lm, self.p.l2p
        nsectors = l2p.nsectors
        wa = np.zeros(3, dtype=np.int64)          # user, gc, pad
        wa_seq = -1
        kept: dict = {}                           # all counters, as the newest emeta has them
        scanned = []
        last = None
        for ln in lines:
            em = self._read_emeta(ln)
            sc = None
            if em is not None:
                lbas = em.lbas
                werr, cur = em.bad, int(ln.data_units.size)
                if em.seq > wa_seq:
                    wa[:] = em.wa
                    wa_seq = em.seq
                    kept = em.counters
                self.report["lines_from_emeta"] += 1
            else:
                sc = self._scan(ln)
                lbas = sc.lbas
                werr = None
                cur = int(np.clip(-(-sc.consumed // self.lg.nplanes) - ln.smeta_units.size,
                                  0, ln.data_units.size))
                scanned.append((ln, sc.counts))
                self.report["lines_scanned"] += 1
                self.report["unreadable_sectors"] += sc.unreadable
            bad = (lbas >= nsectors) | ((lbas < 0) & (lbas != ADDR_EMPTY) & (lbas != ADDR_TRIM))
            if bad.any():
                log.warning("pblk: line %d lists %d LBAs outside the volume; ignored", ln.id, int(bad.sum()))
                lbas = np.where(bad, ADDR_EMPTY, lbas)
            l2p.replay_line(ln.id, lbas, self._read_trims(ln, lbas))
            lm.recovered_closed(ln, cur, werr)
            last = (ln, sc)
        # Counters persist: all of them as the newest emeta has them, then what the OOB of
        # later lines shows (sectors by kind: exact). Event counts since that line closed
        # (GC runs, lines opened...) are not on media and start from there.
        for k, v in kept.items():
            if k in p.c:
                p.c[k] = v
        for ln, counts in scanned:
            if ln.seq > wa_seq:
                wa += (counts[Kind.USER], counts[Kind.GC], counts[Kind.PAD])
                p.c["meta"] += int(counts[Kind.META])
                p.c["trim_sectors"] += int(counts[Kind.TRIM])
        p.c["user"], p.c["gc"], p.c["pad"] = (int(x) for x in wa)
        l2p.recount()
        self._last = last

    # ------------------------------------------------------------ writing goes on
    def resume(self) -> None:
        """Make the newest line writable again if it was open at the stop: pad the plane
        pages a cut left empty in its last unit and reopen it, or write its emeta when its
        data part is full and every emeta page is empty. Pages seen programmed (readable or
        torn) are never programmed again."""
        if self._last is None:
            return
        ln, sc = self._last
        self._last = None
        if sc is None:                          # closed with its emeta: nothing to do
            return
        r = self.report
        if not sc.clean:
            log.warning("pblk: line %d has programmed pages after an empty one; closed as it is", ln.id)
            r["closed_without_emeta"] += 1
            return
        npl = self.lg.nplanes
        units = np.concatenate([ln.smeta_units, ln.data_units, ln.emeta_units])
        nsm, ndu = ln.smeta_units.size, ln.data_units.size
        touched, partial = divmod(sc.consumed, npl)
        if partial:
            touched += 1
        if touched > nsm + ndu:
            log.warning("pblk: line %d: its emeta write was cut short; closed without emeta "
                        "(recovery scans it)", ln.id)
            r["closed_without_emeta"] += 1
            return
        try:
            if partial:
                self._pad(ln, int(units[touched - 1]), np.arange(partial, npl))
            if touched < nsm:
                self._pad(ln, None, None, units=units[touched:nsm])
                touched = nsm
        except PblkReadOnly as e:
            self.p._enter_read_only(str(e), frozen=e.device)
            return
        self.lm.reopen(ln, touched - nsm if touched > nsm else 0)
        r["reopened_line"] = ln.id
        if ln.units_left() == 0:                # data part full, emeta pages all seen empty
            self.p.writer.close_line(ln)
            r["emeta_written"] += 1

    def _pad(self, ln: Line, unit: int | None, planes, units=None) -> None:
        """Program padding into pages recovery saw empty: the given planes of one unit
        (single-plane writes), or whole units. A failed program consumes the page all the
        same, and the block is retired when the line is freed."""
        lg = self.lg
        if units is None:
            paddrs = (unit * lg.unit_secs + planes[:, None] * lg.nsectors
                      + np.arange(lg.nsectors)[None, :]).reshape(-1)
            pmode = PMode.SNGL
        else:
            paddrs = lg.unit_paddrs(units)
            pmode = self.dev.pmode
        n = paddrs.size
        failed = program(self.dev, lg.ppas(ln.id, paddrs), pmode,
                         np.zeros(n * lg.meta.sector_nbytes, np.uint8), pack_oob(ln.seq, Kind.PAD, ADDR_EMPTY, n))
        self.p.c["pad"] += n
        self.report["padded_pages"] += n // lg.nsectors
        if failed is not None:
            self.p.c["write_failed"] += int(np.count_nonzero(failed))
            self.lm.write_failed(ln, lg.lun_of_unit(np.atleast_1d(unit if units is None else units)))
            log.warning("pblk: line %d: padding a unit the cut left half written failed", ln.id)
