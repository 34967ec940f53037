"""Rebuilding the AppNVM FTL's state at start, after a clean or an unclean stop (SPEC 6, 8).

1. Probe every usable block on every plane: erased on all planes, holding this FTL's
   units (a header naming the block's stream and epoch), or anything else -- erased on
   some planes only (a power cut between the per-plane erases), a first unit torn by a
   cut, nothing readable: those hold no data and are erased before reuse. A readable
   header that is not ours means open-channel data: refuse.
2. Scan the metadata blocks; load the newest complete checkpoint whose CRC holds.
3. Scan the data blocks that changed since that checkpoint, or that were open then,
   collecting (seq, LBA, location) from the unit headers in the OOB. A unit is data only
   if every plane reads back with the same header; a unit whose planes disagree or read
   ECC (torn by a cut, or a failed program) is not, and its block is not reopened.
4. Start from the checkpoint's L2P; entries pointing into blocks that were erased or
   rewritten since are dropped (their live data moved, and every move is a unit with a
   later seq), then units and trim records newer than the checkpoint are applied in seq
   order. P2L and valid counts follow from the L2P.
5. Erased blocks are free, blocks with nothing valid are free-to-erase, and a partly
   written block is reopened only when every unit in it is whole and the next page is
   erased on every plane (so nothing is ever programmed over a consumed page); a fresh
   checkpoint is wanted unless the stop was clean and nothing happened after the last one.
"""
import enum
import logging
from dataclasses import dataclass

import numpy as np

from ...volt import MediaStatus, StoreError
from . import provisioning
from .blocks import Blocks, BState
from .checkpoint import CheckpointError, parse
from .layout import OOB_MAGIC, TRIM_RECORD, Seq, Stream, UnitKind
from .mapping import CACHE_BASE, UNMAPPED, Addr, valid_counts
from .media import Media

log = logging.getLogger(__name__)


PROBE_PAGES = 4          # pages read to find a block's cycle when the first ones failed


class Found(enum.IntEnum):
    """What the probe of a block found."""
    ERASED = 0      # page 0 erased on every plane
    OURS = 1        # a unit header of this FTL names the block's cycle
    NO_DATA = 2     # partly erased, a torn first unit, or nothing readable: erase before use
    BLANK = 3       # readable pages without any header: ours only if ours exist elsewhere


@dataclass
class Recovered:
    """What recovery hands the FTL: the provisioning of the capacity found, the L2P (media
    locations only), the checkpoint it started from and whether the stop was clean."""
    prov: provisioning.Provision
    l2p: np.ndarray
    ckpt_seq: int
    clean: bool


class _Scan:
    __slots__ = ("units", "wp", "broken")

    def __init__(self):
        self.units = []          # (pg, header copy)
        self.wp = 0
        self.broken = False


class Recovery:
    """Collaborators: media (reads), blocks (their states are set here, through Blocks'
    own operations), the FTL's counters (restored from the checkpoint) and the sequence
    counter (set past everything found on media)."""

    def __init__(self, addr: Addr, media: Media, blocks: Blocks, hdr_dtype: np.dtype, counters: dict, seq: Seq):
        self.addr = addr
        self.media = media
        self.blocks = blocks
        self.hd = hdr_dtype
        self.counters = counters
        self.seq = seq
        self.max_seq = 0
        self.stats = dict(pages_read=0, blocks_scanned=0, units_replayed=0, trims_replayed=0,
                          dropped_entries=0, checkpoint_seq=0, clean=False, no_data_blocks=0,
                          torn_units=0)

    # ------------------------------------------------------------ media access
    def _header(self, ch, lun, blk, pl, pg):
        """(status, header copy or None) of one plane page."""
        st, _data, oob = self.media.read_raw(ch, lun, blk, pl, pg)
        self.stats["pages_read"] += 1
        if st is not MediaStatus.OK:
            return st, None
        h = oob[:self.hd.itemsize].view(self.hd)[0].copy()
        return st, h

    def _scan(self, b: int, start: int, epoch: int) -> _Scan:
        """Units of block b from page `start` up to the first page erased on every plane.

        A page where only some planes are erased, or a plane is unreadable or holds
        another cycle's header, is not a unit: the scan marks the block broken and goes
        on (a failed program may be followed by more units of the same batch)."""
        addr = self.addr
        ch, lun, blk = addr.chlunblk(b)
        out = _Scan()
        out.wp = addr.npages
        self.stats["blocks_scanned"] += 1
        for pg in range(start, addr.npages):
            st, first = self._header(ch, lun, blk, 0, pg)
            if st is MediaStatus.EMPTY:
                if all(self._header(ch, lun, blk, pl, pg)[0] is MediaStatus.EMPTY
                       for pl in range(1, addr.nplanes)):
                    out.wp = pg
                    return out
                out.broken = True                # plane 0 behind another plane
                self.stats["torn_units"] += 1
                continue
            ok = first is not None and first["magic"] == OOB_MAGIC and int(first["epoch"]) == epoch
            for pl in range(1, addr.nplanes):
                if not ok:
                    break
                _st, h = self._header(ch, lun, blk, pl, pg)
                ok = (h is not None and h["magic"] == OOB_MAGIC and h["seq"] == first["seq"]
                      and h["kind"] == first["kind"] and int(h["epoch"]) == epoch)
            if not ok:
                out.broken = True
                self.stats["torn_units"] += 1
                continue
            out.units.append((pg, first))
            self.max_seq = max(self.max_seq, int(first["seq"]))
        return out

    def _probe(self, b: int):
        """(Found, header naming the block's cycle or None), from every plane.

        Page 0 erased on every plane: erased. Erased on some planes only: a cut between
        the per-plane erases (or inside the first unit) -- no data. Otherwise the newest
        readable header of ours on page 0 names the cycle; if page 0 is unreadable on
        every plane (a failed or torn program), the next pages are looked at."""
        addr = self.addr
        ch, lun, blk = addr.chlunblk(b)
        best = None
        blank = False
        for pg in range(min(PROBE_PAGES, addr.npages)):
            reads = [self._header(ch, lun, blk, pl, pg) for pl in range(addr.nplanes)]
            empty = [st is MediaStatus.EMPTY for st, _h in reads]
            if all(empty):
                if pg == 0:
                    return Found.ERASED, None
                break
            if pg == 0 and any(empty):
                return Found.NO_DATA, None
            for _st, h in reads:
                if h is None:                      # unreadable: no vote
                    continue
                if h["magic"] != OOB_MAGIC:
                    if h["magic"] != 0:
                        _foreign(ch, lun, blk)
                    blank = True
                elif best is None or h["epoch"] > best["epoch"]:
                    best = h
            if best is not None:
                return Found.OURS, best
            if blank:
                return Found.BLANK, None
        return Found.NO_DATA, None

    def _unit_data(self, b: int, pg: int) -> np.ndarray | None:
        addr = self.addr
        ch, lun, blk = addr.chlunblk(b)
        parts = []
        for pl in range(addr.nplanes):
            st, data, _oob = self.media.read_raw(ch, lun, blk, pl, pg)
            if st is not MediaStatus.OK:
                return None
            parts.append(data.copy())
        return np.concatenate(parts)

    # ------------------------------------------------------------ the procedure
    def run(self, capacity_nlbas: int | None) -> Recovered:
        """Rebuild the block states and the map from media."""
        addr = self.addr
        blocks = self.blocks
        nb = addr.total_blocks

        # 1. every plane of every usable block
        p0 = np.zeros(nb, dtype=self.hd)
        found = np.full(nb, -1, dtype=np.int8)
        for b in np.flatnonzero(blocks.state != BState.BAD).tolist():
            kind, h = self._probe(b)
            found[b] = kind
            if kind == Found.OURS:
                p0[b] = h
                self.max_seq = max(self.max_seq, int(h["seq"]))
        ours = found == Found.OURS
        blank = np.flatnonzero(found == Found.BLANK)
        if blank.size and not ours.any():
            _foreign(*addr.chlunblk(int(blank[0])))    # data, and nothing this FTL ever wrote
        self.stats["no_data_blocks"] = int(np.count_nonzero(found == Found.NO_DATA))

        # 2. metadata stream and the newest complete checkpoint
        meta = [b for b in np.flatnonzero(ours).tolist() if p0[b]["stream"] == Stream.META]
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
        prov = provisioning.plan(addr, nlbas)
        nlbas = prov.nlbas
        S = ck.seq if ck is not None else 0
        self.stats["checkpoint_seq"] = S
        self.max_seq = max(self.max_seq, S)

        # 3. data blocks
        table = ck.table if ck is not None else None
        changed = np.ones(nb, dtype=bool)
        wp = np.zeros(nb, dtype=np.int64)
        reopenable = np.zeros(nb, dtype=bool)
        seqs, lbas, locs = [], [], []
        for b in np.flatnonzero(ours).tolist():
            h = p0[b]
            if h["stream"] == Stream.META:
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
        valid = valid_counts(l2p, addr)

        # 5. block states
        for b in range(nb):
            if blocks.state[b] == BState.BAD:
                continue
            if found[b] == Found.ERASED:
                blocks.add_free(b, erased=True)
                continue
            if found[b] != Found.OURS:
                blocks.add_free(b, erased=False)
                continue
            h = p0[b]
            stream, epoch = int(h["stream"]), int(h["epoch"])
            if stream == Stream.META:
                blocks.restore(b, BState.META, stream, meta_scans[b].wp, epoch)
            elif reopenable[b] and blocks.open_user[addr.glun(b)] < 0:
                blocks.reopen(b, Stream.USER, int(wp[b]), epoch)
            elif valid[b] == 0:
                blocks.add_free(b, erased=False)
            else:
                blocks.restore(b, BState.CLOSED, stream, int(wp[b]), epoch)
        blocks.restore_streams(meta, int(ck.header.rr) if ck is not None else 0)
        if meta:
            last = meta[-1]
            sc = meta_scans[last]
            if not sc.broken and sc.wp < addr.npages:
                blocks.reopen(last, Stream.META, sc.wp, int(p0[last]["epoch"]))
        self.seq.next = self.max_seq + 1
        if ck is not None:
            self.counters.update(ck.counters())
        clean = (ck is not None and ck.clean and not seqs and not trims and not stale.size
                 and not any(s.broken for s in meta_scans.values()))
        self.stats["clean"] = clean
        log.info("AppNVM recovery: checkpoint %d%s, %d units and %d trims replayed, %d entries dropped, "
                 "%d pages read", S, " (clean)" if clean else "", self.stats["units_replayed"],
                 len(trims), stale.size, self.stats["pages_read"])
        return Recovered(prov=prov, l2p=l2p, ckpt_seq=S, clean=clean)


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
