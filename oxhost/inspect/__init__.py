"""`ox inspect`: what a disk file holds, read-only -- for a researcher, or a post-mortem
after a failed torture round.

Two views of one moment, both under the disk file's shared lock: the device side
(oxemu.MediaImage: label, every block's state, write pointers, erase counts, bad block
table, and for AppNVM media the FTL's checkpoints, trim journal and rebuilt map), and for
pblk media the host side, pblk's lines read over the bus of a read-only Machine as pblk's
own recovery reads them (oxhost.pblk.inspect). Nothing is written or created.

The document, `inspect_disk`'s dict and `ox inspect --json`, is DOC_SHAPE below.
"""
import logging

from oxemu import Machine, MediaImage

log = logging.getLogger(__name__)

__all__ = ["DOC_KEYS", "DOC_SHAPE", "inspect_disk"]

DOC_SHAPE = """\
disk, format_version, file_nbytes, allocated_nbytes, stop, geometry {...}
label      mode, target, holds, luns, ftl {name, version} or null, uuid, capacity_bytes, read_only, last_stop_clean,
           created_s, formatted_s, labelled_s, last_stop_s, power_cycles,
           unsafe_shutdowns, data_units_read, data_units_written, host_read_cmds,
           host_write_cmds, media_errors
summary    blocks, states {free, open, full, bad, grown_bad, reserved: count},
           erase_count {min, max, mean}, unreadable_pages
blocks     one per block, (ch, lun, blk) order: ch, lun, blk, state, and per plane bbt,
           wp (next page to program), erase_count; failed_pages, torn_pages;
           pblk media: line (the pblk line it belongs to, or null);
           AppNVM media: header (ours, blank, foreign, unreadable; null: erased),
           stream (user, gc, meta), epoch, first_unit (data, ckpt, trim) -- the OOB
           unit headers -- and ftl_state (free, dirty, open, closed, meta, victim,
           bad), valid_sectors: the map the FTL would rebuild
pblk       null, or luns, uuid, capacity_sectors, mapped_sectors, nlines,
           sec_per_line, smeta_secs, emeta_secs, recovery {...}, error,
           lines [id, state (free/open/closed/bad), seq, blocks, bad_luns,
                  data_sectors, valid_sectors,
                  smeta {present, valid, error, seq, prev_id, uuid, this_target},
                  emeta {present, valid, error, seq, prev_id, next_id, nr_lbas,
                         nr_valid_lbas, wa {user, gc, pad}, counters {...}, bad_luns}]
appnvm     null, or ftl {error, checkpoint, clean, capacity_sectors, mapped_sectors,
           units_replayed, trims_replayed, dropped_entries, torn_units,
           no_data_blocks, pages_read},
           checkpoints [id, parts, count, blocks, complete, valid, error,
                        used_by_recovery, clean, nlbas, counters {...}],
           trim_journal {units, records, sectors, seq_min, seq_max,
                         records_after_checkpoint, unreadable_units,
                         list [block, page, seq, records, readable, seq_min,
                               seq_max, sectors, after_checkpoint]},
           metadata {meta_blocks, broken_units}
"""

DOC_KEYS = ("disk", "format_version", "file_nbytes", "allocated_nbytes", "stop", "geometry", "label",
            "summary", "blocks", "pblk", "appnvm")
_COUNTED = ("free", "open", "full", "bad", "grown_bad", "reserved")


def _summary(blocks: list[dict]) -> dict:
    states = dict.fromkeys(_COUNTED, 0)
    for b in blocks:
        states[b["state"]] = states.get(b["state"], 0) + 1
    ec = [max(b["erase_count"]) for b in blocks]
    return {"blocks": len(blocks), "states": states,
            "erase_count": {"min": min(ec), "max": max(ec), "mean": round(sum(ec) / len(ec), 3)},
            "unreadable_pages": sum(b["failed_pages"] + b["torn_pages"] for b in blocks)}


def _pblk(path: str, geo, label: dict) -> dict:
    """pblk's lines over the bus of a read-only Machine (sharing the image's lock)."""
    from ..driver import DriverError
    from ..lightnvm import Device, LightnvmError
    from ..pblk import PblkError
    from ..pblk.inspect import inspect_lines

    b, e = label["luns"]
    uuid = bytes.fromhex(label["uuid"]) if label["uuid"] else None
    try:
        with Machine(lnvm=1, volt=0, disk=path, geometry=geo, readonly=True, ram_mib=64) as m:
            dev = Device.open(m)
            try:
                out = inspect_lines(dev, b, e, uuid=uuid, capacity_sectors=label["capacity_bytes"] // geo.sector_nbytes)
            finally:
                dev.close()
    except (PblkError, LightnvmError, DriverError) as ex:
        log.debug("inspect: pblk view failed: %s", ex)
        return {"luns": [b, e], "error": str(ex), "lines": []}
    out["error"] = None
    return out


def inspect_disk(path: str) -> dict:
    """The whole document (module docstring) for the disk file at `path`.

    oxemu.StoreError (one line) when the file is missing, not an OX disk file, corrupt,
    or held by a process serving it."""
    with MediaImage(path) as img:              # the shared lock, for both views
        doc = img.inspect()
        doc["summary"] = _summary(doc["blocks"])
        doc["pblk"] = None
        lab = doc["label"]
        if lab["mode"] == "open-channel" and lab["target"] == "pblk":
            doc["pblk"] = _pblk(path, img.geometry, lab)
            b, e = lab["luns"]
            nluns = img.geometry.nluns
            for blk in doc["blocks"]:
                blk["line"] = blk["blk"] if b <= blk["ch"] * nluns + blk["lun"] <= e else None
    return {k: doc[k] for k in DOC_KEYS}
