"""On-media formats of the AppNVM FTL: the unit header each page's OOB carries, the
checkpoint header and the trim journal record (SPEC 6). The device's own formats: in
AppNVM mode the whole 1 KiB page OOB belongs to the device and the host never sees it.

A *unit* is one page on every plane of a LUN (nplanes x nsectors sectors, 32 KiB on the
default geometry), programmed as one dual-plane write. Every plane page of a unit carries
the same header (only `plane` differs), so a unit torn by a power cut or a program
failure shows as planes that disagree or are empty.
"""
import ctypes
import enum

import numpy as np

OOB_MAGIC = int.from_bytes(b"OXAP", "little")
FORMAT_VERSION = 1
LBA_NONE = 0xFFFF_FFFF_FFFF_FFFF      # a unit slot that holds no user sector (padding)
MAX_UNIT_SECTORS = 64


class Stream(enum.IntEnum):
    """Which writer filled a block: user data, GC relocation, or metadata."""
    USER = 0
    GC = 1
    META = 2


class UnitKind(enum.IntEnum):
    DATA = 1        # user or GC sectors; `lba` names each
    CKPT = 2        # one part of a map checkpoint: ckpt = its id, part / count
    TRIM = 3        # trim journal: `count` TrimRecord entries in the unit's data


def unit_header_dtype(unit_secs: int) -> np.dtype:
    """The header at the start of each plane page's OOB (this project's own layout).

    epoch: the seq of the first unit programmed in the block since its last erase; a
    page whose epoch differs from page 0's is stale content from an earlier cycle.
    seq: global, strictly increasing per unit programmed (and per trim record).
    """
    if not 1 <= unit_secs <= MAX_UNIT_SECTORS:
        raise ValueError(f"a write unit of {unit_secs} sectors is not supported")
    return np.dtype([
        ("magic", "<u4"), ("version", "u1"), ("kind", "u1"), ("stream", "u1"), ("plane", "u1"),
        ("epoch", "<u8"), ("seq", "<u8"), ("ckpt", "<u8"), ("part", "<u4"), ("count", "<u4"),
        ("lba", "<u8", (unit_secs,)),
    ])


# Checkpoint block table entry: enough per block to tell at start which blocks changed.
BLOCK_ENTRY = np.dtype([("state", "u1"), ("stream", "u1"), ("wp", "<u2"), ("epoch", "<u8")])
assert BLOCK_ENTRY.itemsize == 12

# Trim journal record: LBAs [slba, slba + nlb) deallocated at `seq`.
TRIM_RECORD = np.dtype([("seq", "<u8"), ("slba", "<u8"), ("nlb", "<u8")])
assert TRIM_RECORD.itemsize == 24

CKPT_MAGIC = int.from_bytes(b"OXCKPT\x00\x01", "little")   # a u64: c_char arrays stop at NUL
CKPT_HEADER_NBYTES = 4096


class CkptHeader(ctypes.LittleEndianStructure):
    """First 4 KiB of a checkpoint payload; the L2P and block table follow.

    seq: the checkpoint's id and snapshot point: every event with a smaller seq is in the
    map; recovery replays units and trim records with a larger one.
    """
    _pack_ = 1
    _fields_ = [
        ("magic", ctypes.c_uint64), ("version", ctypes.c_uint32), ("clean", ctypes.c_uint32),
        ("nchannels", ctypes.c_uint32), ("nluns", ctypes.c_uint32), ("nblocks", ctypes.c_uint32),
        ("npages", ctypes.c_uint32), ("nplanes", ctypes.c_uint32), ("nsectors", ctypes.c_uint32),
        ("sector_nbytes", ctypes.c_uint32), ("rr", ctypes.c_uint32),
        ("nlbas", ctypes.c_uint64), ("seq", ctypes.c_uint64),
        ("l2p_off", ctypes.c_uint64), ("l2p_nbytes", ctypes.c_uint64),
        ("blk_off", ctypes.c_uint64), ("blk_nbytes", ctypes.c_uint64),
        ("host_sectors_written", ctypes.c_uint64), ("host_sectors_read", ctypes.c_uint64),
        ("user_sectors", ctypes.c_uint64), ("gc_sectors", ctypes.c_uint64),
        ("pad_sectors", ctypes.c_uint64), ("meta_sectors", ctypes.c_uint64),
        ("erases", ctypes.c_uint64), ("checkpoints", ctypes.c_uint64),
        ("gc_runs", ctypes.c_uint64), ("trimmed_sectors", ctypes.c_uint64),
        ("payload_crc", ctypes.c_uint32), ("header_crc", ctypes.c_uint32),
    ]


assert ctypes.sizeof(CkptHeader) <= CKPT_HEADER_NBYTES and CkptHeader.header_crc.offset == ctypes.sizeof(CkptHeader) - 4


class Seq:
    """The global sequence number every unit header and trim record carries: strictly
    increasing, so recovery can order what it finds on media. Recovery sets `next`."""

    __slots__ = ("next",)

    def __init__(self, first: int = 1):
        self.next = first

    def take(self) -> int:
        s = self.next
        self.next = s + 1
        return s
