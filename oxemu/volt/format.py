"""`format_media`: the one deliberate way to reuse a disk file (SPEC 8, 10).

Wipes data, OOB and page states (the file is recreated sparse under its lock) and keeps
what the media knows about itself: the bad block table, factory and grown, the erase
counts (+1 for every block-plane that held data), the lifetime counters and created_s.
Writes the label asked for, uuid zero (a pblk target records its own at first use).
A version-1 file is converted: its bad block table and erase counts carry over.
"""
import ctypes
import fcntl
import logging
import os

import numpy as np

from ..wire.ox import LABEL_MAGIC, LABEL_VERSION, Interface, MediaLabel, MediaMode, TargetKind
from .errors import StoreError
from .geometry import Geometry
from .label import copy_label, new_label, set_bytes
from .store import (HEADER_NBYTES, StopState, _header_crc, _now_s, header_geometry,
                    layout, new_header, parse_header, peek_version, seal)

log = logging.getLogger(__name__)


class _V1Header(ctypes.LittleEndianStructure):
    """The version-1 header, read only to convert such a file."""
    _pack_ = 1
    _fields_ = [
        ("magic", ctypes.c_char * 8), ("version", ctypes.c_uint32), ("header_nbytes", ctypes.c_uint32),
        ("nchannels", ctypes.c_uint32), ("nluns", ctypes.c_uint32), ("nblocks", ctypes.c_uint32),
        ("npages", ctypes.c_uint32), ("nplanes", ctypes.c_uint32), ("nsectors", ctypes.c_uint32),
        ("sector_nbytes", ctypes.c_uint32), ("oob_nbytes", ctypes.c_uint32),
        ("state_off", ctypes.c_uint64), ("data_off", ctypes.c_uint64), ("oob_off", ctypes.c_uint64),
        ("file_nbytes", ctypes.c_uint64), ("clean", ctypes.c_uint32), ("crc", ctypes.c_uint32),
    ]


def _tables(path, fd: int, size: int, geo: Geometry, state_off: int):
    """bbt, next_page and erase_count of an existing file, as flat arrays."""
    n = geo.block_planes
    if size < state_off + 7 * n:
        raise StoreError(f"{path}: disk file is truncated before its bad block table; refusing to format it")
    raw = os.pread(fd, 7 * n, state_off)
    bbt = np.frombuffer(raw, np.uint8, n, 0).copy()
    nxt = np.frombuffer(raw, "<u2", n, n).copy()
    erases = np.frombuffer(raw, "<u4", n, 3 * n).astype(np.uint32)
    return bbt, nxt, erases


def _read_existing(path, fd: int, size: int):
    """(geometry, old label or None, stopped-uncleanly, bbt, next_page, erase_count)."""
    raw = os.pread(fd, HEADER_NBYTES, 0)
    version = peek_version(path, raw)
    if version == 1:
        if len(raw) < ctypes.sizeof(_V1Header):
            raise StoreError(f"{path}: disk file header is truncated; refusing to format it")
        h = _V1Header.from_buffer_copy(raw)
        if h.crc != _header_crc(h):
            raise StoreError(f"{path}: disk file header is corrupt (CRC mismatch); refusing to format it")
        geo = header_geometry(path, h)
        return (geo, None, False) + _tables(path, fd, size, geo, h.state_off)
    h = parse_header(path, raw)
    geo = header_geometry(path, h)
    return (geo, copy_label(h.label), h.stop == StopState.RUNNING) + _tables(path, fd, size, geo, h.state_off)


def _label(old: MediaLabel | None, unclean: bool, geo: Geometry, mode: MediaMode, target: TargetKind,
           luns, capacity_bytes: int, interface: Interface = Interface.OCSSD_1_2) -> MediaLabel:
    if target != TargetKind.NONE and mode != MediaMode.OPEN_CHANNEL:
        raise ValueError("a host target is recorded on open-channel media only")
    if luns is not None and target == TargetKind.NONE:
        raise ValueError("a LUN range is recorded for a host target only")
    if capacity_bytes < 0 or capacity_bytes % geo.sector_nbytes or capacity_bytes > geo.data_nbytes:
        raise ValueError(f"capacity {capacity_bytes} is not a multiple of {geo.sector_nbytes} "
                         f"within the media's {geo.data_nbytes} bytes")
    if capacity_bytes and mode == MediaMode.BLANK:
        raise ValueError("blank media records no capacity")
    now = _now_s()
    lab = new_label(now) if old is None else old
    lab.magic, lab.version = LABEL_MAGIC, LABEL_VERSION
    if unclean:                        # the last writer died; nobody will count it after this
        lab.unsafe_shutdowns += 1
        lab.last_stop_clean = 0
    lab.mode, lab.target = mode, target
    lab.interface = interface
    lab.lun_begin = lab.lun_end = 0
    if target != TargetKind.NONE:
        b, e = (0, geo.total_luns - 1) if luns is None else (int(luns[0]), int(luns[1]))
        if not 0 <= b <= e < geo.total_luns:
            raise ValueError(f"LUN range {b}-{e} is outside 0-{geo.total_luns - 1}")
        lab.lun_begin, lab.lun_end = b, e
    set_bytes(lab, "uuid", b"")
    set_bytes(lab, "ftl_name", b"")            # a plug-in FTL records itself when it opens the media
    lab.ftl_version = 0
    lab.capacity_bytes = capacity_bytes
    lab.read_only = 0                  # the deliberate reset: the next FTL decides anew
    lab.formatted_s = now
    lab.labelled_s = now if mode != MediaMode.BLANK else 0
    return lab


def format_media(path: str, *, geometry: Geometry | None = None, mode: MediaMode = MediaMode.BLANK,
                 target: TargetKind = TargetKind.NONE, luns: tuple[int, int] | None = None,
                 capacity_bytes: int = 0, interface: Interface = Interface.OCSSD_1_2) -> MediaLabel:
    """Wipe a disk file's data and label it afresh; create it when there is none.

    geometry: of a new file (default Geometry()); for an existing file None or its own.
    luns: (first, last) global LUN of a pblk target (default all). Returns the label
    written. StoreError: the file is in use, not an OX disk file, corrupt, or of another
    geometry. ValueError: a label that cannot be (a target on AppNVM media, a LUN range
    outside the geometry, a capacity that is not whole sectors).
    """
    mode, target = MediaMode(mode), TargetKind(target)
    made = False
    try:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            made = True
    except OSError as e:
        raise StoreError(f"{path}: cannot open disk file: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StoreError(f"{path}: disk file is in use by another process") from None
        size = os.fstat(fd).st_size
        if size == 0:
            geo = geometry or Geometry()
            old, unclean = None, False
            n = geo.block_planes
            bbt, nxt, erases = np.zeros(n, np.uint8), np.zeros(n, np.uint16), np.zeros(n, np.uint32)
        else:
            geo, old, unclean, bbt, nxt, erases = _read_existing(path, fd, size)
            if geometry is not None and geometry != geo:
                raise StoreError(f"{path}: disk file geometry {geo.describe()} is not the "
                                 f"{geometry.describe()} asked for; remove the file to make new media")
        label = _label(old, unclean, geo, mode, target, luns, capacity_bytes, Interface(interface))
        erases = erases + (nxt > 0).astype(np.uint32)       # wiping a block-plane erases it
        lay = layout(geo)
        h = new_header(geo, label)
        h.stop = StopState.CLEAN
        os.ftruncate(fd, 0)                                  # every data page becomes a hole
        os.ftruncate(fd, lay["file_nbytes"])
        os.pwrite(fd, seal(h), 0)
        if bbt.any():
            os.pwrite(fd, bbt.tobytes(), lay["state_off"])
        if erases.any():
            os.pwrite(fd, erases.astype("<u4").tobytes(), lay["state_off"] + 3 * geo.block_planes)
        os.fsync(fd)
        made = False
        log.info("VOLT: formatted %s (%s, %s)", path, mode.name, target.name)
        return copy_label(label)
    finally:
        if made:                       # refused before anything was written: leave no file
            os.unlink(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
