"""Rebuilding the AppNVM FTL's state at start, after a clean or an unclean stop (SPEC 6).

1. Read page 0 of every usable block: erased, or a unit header naming the block's
   stream and epoch (a header that is not ours means open-channel data: refuse).
2. Scan the metadata blocks; load the newest complete checkpoint whose CRC holds.
3. Scan the data blocks that changed since that checkpoint, or that were open then,
   collecting (seq, LBA, location) from the unit headers in the OOB.
4. Start from the checkpoint's L2P; entries pointing into blocks that were erased or
   rewritten since are dropped (their live data moved, and every move is a unit with a
   later seq), then units and trim records newer than the checkpoint are applied in seq
   order. P2L and valid counts follow from the L2P.
5. Erased blocks are free, blocks with nothing valid are free-to-erase, consistent
   partially written blocks are reopened; a fresh checkpoint is written unless the stop
   was clean and nothing happened after the last one.
"""
import logging

import numpy as np

from ...volt import MediaStatus, StoreError
from . import provisioning
from .blocks import BState
from .checkpoint import CheckpointError, parse
from .layout import OOB_MAGIC, TRIM_RECORD, Stream, UnitKind
from .mapping import CACHE_BASE, UNMAPPED, Mapping

log = logging.getLogger(__name__)


PROBE_PAGES = 4          # pages read to find a block's cycle when the first ones failed


class _Scan:
    __slots__ = ("units", "wp", "broken")

    def __init__(self):
        self.units = []          # (pg, header copy)
        self.wp = 0
        self.broken = False


class Recovery:
    def __init__(self, ftl):
        self.ftl = ftl
        self.addr = ftl.addr
        self.hd = ftl.hdr_dtype
        self.max_seq = 0
        self.stats = dict(pages_read=0, blocks_scanned=0, units_replayed=0, trims_replayed=0,
                          dropped_entries=0, checkpoint_seq=0, clean=False)

    # ------------------------------------------------------------ media access
    def _header(self, ch, lun, blk, pl, pg):
        """(status, header copy or None) of one plane page."""
        st, _data, oob = self.ftl.read_raw(ch, lun, blk, pl, pg)
        self.stats["pages_read"] += 1
        if st is not MediaStatus.OK:
            return st, None
        h = oob[:self.hd.itemsize].view(self.hd)[0].copy()
        return st, h

    def _scan(self, b: int, start: int, epoch: int) -> _Scan:
        """Units of block b from page `start` up to the first empty page."""
        addr = self.addr
        ch, lun, blk = addr.chlunblk(b)
        out = _Scan()
        out.wp = addr.npages
        self.stats["blocks_scanned"] += 1
        for pg in range(start, addr.npages):
            first = None
            ok = True
            for pl in range(addr.nplanes):
                st, h = self._header(ch, lun, blk, pl, pg)
                if st is MediaStatus.EMPTY and pl == 0:
                    out.wp = pg
                    return out
                if h is None or h["magic"] != OOB_MAGIC or int(h["epoch"]) != epoch:
                    ok = False
                    break
                if first is None:
                    first = h
                elif h["seq"] != first["seq"] or h["kind"] != first["kind"]:
                    ok = False
                    break
            if not ok:
                out.broken = True
                continue
            out.units.append((pg, first))
            self.max_seq = max(self.max_seq, int(first["seq"]))
        return out

    def _first_header(self, b: int):
        """The header that names block b's current cycle (epoch, stream); None if erased.

        Page 0 normally; but a failed program leaves a page with no header or a stale one
        from an earlier cycle, and later units of the same batch may follow it, so page 1
        is looked at too (and further while nothing is found): the newest epoch wins."""
        ch, lun, blk = self.addr.chlunblk(b)
        best = None
        for pg in range(min(PROBE_PAGES, self.addr.npages)):
            st, h = self._header(ch, lun, blk, 0, pg)
            if st is MediaStatus.EMPTY:
                break
            if h is None:                          # unreadable: no vote
                h = np.zeros(1, dtype=self.hd)[0]
            if best is None or (h["magic"] == OOB_MAGIC and
                                (best["magic"] != OOB_MAGIC or h["epoch"] > best["epoch"])):
                best = h
            if pg >= 1 and best["magic"] == OOB_MAGIC:
                break
        return best

    def _unit_data(self, b: int, pg: int) -> np.ndarray | None:
        addr = self.addr
        ch, lun, blk = addr.chlunblk(b)
        parts = []
        for pl in range(addr.nplanes):
            st, data, _oob = self.ftl.read_raw(ch, lun, blk, pl, pg)
            if st is not MediaStatus.OK:
                return None
            parts.append(data.copy())
        return np.concatenate(parts)

    # ------------------------------------------------------------ the procedure
    def run(self, capacity_nlbas: int | None) -> bool:
        """Rebuild the FTL; True when a fresh checkpoint should be written."""
        ftl = self.ftl
        addr = self.addr
        blocks = ftl.blocks
        nb = addr.total_blocks

        # 1. page 0 of every usable block
        p0 = np.zeros(nb, dtype=self.hd)
        programmed = np.zeros(nb, dtype=bool)
        blank = []                                # programmed, but no header: a failed program?
        for b in np.flatnonzero(blocks.state != BState.BAD).tolist():
            h = self._first_header(b)
            if h is None:
                continue
            programmed[b] = True
            if h["magic"] == OOB_MAGIC:
                p0[b] = h
                self.max_seq = max(self.max_seq, int(h["seq"]))
            elif h["magic"] == 0:
                blank.append(b)
            else:
                _foreign(*addr.chlunblk(b))
        if blank and not (p0["magic"] == OOB_MAGIC).any():
            _foreign(*addr.chlunblk(blank[0]))    # data, and nothing this FTL ever wrote

        # 2. metadata stream and the newest complete checkpoint
        meta = [b for b in np.flatnonzero(programmed).tolist()
                if p0[b]["magic"] == OOB_MAGIC and p0[b]["stream"] == Stream.META]
        meta.sort(key=lambda b: int(p0[b]["epoch"]))
        meta_scans = {b: self._scan(b, 0, int(p0[b]["epoch"])) for b in meta}
        parts: dict[int, dict[int, tuple[int, int]]] = {}
        counts: dict[int, int] = {}
        trim_units = []
        for b in meta:
            for pg, h in meta_scans[b].units:
                if h["kind"] == UnitKind.CKPT:
                    cid = int(h["ckpt"])
                    parts.setdefault(cid, {})[int(h["part"])] = (b, pg)
                    counts[cid] = int(h["count"])
                elif h["kind"] == UnitKind.TRIM:
                    trim_units.append((b, pg, int(h["count"])))
        ck = None
        for cid in sorted(parts, reverse=True):
            got, n = parts[cid], counts[cid]
            if sorted(got) != list(range(n)):
                log.warning("AppNVM recovery: checkpoint %d is incomplete (%d of %d parts)", cid, len(got), n)
                continue
            chunks = [self._unit_data(*got[i]) for i in range(n)]
            if any(c is None for c in chunks):
                log.warning("AppNVM recovery: checkpoint %d is unreadable", cid)
                continue
            try:
                ck = parse(np.concatenate(chunks), addr)
                break
            except CheckpointError as e:
                log.warning("AppNVM recovery: checkpoint %d rejected: %s", cid, e)

        # capacity: a formatted device keeps its own
        if ck is not None:
            if capacity_nlbas is not None and capacity_nlbas != ck.nlbas:
                raise StoreError(f"the AppNVM device was formatted with a capacity of "
                                 f"{ck.nlbas * addr.sector_nbytes} bytes, not {capacity_nlbas * addr.sector_nbytes}")
            nlbas = ck.nlbas
        else:
            nlbas = capacity_nlbas
        ftl.setup(provisioning.plan(addr, nlbas))
        m: Mapping = ftl.map
        nlbas = m.nlbas
        S = ck.seq if ck is not None else 0
        self.stats["checkpoint_seq"] = S
        self.max_seq = max(self.max_seq, S)

        # 3. data blocks
        table = ck.table if ck is not None else None
        changed = np.ones(nb, dtype=bool)
        wp = np.zeros(nb, dtype=np.int64)
        reopenable = np.zeros(nb, dtype=bool)
        seqs, lbas, locs = [], [], []
        for b in np.flatnonzero(programmed).tolist():
            h = p0[b]
            if h["magic"] != OOB_MAGIC or h["stream"] == Stream.META:
                continue
            epoch = int(h["epoch"])
            start = 0
            if table is not None and int(table["epoch"][b]) == epoch and epoch:
                changed[b] = False
                st = table["state"][b]
                if st in (BState.CLOSED, BState.VICTIM):
                    wp[b] = int(table["wp"][b])
                    continue
                start = int(table["wp"][b])
            sc = self._scan(b, start, epoch)
            wp[b] = sc.wp
            reopenable[b] = not sc.broken and sc.wp < addr.npages
            for pg, u in sc.units:
                if u["kind"] != UnitKind.DATA or int(u["seq"]) <= S:
                    continue
                base = addr.unit_loc(b, pg)
                lb = u["lba"].astype(np.int64)            # LBA_NONE becomes -1
                keep = np.flatnonzero((lb >= 0) & (lb < nlbas))
                if keep.size:
                    seqs.append(np.full(keep.size, int(u["seq"]), dtype=np.uint64))
                    lbas.append(lb[keep])
                    locs.append(base + keep)
                self.stats["units_replayed"] += 1

        # trim records newer than the checkpoint
        trims = []
        for b, pg, count in trim_units:
            data = self._unit_data(b, pg)
            if data is None:
                continue
            recs = data[:count * TRIM_RECORD.itemsize].view(TRIM_RECORD)
            for r in recs[recs["seq"] > S]:
                trims.append((int(r["seq"]), int(r["slba"]), int(r["nlb"])))
                self.max_seq = max(self.max_seq, int(r["seq"]))
        trims.sort()
        self.stats["trims_replayed"] = len(trims)

        # 4. the map
        l2p = ck.l2p.copy() if ck is not None else np.full(nlbas, UNMAPPED, dtype=np.uint32)
        mapped = np.flatnonzero(l2p < CACHE_BASE)
        stale = mapped[changed[l2p[mapped] // addr.block_secs]]
        l2p[stale] = UNMAPPED
        self.stats["dropped_entries"] = int(stale.size)
        if seqs:
            seq_a = np.concatenate(seqs)
            order = np.argsort(seq_a, kind="stable")
            seq_a = seq_a[order]
            lba_a = np.concatenate(lbas)[order]
            loc_a = np.concatenate(locs)[order]
        else:
            seq_a = np.zeros(0, np.uint64)
            lba_a = loc_a = np.zeros(0, np.int64)
        pos = 0
        for tseq, slba, nlb in trims:
            cut = int(np.searchsorted(seq_a, tseq))
            _apply(l2p, lba_a[pos:cut], loc_a[pos:cut])
            pos = cut
            l2p[slba:min(nlbas, slba + nlb)] = UNMAPPED
        _apply(l2p, lba_a[pos:], loc_a[pos:])
        m.l2p[:] = l2p
        m.rebuild_reverse()

        # 5. block states
        for b in range(nb):
            if blocks.state[b] == BState.BAD:
                continue
            if not programmed[b]:
                blocks.add_free(b, erased=True)
                continue
            h = p0[b]
            if h["magic"] != OOB_MAGIC:
                blocks.add_free(b, erased=False)
                continue
            stream = int(h["stream"])
            blocks.stream[b] = stream
            blocks.epoch[b] = int(h["epoch"])
            if stream == Stream.META:
                sc = meta_scans[b]
                blocks.state[b] = BState.META
                blocks.wp[b] = sc.wp
                continue
            blocks.wp[b] = wp[b]
            glun = addr.glun(b)
            if reopenable[b] and ftl.open_user[glun] < 0:
                blocks.state[b] = BState.OPEN
                blocks.stream[b] = Stream.USER
                ftl.open_user[glun] = b
            elif m.valid[b] == 0:
                blocks.add_free(b, erased=False)
            else:
                blocks.state[b] = BState.CLOSED
        ftl.meta_blocks = list(meta)
        if meta:
            last = meta[-1]
            sc = meta_scans[last]
            if not sc.broken and sc.wp < addr.npages:
                ftl.open_meta = last
        ftl.seq = self.max_seq + 1
        ftl.ckpt_seq = S
        if ck is not None:
            for k, v in ck.counters().items():
                ftl.counters[k] = v
            ftl.rr = int(ck.header.rr) % addr.total_luns
        clean = (ck is not None and ck.clean and not seqs and not trims and not stale.size
                 and not any(s.broken for s in meta_scans.values()))
        self.stats["clean"] = clean
        log.info("AppNVM recovery: checkpoint %d%s, %d units and %d trims replayed, %d entries dropped, "
                 "%d pages read", S, " (clean)" if clean else "", self.stats["units_replayed"],
                 len(trims), stale.size, self.stats["pages_read"])
        return not clean


def _foreign(ch: int, lun: int, blk: int) -> None:
    raise StoreError(f"block ch {ch} lun {lun} blk {blk} holds data this AppNVM device did not write "
                     "(an open-channel/pblk disk?); refusing to use it in AppNVM mode")


def _apply(l2p: np.ndarray, lbas: np.ndarray, locs: np.ndarray) -> None:
    """l2p[lbas] = locs where the last occurrence of a repeated LBA wins."""
    if lbas.size == 0:
        return
    rl = lbas[::-1]
    u, idx = np.unique(rl, return_index=True)
    l2p[u] = locs[::-1][idx]
