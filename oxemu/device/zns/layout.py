"""Where a zone lives on the NAND, and the zone record the mode keeps in VOLT's NVRAM.

A zone is one block (the same block number) on each of `zone_luns` LUNs, one LUN on every
channel by default, so a zone's writes spread over the channels. Its write units -- one
page on every plane of one LUN, `unit` sectors -- are striped round-robin over its LUNs:
physical unit p is page p // zone_luns of LUN p % zone_luns. Logical unit i (LBAs
i * unit .. i * unit + unit - 1 of the zone) is the i-th physical unit not skipped: a unit
whose program failed or that a power cut tore is skipped, and the data goes to the next.
The zone size counts every physical unit; the zone capacity leaves the spare ones.

LUN groups: zone z is on group z % groups, block z // groups, so consecutive zones are on
different LUNs. Group g holds the global LUNs g, g + groups, g + 2 * groups, ...

The zone shape (ZONE_SHAPE, at the start of the NVRAM header) is recorded when the media
is first written, and media of another shape is refused: the same LBAs mean other pages.

The zone record (ZONE_RECORD, 64 bytes, one per zone in the NVRAM row of its first LUN's
block) holds what VOLT's write pointers cannot tell: a state that does not follow from
the write pointer (opened explicitly, closed empty, finished, read-only, offline), the
controller-finished attribute, a reset in progress, the physical units skipped, and how
many sectors of the next logical unit wait in the NVRAM write buffer of the same row.
"""
import numpy as np

from ...volt import Geometry
from ...volt.store import NVRAM_RECORD_NBYTES
from .params import ZnsParams

MAX_SKIPS = 12                  # skipped units a zone record holds; more and the zone goes read-only
ZONE_RECORD = np.dtype([
    ("state", "u1"),            # ZoneState that holds over power cycles, 0: follows from the write pointer
    ("attrs", "u1"),            # ZoneAttr (ZFC)
    ("op", "u1"),               # OP_RESET while a reset's erases are under way, else 0
    ("nskips", "u1"),
    ("buf_unit", "<u4"),        # logical unit the write buffer holds
    ("buf_count", "<u2"),       # its sectors there (0: the buffer is empty)
    ("rsvd", "<u2"),
    ("skips", "<u4", (MAX_SKIPS,)),   # physical units skipped, in the order they were
    ("rsvd2", "<u4"),
])
assert ZONE_RECORD.itemsize == NVRAM_RECORD_NBYTES
OP_RESET = 1
SHAPE_MAGIC = int.from_bytes(b"OXZN", "little")
ZONE_SHAPE = np.dtype([
    ("magic", "<u4"),           # SHAPE_MAGIC once recorded, 0 before
    ("version", "<u2"),         # 1
    ("rsvd", "<u2"),
    ("zone_luns", "<u4"),
    ("zone_sectors", "<u4"),    # the zone size, in LBAs
    ("zone_capacity", "<u4"),   # writable LBAs per zone
    ("rsvd2", "u1", (44,)),
])
assert ZONE_SHAPE.itemsize == 64


class ShapeError(ValueError):
    """The zones asked for are not the ones the media was written with."""


class ZoneLayout:
    """Zone geometry of a device: sizes in LBAs (4 KiB sectors), addresses of units.
    `recorded` is the shape the media holds (a ZONE_SHAPE record, or None when blank)."""

    def __init__(self, geo: Geometry, params: ZnsParams, recorded=None):
        self.geo = geo
        total = geo.total_luns
        rec = recorded if recorded is not None and int(recorded["magic"]) == SHAPE_MAGIC else None
        asked_zl = params.zone_luns if params.zone_luns is not None else \
            (int(rec["zone_luns"]) if rec is not None else 0)
        zl = asked_zl or geo.nchannels
        if zl > total or total % zl:
            raise ValueError(f"ZNS zone_luns {zl} does not divide the device's {total} LUNs")
        self.zone_luns = zl
        self.groups = total // zl
        self.nzones = self.groups * geo.nblocks
        self.unit = geo.nplanes * geo.nsectors                   # sectors per write unit
        self.units = zl * geo.npages                             # physical units per zone
        self.zsze = self.units * self.unit
        spare = zl * self.unit
        cap = params.zone_capacity_bytes
        if cap is None and rec is not None and int(rec["zone_luns"]) == zl:
            cap = int(rec["zone_capacity"]) * geo.sector_nbytes
        if cap:
            zcap = cap // geo.sector_nbytes
            if not 0 < zcap <= self.zsze:
                raise ValueError(f"ZNS zone capacity {cap:,} bytes is not within the "
                                 f"zone size of {self.zsze * geo.sector_nbytes:,} bytes")
        else:
            zcap = self.zsze - spare if self.zsze > spare else self.zsze
        self.zcap = zcap
        if rec is not None and (int(rec["zone_luns"]), int(rec["zone_capacity"])) != (zl, zcap):
            sb = geo.sector_nbytes
            raise ShapeError(f"holds zones of {int(rec['zone_luns'])} LUNs with a capacity of "
                             f"{int(rec['zone_capacity']) * sb:,} bytes, not {zl} LUNs with {zcap * sb:,} bytes "
                             f"(zns.zone_luns, zns.zone_capacity_bytes)")
        self.max_open = params.max_open
        self.max_active = params.max_active
        self.nlbas = self.nzones * self.zsze
        k = np.arange(zl)
        g = np.arange(self.groups)
        gl = g[:, None] + k[None, :] * self.groups               # (group, k) -> global LUN
        self._ch, self._lun = np.divmod(gl, geo.nluns)
        self._ch_list, self._lun_list = self._ch.tolist(), self._lun.tolist()

    def shape(self) -> np.ndarray:
        """This layout's ZONE_SHAPE record."""
        r = np.zeros((), ZONE_SHAPE)
        r["magic"], r["version"] = SHAPE_MAGIC, 1
        r["zone_luns"], r["zone_sectors"], r["zone_capacity"] = self.zone_luns, self.zsze, self.zcap
        return r

    def describe(self) -> str:
        g = self.geo
        return (f"{self.nzones} zones of {self.zsze * g.sector_nbytes:,} bytes ({self.zcap * g.sector_nbytes:,} "
                f"writable) on {self.zone_luns} LUNs each")

    # ------------------------------------------------------------ addresses
    def group_block(self, z: int) -> tuple[int, int]:
        return z % self.groups, z // self.groups

    def row(self, z: int) -> int:
        """The NVRAM row (erase block number) of zone z: its first LUN's block."""
        g, blk = self.group_block(z)
        return (int(self._ch_list[g][0]) * self.geo.nluns + int(self._lun_list[g][0])) * self.geo.nblocks + blk

    def luns(self, z: int) -> tuple[list, list, int]:
        """(channels, LUNs, block) of zone z's blocks, in stripe order."""
        g, blk = self.group_block(z)
        return self._ch_list[g], self._lun_list[g], blk

    def units_at(self, z: int, p: np.ndarray):
        """(ch, lun, blk, pg) arrays of physical units p of zone z."""
        g, blk = self.group_block(z)
        pg, k = np.divmod(np.asarray(p, dtype=np.int64), self.zone_luns)
        return self._ch[g][k], self._lun[g][k], np.full(k.shape, blk, np.int64), pg

    def unit_at(self, z: int, p: int) -> tuple[int, int, int, int]:
        g, blk = self.group_block(z)
        pg, k = divmod(p, self.zone_luns)
        return self._ch_list[g][k], self._lun_list[g][k], blk, pg

    @staticmethod
    def physical(i: np.ndarray, skips) -> np.ndarray:
        """Physical units of logical units i, given the skipped ones: the i-th not skipped."""
        p = np.array(i, dtype=np.int64, copy=True)
        for s in sorted(skips):
            p += p >= s
        return p
