"""`ox inspect`'s text report: the label, a grid of block states per LUN with a legend,
and pblk's lines or AppNVM's checkpoints and trim journal -- one line at a time, so a
long report streams into a pager."""
import time
from collections import Counter
from collections.abc import Iterator

BLOCK_CHARS = {"free": ".", "open": "o", "full": "#", "bad": "B", "grown_bad": "G", "reserved": "R"}
BLOCK_LEGEND = ". free (erased)  o open (partly programmed)  # full  B bad (factory)  G grown bad  R reserved"
FTL_CHARS = {"free": ".", "dirty": ":", "victim": "v", "bad": "x", "meta": "m"}
STREAM_CHARS = {"user": "u", "gc": "g", "meta": "m"}
FTL_LEGEND = ("u user  g GC  m metadata (capitals: open, still being filled)  . free (erased)  "
              ": free, to erase (stale data)  v GC victim  x bad  ? unknown")
MAX_LISTED = 64                      # blocks listed by name before "... and N more"


def _when(t: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "never"


def _n(x) -> str:
    return "-" if x is None else f"{x:,}" if isinstance(x, int) else str(x)


def _grid(doc: dict, cell) -> Iterator[str]:
    """One row per LUN (ch/lun), one character per block."""
    g = doc["geometry"]
    nb = g["nblocks"]
    by_lun: dict = {}
    for b in doc["blocks"]:
        by_lun.setdefault((b["ch"], b["lun"]), []).append(cell(b))
    pad = " " * 9
    if nb > 10:
        yield pad + "".join(str(i // 10 % 10) if i % 10 == 0 else " " for i in range(nb))
    yield "  ch/lun " + "".join(str(i % 10) for i in range(nb))
    for (ch, lun), cells in by_lun.items():
        yield f"{ch:>5}/{lun:<3}" + "".join(cells)


def _listed(items: list[str]) -> str:
    more = len(items) - MAX_LISTED
    return ", ".join(items[:MAX_LISTED]) + (f", ... and {more} more" if more > 0 else "")


def _where(b: dict) -> str:
    return f"{b['ch']}/{b['lun']}/{b['blk']}"


def _label(doc: dict) -> Iterator[str]:
    lab, g = doc["label"], doc["geometry"]
    yield f"{doc['disk']}"
    yield f"  {lab['holds']}"
    yield (f"  format v{doc['format_version']}, {g['describe']}; file {doc['file_nbytes']:,} bytes, "
           f"{doc['allocated_nbytes']:,} allocated; header: {doc['stop']}")
    parts = [f"mode {lab['mode']}", f"target {lab['target']}"]
    if lab["luns"] is not None:
        parts.append(f"LUNs {lab['luns'][0]}-{lab['luns'][1]}")
    if lab["target"] == "pblk":
        parts.append(f"uuid {lab['uuid'] or 'not yet created'}")
    if lab["capacity_bytes"]:
        parts.append(f"capacity {lab['capacity_bytes']:,} bytes")
    parts.append("read-only: spare blocks used up" if lab["read_only"] else "writable")
    yield "  label: " + ", ".join(parts)
    yield (f"  last stop {'clean' if lab['last_stop_clean'] else 'unclean (power cut or crash)'}; "
           f"last clean stop {_when(lab['last_stop_s'])}; power cycles {lab['power_cycles']:,}, "
           f"unsafe shutdowns {lab['unsafe_shutdowns']:,}")
    yield (f"  data units written {lab['data_units_written']:,}, read {lab['data_units_read']:,}; "
           f"host write commands {lab['host_write_cmds']:,}, read {lab['host_read_cmds']:,}; "
           f"media errors {lab['media_errors']:,}")
    yield (f"  created {_when(lab['created_s'])}, formatted {_when(lab['formatted_s'])}, "
           f"labelled {_when(lab['labelled_s'])}")


def _blocks(doc: dict) -> Iterator[str]:
    s = doc["summary"]
    st, ec = s["states"], s["erase_count"]
    yield ""
    yield (f"blocks: {s['blocks']}: {st['free']} free, {st['open']} open, {st['full']} full, "
           f"{st['bad']} bad, {st['grown_bad']} grown bad" + (f", {st['reserved']} reserved" if st["reserved"] else "")
           + f"; erase counts {ec['min']}-{ec['max']} (mean {ec['mean']})")
    yield "  " + BLOCK_LEGEND
    yield from _grid(doc, lambda b: BLOCK_CHARS.get(b["state"], "?"))
    opened = [f"{_where(b)} wp {'/'.join(map(str, b['wp']))}" for b in doc["blocks"] if b["state"] == "open"]
    if opened:
        yield f"  open blocks (ch/lun/blk, next page per plane): {_listed(opened)}"
    spoiled = [f"{_where(b)} ({b['torn_pages']} torn, {b['failed_pages']} failed)"
               for b in doc["blocks"] if b["torn_pages"] or b["failed_pages"]]
    if spoiled:
        yield f"  unreadable pages until erased: {_listed(spoiled)}"


def _meta_word(m: dict | None) -> str:
    if m is None:
        return "-"
    if m["valid"]:
        return "ok"
    if not m["present"]:
        return "empty"
    return "INVALID"


def _pblk(doc: dict) -> Iterator[str]:
    p = doc["pblk"]
    yield ""
    if p.get("error"):
        yield f"pblk: lines not readable: {p['error']}"
        return
    r = p["recovery"]
    yield (f"pblk target: LUNs {p['luns'][0]}-{p['luns'][1]}, {p['nlines']} lines of {p['sec_per_line']:,} "
           f"sectors (smeta {p['smeta_secs']}, emeta {p['emeta_secs']} sectors), capacity "
           f"{p['capacity_sectors']:,} sectors, {p['mapped_sectors']:,} mapped")
    yield (f"  a mount would find {r['lines_in_use']} lines in use ({r['lines_from_emeta']} from emeta, "
           f"{r['lines_scanned']} scanned), {r['lines_free']} free, {r['lines_bad']} bad; corrupt smeta "
           f"{r['corrupt_smeta']}, emeta {r['corrupt_emeta']}, foreign lines {r['foreign_lines']}, "
           f"unreadable sectors {r['unreadable_sectors']}")
    yield "  line  state    seq      blocks  valid/data      smeta    emeta    prev  next  wa user/gc/pad"
    notes = []
    for ln in p["lines"]:
        sm, em = ln["smeta"], ln["emeta"]
        wa = "/".join(f"{v:,}" for v in em["wa"].values()) if em and em["wa"] else "-"
        prev = sm["prev_id"] if sm and sm["valid"] else None
        nxt = em["next_id"] if em and em["valid"] else None
        yield (f"  {ln['id']:>4}  {ln['state']:<7} {_n(ln['seq']):>5}  {ln['blocks']:>6}  "
               f"{ln['valid_sectors']:>6,}/{ln['data_sectors']:<7,} {_meta_word(sm):<8} {_meta_word(em):<8} "
               f"{_n(prev):>4}  {_n(nxt):>4}  {wa}")
        for what, m in (("smeta", sm), ("emeta", em)):
            if m and m["error"]:
                notes.append(f"line {ln['id']}: {what}: {m['error']}")
        if sm and sm["valid"] and sm["this_target"] is False:
            notes.append(f"line {ln['id']}: smeta names another pblk instance (uuid {sm['uuid']})")
        if ln["bad_luns"]:
            notes.append(f"line {ln['id']}: bad blocks on LUN(s) {', '.join(map(str, ln['bad_luns']))}")
    for n in notes:
        yield "  " + n


def _appnvm(doc: dict) -> Iterator[str]:
    a = doc["appnvm"]
    f = a["ftl"]
    yield ""
    if f.get("error"):
        yield f"AppNVM FTL: its map cannot be rebuilt: {f['error']}"
    else:
        start = f"checkpoint {f['checkpoint']}" if f["checkpoint"] is not None else "no checkpoint"
        yield (f"AppNVM FTL: capacity {f['capacity_sectors']:,} sectors, {f['mapped_sectors']:,} mapped; "
               f"a start would load {start}" + (" (a clean stop: nothing to replay)" if f["clean"] else
               f", replay {f['units_replayed']:,} units and {f['trims_replayed']:,} trim records, "
               f"drop {f['dropped_entries']:,} stale entries")
               + f"; {f['torn_units']} torn units, {f['no_data_blocks']} blocks to erase")
    meta = ", ".join("/".join(map(str, b)) for b in a["metadata"]["meta_blocks"]) or "none"
    yield f"  metadata blocks (oldest first): {meta}" + (
        f"; {a['metadata']['broken_units']} broken units" if a["metadata"]["broken_units"] else "")
    if a["checkpoints"]:
        yield ("  checkpoint  parts    state                       clean  nlbas      host_written  user       "
               "gc         erases")
        used = f["checkpoint"] if not f.get("error") else None
        for c in a["checkpoints"]:
            older = used is not None and c["id"] < used
            if c["valid"]:
                state = "valid, in use" if c["used_by_recovery"] else "valid, superseded"
            elif not c["complete"] and older:
                state = "superseded, parts released"     # its first blocks went with it
            elif not c["complete"]:
                state = "INCOMPLETE"
            else:
                state = "INVALID"
            k = c["counters"] or {}
            yield (f"  {c['id']:>10}  {str(c['parts']) + '/' + str(c['count']):<7}  {state:<26}  "
                   f"{_n(None if c['clean'] is None else ('yes' if c['clean'] else 'no')):<5}  "
                   f"{_n(c['nlbas']):<9}  {_n(k.get('host_sectors_written')):<12}  "
                   f"{_n(k.get('user_sectors')):<9}  {_n(k.get('gc_sectors')):<9}  {_n(k.get('erases'))}")
            if c["error"] and not older:
                yield f"  {'':>10}  {c['error']}"
    else:
        yield "  no checkpoint on media"
    j = a["trim_journal"]
    if j["units"]:
        yield (f"  trim journal: {j['units']} units, {j['records']:,} records"
               + (f" (seq {j['seq_min']:,}-{j['seq_max']:,})" if j["seq_min"] is not None else "")
               + f", {j['sectors']:,} sectors; {j['records_after_checkpoint']:,} records newer than the checkpoint"
               + (f"; {j['unreadable_units']} units unreadable" if j["unreadable_units"] else ""))
    else:
        yield "  trim journal: empty"
    streams = Counter(b["stream"] for b in doc["blocks"] if b.get("stream"))
    states = Counter(b["ftl_state"] for b in doc["blocks"] if b.get("ftl_state"))
    yield ("  blocks by stream (OOB headers): " + (", ".join(f"{k} {v}" for k, v in sorted(streams.items())) or "none")
           + "; FTL states: " + (", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "unknown"))
    yield "  " + FTL_LEGEND
    yield from _grid(doc, _ftl_cell)


def _ftl_cell(b: dict) -> str:
    st = b.get("ftl_state")
    if st in FTL_CHARS:
        return FTL_CHARS[st]
    c = STREAM_CHARS.get(b.get("stream"), "?")
    return c.upper() if st == "open" else c


def render_text(doc: dict) -> Iterator[str]:
    """The report, line by line (no newlines)."""
    yield from _label(doc)
    yield from _blocks(doc)
    if doc["pblk"] is not None:
        yield from _pblk(doc)
    if doc["appnvm"] is not None:
        yield from _appnvm(doc)
