"""The AppNVM FTL's on-media structures decoded read-only, for `ox inspect` (SPEC 6).

What the unit headers in the page OOB say of every block (stream, epoch, what its first
unit is); the checkpoints in the metadata blocks -- which blocks hold their parts,
complete or not, valid or not (header, geometry, CRC: checkpoint.parse decides) and what
they record (counters, clean flag); the trim journal (records, their seq range); and the
state the FTL would rebuild at its next start -- block states and valid sectors per block
-- from the FTL's own Recovery run over the media, which refuses every write.

Reads go through VOLT's read rules (an erased page is EMPTY, a torn or failed one ECC);
only page headers, the metadata stream and the checkpoints' payloads are read, plus what
Recovery itself reads.
"""
import numpy as np

from ...volt import MediaStatus, StoreError, Volt
from ..core import OxCore
from .blocks import Blocks, BState
from .checkpoint import CheckpointError, parse
from .layout import OOB_MAGIC, TRIM_RECORD, Seq, Stream, UnitKind, unit_header_dtype
from .mapping import CACHE_BASE, Addr, valid_counts
from .media import Media
from .recovery import PROBE_PAGES, Recovery

__all__ = ["inspect_appnvm"]

_STREAMS = {int(s): s.name.lower() for s in Stream}
_KINDS = {int(k): k.name.lower() for k in UnitKind}


class _Reader:
    """Unit headers and unit data of one block, through VOLT's read rules."""

    def __init__(self, volt: Volt, addr: Addr):
        self.volt = volt
        self.addr = addr
        self.hd = unit_header_dtype(addr.unit_secs)

    def headers(self, ch, lun, blk, pg):
        """Per plane: (status, header copy or None)."""
        out = []
        for pl in range(self.addr.nplanes):
            st, _data, oob = self.volt.read(ch, lun, blk, pl, pg)
            out.append((st, oob[:self.hd.itemsize].view(self.hd)[0].copy() if st is MediaStatus.OK else None))
        return out

    def unit(self, ch, lun, blk, pg, epoch: int | None = None):
        """The unit header when every plane reads back with the same header of ours (and
        of this epoch, when given); None otherwise."""
        hs = self.headers(ch, lun, blk, pg)
        first = hs[0][1]
        if first is None or int(first["magic"]) != OOB_MAGIC:
            return None
        if epoch is not None and int(first["epoch"]) != epoch:
            return None
        for _st, h in hs[1:]:
            if (h is None or int(h["magic"]) != OOB_MAGIC or h["seq"] != first["seq"]
                    or h["kind"] != first["kind"] or h["epoch"] != first["epoch"]):
                return None
        return first

    def data(self, ch, lun, blk, pg) -> np.ndarray | None:
        parts = []
        for pl in range(self.addr.nplanes):
            st, data, _oob = self.volt.read(ch, lun, blk, pl, pg)
            if st is not MediaStatus.OK:
                return None
            parts.append(np.array(data))
        return np.concatenate(parts)


def _first_header(rd: _Reader, ch, lun, blk, wp: int) -> tuple[str, object]:
    """What the block's first pages say, as recovery's probe reads them: ('ours', the
    newest header of this FTL), or ('foreign', None) for another header, ('blank', None)
    for pages without one, ('unreadable', None) when nothing could be read."""
    other = None
    for pg in range(min(PROBE_PAGES, wp)):
        best = None
        for _st, h in rd.headers(ch, lun, blk, pg):
            if h is None:
                continue
            if int(h["magic"]) != OOB_MAGIC:
                other = "foreign" if int(h["magic"]) else other or "blank"
            elif best is None or h["epoch"] > best["epoch"]:
                best = h
        if best is not None:
            return "ours", best
    return other or "unreadable", None


def _block_headers(rd: _Reader, store) -> list[dict]:
    """Stream, epoch and first unit kind per block, from the OOB unit headers."""
    addr = rd.addr
    nxt = np.asarray(store.next_page).reshape(addr.total_blocks, addr.nplanes).max(axis=1)
    out = []
    for b in range(addr.total_blocks):
        ch, lun, blk = addr.chlunblk(b)
        wp = int(nxt[b])
        if wp == 0:
            out.append({"header": None, "stream": None, "epoch": None, "first_unit": None})
            continue
        what, h = _first_header(rd, ch, lun, blk, wp)
        if h is None:
            out.append({"header": what, "stream": None, "epoch": None, "first_unit": None})
            continue
        out.append({"header": what, "stream": _STREAMS.get(int(h["stream"]), f"unknown ({int(h['stream'])})"),
                    "epoch": int(h["epoch"]), "first_unit": _KINDS.get(int(h["kind"]), str(int(h["kind"])))})
    return out


def _metadata(rd: _Reader, store, heads: list[dict], used_seq: int | None) -> tuple[list, dict, dict]:
    """(checkpoints, trim journal, metadata blocks) found in the metadata stream, oldest
    block first. used_seq: the checkpoint recovery starts from (its records and units
    with a larger seq are replayed)."""
    addr = rd.addr
    nxt = np.asarray(store.next_page).reshape(addr.total_blocks, addr.nplanes).max(axis=1)
    meta = [b for b, h in enumerate(heads) if h["stream"] == "meta"]
    meta.sort(key=lambda b: heads[b]["epoch"])
    parts: dict[int, dict[int, tuple[int, int]]] = {}
    counts: dict[int, int] = {}
    trims = []
    broken = 0
    for b in meta:
        ch, lun, blk = addr.chlunblk(b)
        for pg in range(int(nxt[b])):
            u = rd.unit(ch, lun, blk, pg, heads[b]["epoch"])
            if u is None:
                broken += 1
                continue
            if u["kind"] == UnitKind.CKPT:
                parts.setdefault(int(u["ckpt"]), {})[int(u["part"])] = (b, pg)
                counts[int(u["ckpt"])] = int(u["count"])
            elif u["kind"] == UnitKind.TRIM:
                trims.append((b, pg, int(u["seq"]), int(u["count"])))
    ckpts = []
    for cid in sorted(parts):
        got, n = parts[cid], counts[cid]
        blocks = sorted({got[p][0] for p in got})
        c = {"id": cid, "parts": len(got), "count": n, "blocks": [list(addr.chlunblk(b)) for b in blocks],
             "complete": sorted(got) == list(range(n)), "valid": False, "error": None,
             "used_by_recovery": False, "clean": None, "nlbas": None, "counters": None}
        if not c["complete"]:
            c["error"] = f"incomplete: {len(got)} of {n} parts"
        else:
            chunks = [rd.data(*addr.chlunblk(got[i][0]), got[i][1]) for i in range(n)]
            if any(x is None for x in chunks):
                c["error"] = "a part is unreadable"
            else:
                try:
                    ck = parse(np.concatenate(chunks), addr)
                except CheckpointError as e:
                    c["error"] = str(e)
                else:
                    c.update(valid=True, clean=ck.clean, nlbas=ck.nlbas, counters=ck.counters(),
                             used_by_recovery=cid == used_seq)
        ckpts.append(c)
    units = []
    for b, pg, seq, count in trims:
        d = rd.data(*addr.chlunblk(b), pg)
        u = {"block": list(addr.chlunblk(b)), "page": pg, "seq": seq, "records": count,
             "readable": d is not None, "seq_min": None, "seq_max": None, "sectors": 0,
             "after_checkpoint": 0}
        if d is not None:
            recs = d[:count * TRIM_RECORD.itemsize].view(TRIM_RECORD)
            if recs.size:
                u.update(seq_min=int(recs["seq"].min()), seq_max=int(recs["seq"].max()),
                         sectors=int(recs["nlb"].sum()),
                         after_checkpoint=int(np.count_nonzero(recs["seq"] > (used_seq or 0))))
        units.append(u)
    readable = [u for u in units if u["readable"]]
    journal = {"units": len(units), "records": sum(u["records"] for u in units),
               "sectors": sum(u["sectors"] for u in readable),
               "seq_min": min((u["seq_min"] for u in readable if u["seq_min"] is not None), default=None),
               "seq_max": max((u["seq_max"] for u in readable if u["seq_max"] is not None), default=None),
               "records_after_checkpoint": sum(u["after_checkpoint"] for u in units),
               "unreadable_units": len(units) - len(readable), "list": units}
    return ckpts, journal, {"meta_blocks": [list(addr.chlunblk(b)) for b in meta], "broken_units": broken}


def _rebuild(volt: Volt, addr: Addr, capacity_nlbas: int | None) -> dict:
    """The FTL's own recovery over the read-only media: the checkpoint it starts from,
    block states and valid sectors per block, as the device would have them at start."""
    counters = dict(read_retries=0, erases=0)
    media = Media(OxCore(volt), counters)
    blocks = Blocks(media, addr, counters)
    rec = Recovery(addr, media, blocks, unit_header_dtype(addr.unit_secs), counters, Seq())
    try:
        r = rec.run(capacity_nlbas)
    except StoreError as e:
        return {"error": str(e)}
    valid = valid_counts(r.l2p, addr)
    st = rec.stats
    return {"error": None, "checkpoint": r.ckpt_seq or None, "clean": bool(r.clean),
            "capacity_sectors": int(r.prov.nlbas),
            "mapped_sectors": int(np.count_nonzero(r.l2p < CACHE_BASE)),
            "units_replayed": st["units_replayed"], "trims_replayed": st["trims_replayed"],
            "dropped_entries": st["dropped_entries"], "torn_units": st["torn_units"],
            "no_data_blocks": st["no_data_blocks"], "pages_read": st["pages_read"],
            "ftl_state": [BState(int(s)).name.lower() for s in blocks.state],
            "valid_sectors": [int(v) for v in valid]}


def inspect_appnvm(volt: Volt, capacity_bytes: int = 0) -> dict:
    """Everything above for AppNVM media behind `volt` (over a read-only store).
    capacity_bytes: what the media label records (0: unknown).

    Returns {"ftl": rebuild or {"error": ...}, "checkpoints": [...], "trim_journal": {...},
    "metadata": {...}, "blocks": [per block, (ch, lun, blk) order: header, stream, epoch,
    first_unit, ftl_state, valid_sectors]}."""
    store = volt.store
    addr = Addr(volt.geo)
    rd = _Reader(volt, addr)
    heads = _block_headers(rd, store)
    cap = capacity_bytes // addr.sector_nbytes if capacity_bytes else None
    ftl = _rebuild(volt, addr, cap)
    ckpts, journal, meta = _metadata(rd, store, heads, ftl.get("checkpoint"))
    states = ftl.pop("ftl_state", None)
    valid = ftl.pop("valid_sectors", None)
    for b, h in enumerate(heads):
        h["ftl_state"] = states[b] if states is not None else None
        h["valid_sectors"] = valid[b] if valid is not None else None
    return {"ftl": ftl, "checkpoints": ckpts, "trim_journal": journal, "metadata": meta, "blocks": heads}
