"""pblk's lines as the media holds them, read the way recovery reads them (for `ox inspect`).

Per line: its state, sequence number, smeta and emeta -- present, valid (magic, version,
CRCs, line id: metadata.unpack_smeta / unpack_emeta decide) and what they record (previous
and next line, the write-amplification counters and the target's counters emeta carries,
bad blocks) -- and its valid sectors in the L2P that recovery rebuilds from the media.

Nothing is written: the rebuild is Recovery.load(), which only reads, over a stand-in for
the target that holds the mapping state and nothing that writes; everything else here is
reads. So it runs over a read-only Machine, and reports what the next mount would find
before that mount pads, closes or erases anything.
"""
import numpy as np

from . import media
from .l2p import L2P
from .lines import LineGeometry, LineManager, LineState
from .metadata import COUNTERS, ID_NONE, MetaError, unpack_emeta, unpack_smeta
from .recovery import Recovery
from .rl import RateLimiter

__all__ = ["inspect_lines"]


class _ReadOnlyTarget:
    """What Recovery.load() uses of a Pblk -- the device, line geometry and manager, the
    L2P, counters and rate limiter -- without a write buffer, writer or GC."""

    def __init__(self, dev, lg: LineGeometry):
        self.dev = dev
        self.lg = lg
        self.c = dict.fromkeys(COUNTERS, 0)
        self.l2p = L2P(lg.capacity_sectors, lg.nlines, lg.sec_per_line, lg.meta.nr_lba_slots)
        self.lm = LineManager(dev, lg, self.c)
        self.rl = RateLimiter(lg.unit_secs)


def _id(v: int) -> int | None:
    return None if v == ID_NONE else int(v)


def _read(dev, lg: LineGeometry, line_id: int, paddrs: np.ndarray, c: dict):
    """(data, status word): 'ok', 'empty' (never written), 'partial' (some sectors
    empty: a write cut short) or 'unreadable' (a torn or failed program)."""
    secb = lg.meta.sector_nbytes
    buf = np.empty(paddrs.size * secb, dtype=np.uint8)
    _, st = media.read(dev, lg.ppas(line_id, paddrs), buf, c)
    if st is None:
        return buf, "ok"
    empty = st == media.EMPTY
    if empty.all():
        return buf, "empty"
    if ((st != 0) & ~empty).any():
        return buf, "unreadable"
    return buf, "partial"


def _smeta(p: _ReadOnlyTarget, ln, uuid: bytes | None) -> dict:
    lg, sz = p.lg, p.lg.meta
    nsec = -(-sz.smeta_len // sz.sector_nbytes)
    buf, st = _read(p.dev, lg, ln.id, lg.unit_paddrs(ln.smeta_units)[:nsec], p.c)
    out = {"present": st != "empty", "valid": False, "error": None, "seq": None, "prev_id": None,
           "uuid": None, "this_target": None}
    if st != "ok":
        out["error"] = None if st == "empty" else f"{st} (status of its sectors)"
        return out
    try:
        sm = unpack_smeta(sz, buf, ln.id)
    except MetaError as e:
        out["error"] = str(e)
        return out
    out.update(valid=True, seq=sm.seq, prev_id=_id(sm.prev_id), uuid=sm.uuid.hex(),
               this_target=None if uuid is None else sm.uuid == uuid)
    return out


def _emeta(p: _ReadOnlyTarget, ln, seq: int | None) -> dict:
    lg, sz = p.lg, p.lg.meta
    buf, st = _read(p.dev, lg, ln.id, lg.unit_paddrs(ln.emeta_units), p.c)
    out = {"present": st != "empty", "valid": False, "error": None, "seq": None, "prev_id": None,
           "next_id": None, "nr_lbas": None, "nr_valid_lbas": None, "wa": None, "counters": None,
           "bad_luns": None}
    if st != "ok":
        out["error"] = None if st == "empty" else f"{st} (status of its sectors)"
        return out
    try:
        em = unpack_emeta(sz, buf, ln.id)
    except MetaError as e:
        out["error"] = str(e)
        return out
    out.update(seq=em.seq, prev_id=_id(em.prev_id), next_id=_id(em.next_id), nr_lbas=em.nr_lbas,
               nr_valid_lbas=em.nr_valid_lbas, wa=dict(zip(("user", "gc", "pad"), em.wa)),
               counters=em.counters, bad_luns=[_gid(lg, li) for li in np.flatnonzero(em.bad).tolist()])
    if seq is not None and em.seq != seq:
        out["error"] = f"emeta of sequence {em.seq} under smeta of {seq}"
    else:
        out["valid"] = True
    return out


def _gid(lg: LineGeometry, li: int) -> int:
    ch, lun = lg.luns[li]
    return ch * lg.geo.nluns + lun


def inspect_lines(dev, lun_begin: int, lun_end: int, *, uuid: bytes | None = None,
                  capacity_sectors: int = 0) -> dict:
    """The lines of the pblk target on LUNs lun_begin..lun_end of an open-channel Device
    (read-only is enough). uuid: the instance the media label names (None: the newest
    line's, as recovery decides); capacity_sectors: the exported size the label records
    (0: pblk's default over-provisioning).

    Returns {"luns", "uuid", "capacity_sectors", "nlines", "sec_per_line", "smeta_secs",
    "emeta_secs", "recovery": Recovery's report, "lines": [...]}, one line per block index:
    id, state (free, open, closed, bad), seq, blocks (good blocks it uses), bad_luns,
    data_sectors, valid_sectors, smeta {...}, emeta {...}."""
    lg = LineGeometry(dev.geo, lun_begin, lun_end, capacity_sectors=capacity_sectors)
    p = _ReadOnlyTarget(dev, lg)
    report = Recovery(p, uuid).load()
    lm = p.lm
    in_use = [ln for ln in lm.lines if ln.state == LineState.CLOSED]
    # the instance: the label's, else the newest line's (recovery's pick); none on fresh media
    mine = uuid if uuid is not None else (lm.uuid if in_use else None)
    newest = max(in_use, key=lambda ln: ln.seq).id if in_use else None
    lines = []
    for ln in lm.lines:
        bad = [_gid(lg, li) for li in np.flatnonzero(lm.bad_blk[ln.id]).tolist()]
        row = {"id": ln.id, "state": "bad", "seq": None, "blocks": 0, "bad_luns": bad, "data_sectors": 0,
               "valid_sectors": 0, "smeta": None, "emeta": None}
        lines.append(row)
        if ln.state == LineState.BAD or ln.data_units is None:
            continue
        sm = _smeta(p, ln, mine)
        used = ln.state == LineState.CLOSED
        em = _emeta(p, ln, ln.seq if used else None)
        state = "free"
        if used:
            state = "closed" if em["valid"] or ln.id != newest else "open"
        row.update(state=state, seq=ln.seq if used else None, blocks=ln.nblocks,
                   data_sectors=int(ln.data_units.size) * lg.unit_secs,
                   valid_sectors=int(p.l2p.vsc[ln.id]), smeta=sm, emeta=em)
    sz = lg.meta
    return {"luns": [lun_begin, lun_end], "uuid": None if mine is None else bytes(mine).hex(),
            "capacity_sectors": lg.capacity_sectors,
            "nlines": lg.nlines, "sec_per_line": lg.sec_per_line, "smeta_secs": sz.smeta_secs,
            "emeta_secs": sz.emeta_secs, "mapped_sectors": int(np.count_nonzero(p.l2p.map >= 0)),
            "recovery": dict(report), "lines": lines}
