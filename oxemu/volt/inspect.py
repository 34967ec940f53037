"""VOLT's own view of a disk file, for `ox inspect`: the header (geometry, format, how the
last writer stopped), the media label, and what every block is -- bad block table entry,
write pointer and erase count per plane, pages a failed program or a power cut left
unreadable. Read from a read-only Store (shared lock, nothing written); no device is
powered and nothing is read but the small state tables.
"""
import os

import numpy as np

from ..wire import BlockState, MediaMode, TargetKind
from .label import describe
from .store import HEADER_NBYTES, PageState, StopState, Store, parse_header

__all__ = ["BLOCK_STATES", "block_table", "header_info", "label_info"]

# A block's state, all planes together (the worst plane wins, in this order):
BLOCK_STATES = ("bad", "grown_bad", "reserved", "open", "full", "free")
#   bad        a plane is factory bad (bad block table 1)
#   grown_bad  a plane went bad in use (2)
#   reserved   a plane is reserved for the device or the host (4, 8)
#   open       partly programmed: some plane has pages left after programmed ones, or
#              the planes disagree (one erased, another written)
#   full       every page of every plane programmed
#   free       erased on every plane

_STOPS = {StopState.CLEAN: "clean", StopState.UNSAFE: "unsafe",
          StopState.RUNNING: "running (a writer holds it, or died without stopping)"}


def header_info(store: Store) -> dict:
    """Format, geometry, file size and space in use, and the header's stop state."""
    with open(store.path, "rb") as f:          # under the store's shared lock: stable
        st = os.fstat(f.fileno())
        h = parse_header(store.path, f.read(HEADER_NBYTES))
    g = store.geo
    try:
        stop = _STOPS[StopState(h.stop)]
    except ValueError:
        stop = f"unknown ({h.stop})"
    return {"format_version": int(h.version), "file_nbytes": int(st.st_size),
            "allocated_nbytes": int(st.st_blocks) * 512, "stop": stop,
            "geometry": {"nchannels": g.nchannels, "nluns": g.nluns, "nblocks": g.nblocks,
                         "npages": g.npages, "nplanes": g.nplanes, "nsectors": g.nsectors,
                         "sector_nbytes": g.sector_nbytes, "oob_nbytes": g.oob_nbytes,
                         "describe": g.describe()}}


def label_info(label, name: str) -> dict:
    """The media label as plain values (what `ox dev info` shows of it)."""
    try:
        mode = MediaMode(label.mode).name.lower().replace("_", "-")
    except ValueError:
        mode = f"unknown ({label.mode})"
    try:
        target = TargetKind(label.target).name.lower()
    except ValueError:
        target = f"unknown ({label.target})"
    ranged = label.mode == MediaMode.OPEN_CHANNEL and label.target in (TargetKind.PBLK, TargetKind.FTL)
    ftl = bytes(label.ftl_name).rstrip(b"\0").decode(errors="replace")
    return {"mode": mode, "target": target, "holds": describe(label, name),
            "luns": [int(label.lun_begin), int(label.lun_end)] if ranged else None,
            "ftl": {"name": ftl, "version": int(label.ftl_version)} if ftl else None,
            "uuid": bytes(label.uuid).hex() if any(label.uuid) else None,
            "capacity_bytes": int(label.capacity_bytes), "read_only": bool(label.read_only),
            "last_stop_clean": bool(label.last_stop_clean),
            **{k: int(getattr(label, k)) for k in (
                "created_s", "formatted_s", "labelled_s", "last_stop_s", "power_cycles",
                "unsafe_shutdowns", "data_units_read", "data_units_written", "host_read_cmds",
                "host_write_cmds", "media_errors")}}


def block_states(store: Store) -> np.ndarray:
    """Index into BLOCK_STATES per (ch, lun, blk)."""
    bbt = np.asarray(store.bbt)
    nxt = np.asarray(store.next_page).astype(np.int64)
    npages = store.geo.npages
    out = np.full(bbt.shape[:3], BLOCK_STATES.index("open"), dtype=np.int8)
    erased, full = (nxt == 0).all(axis=-1), (nxt >= npages).all(axis=-1)
    out[full] = BLOCK_STATES.index("full")
    out[erased] = BLOCK_STATES.index("free")
    reserved = ((bbt == BlockState.DEV) | (bbt == BlockState.HOST)).any(axis=-1)
    for name, mask in (("reserved", reserved), ("grown_bad", (bbt == BlockState.GRWN_BAD).any(axis=-1)),
                       ("bad", (bbt == BlockState.BAD).any(axis=-1))):
        out[mask] = BLOCK_STATES.index(name)
    return out


def block_table(store: Store) -> list[dict]:
    """One entry per block, in (ch, lun, blk) order: its state, and per plane the bad
    block table entry, the write pointer (next page to program) and the erase count;
    pages that read back uncorrectable until the next erase (failed programs, pages torn
    by a power cut)."""
    g = store.geo
    states = block_states(store)
    bbt = np.asarray(store.bbt).tolist()
    nxt = np.asarray(store.next_page).tolist()
    ec = np.asarray(store.erase_count).tolist()
    ps = np.asarray(store.page_state)
    failed = np.count_nonzero(ps == PageState.PROGRAM_FAILED, axis=(3, 4)).tolist()
    torn = np.count_nonzero(ps == PageState.TORN, axis=(3, 4)).tolist()
    out = []
    for ch in range(g.nchannels):
        for lun in range(g.nluns):
            for blk in range(g.nblocks):
                out.append({"ch": ch, "lun": lun, "blk": blk,
                            "state": BLOCK_STATES[states[ch, lun, blk]],
                            "bbt": bbt[ch][lun][blk], "wp": nxt[ch][lun][blk],
                            "erase_count": ec[ch][lun][blk],
                            "failed_pages": failed[ch][lun][blk], "torn_pages": torn[ch][lun][blk]})
    return out
