"""What an FTL sees of the flash: the `Media` interface and its geometry.

One interface, two sides: in the host (oxhost.ftl.HostMedia: lightnvm vector commands
over the bus, the FTL a host block device, pblk's place in the stack; or
oxhost.zns.ZoneMedia: the zones of a ZNS device) and in the device
(oxemu.device.plugin.DeviceMedia: VOLT directly, the FTL inside the controller behind a
plain NVMe namespace, AppNVM's place). An FTL written against it
runs unchanged on either side; only where it runs, and so what it costs, differs.

Addresses are flat integers, arrays of them for the vector calls:

    block  = unit * blocks + blk                 (an erase block on every plane of a LUN)
    page   = block * pages + pg                  (a write unit: one page on every plane)
    sector = page * sectors + sec                (4 KiB; sectors of plane 0 first)

The NAND rules hold on both sides: a block is erased before it is programmed, its pages
are programmed in order, each once, whole (data for every sector, OOB per sector); a
page that breaks the rules fails like a program failure and nothing is written. Every
operation is charged to the device's timing model.
"""
import abc
import dataclasses
import enum

import numpy as np


class SectorStatus(enum.IntEnum):
    """What a read found at one sector address."""
    OK = 0
    EMPTY = 1          # not programmed since its block was last erased (data reads as zeros)
    UNREADABLE = 2     # uncorrectable after retries: a torn or failed program, or a bad cell


class MediaUsageError(ValueError):
    """An FTL called the media wrongly: an address outside the geometry, data or OOB of
    the wrong size. A bug in the FTL, never a media condition: nothing was sent."""


@dataclasses.dataclass(frozen=True)
class MediaGeometry:
    """The flash an FTL owns. `units` are its parallel units (LUNs), `unit_channels[u]` the
    channel unit u sits on: units on different channels transfer in parallel, units on one
    channel share its bus."""
    units: int
    blocks: int               # erase blocks per unit
    pages: int                # write units (pages on every plane) per block
    sectors: int              # sectors per write unit: planes x sectors per plane page
    sector_nbytes: int        # 4096
    oob_nbytes: int           # OOB bytes per sector that belong to the FTL
    unit_channels: tuple      # channel of each unit

    @property
    def channels(self) -> int:
        return len(set(self.unit_channels))

    @property
    def total_blocks(self) -> int:
        return self.units * self.blocks

    @property
    def total_pages(self) -> int:
        return self.total_blocks * self.pages

    @property
    def sectors_per_block(self) -> int:
        return self.pages * self.sectors

    @property
    def total_sectors(self) -> int:
        return self.total_pages * self.sectors

    @property
    def page_nbytes(self) -> int:
        return self.sectors * self.sector_nbytes

    def block(self, unit, blk):
        return unit * self.blocks + blk

    def page(self, block, pg):
        return block * self.pages + pg

    def sector(self, page, sec=0):
        return page * self.sectors + sec

    def describe(self) -> str:
        return (f"{self.units} units x {self.blocks} blocks x {self.pages} pages x {self.sectors} "
                f"sectors of {self.sector_nbytes} B (+{self.oob_nbytes} B OOB)")


class Media(abc.ABC):
    """The flash as an FTL drives it. Vector calls take arrays of flat addresses and return
    an array with one result per address; none raises for a media condition (a failed
    erase or program, an unreadable sector): those are results, and the FTL decides.

    `counters` counts what the FTL asked of the media (erases, pages programmed, sectors
    read, failures), the same on both sides, so any FTL's write amplification is measured
    the same way.
    """

    geometry: MediaGeometry
    side: str                 # "host" or "device": where the FTL runs (for reports only)

    def __init__(self, geometry: MediaGeometry):
        self.geometry = geometry
        self.counters = dict(erases=0, erase_fails=0, pages_programmed=0, program_fails=0,
                             sectors_read=0, sectors_unreadable=0)

    # ------------------------------------------------------------ bad blocks
    @abc.abstractmethod
    def bad_blocks(self) -> np.ndarray:
        """Bool per flat block: bad from the factory or retired since (grown bad)."""

    @abc.abstractmethod
    def mark_bad(self, blocks) -> None:
        """Retire blocks for good (grown bad, kept in the media's bad-block table)."""

    # ------------------------------------------------------------ flash operations
    @abc.abstractmethod
    def erase(self, blocks) -> np.ndarray:
        """Erase blocks (every plane). Bool per block: True if it is erased. A block whose
        erase fails is retired by the media (marked grown bad) and must not be used."""

    @abc.abstractmethod
    def program(self, pages, data: np.ndarray, oob: np.ndarray | None = None) -> np.ndarray:
        """Program write units: `data` holds len(pages) x page_nbytes bytes, `oob`
        len(pages) x sectors x oob_nbytes (None: zeros). Bool per page: True if it was
        programmed. A page that failed is consumed and reads UNREADABLE; the block should
        have its valid data moved and be retired."""

    @abc.abstractmethod
    def read(self, sectors, out: np.ndarray | None = None, with_oob: bool = True):
        """Read sectors (any number, any order): (data, oob, status). `data` is
        len(sectors) x sector_nbytes bytes (in `out` when given), `oob` len(sectors) x
        oob_nbytes (None unless with_oob), `status` a SectorStatus per sector; data and OOB
        are zeros where the status is not OK. Uncorrectable errors are retried by the media
        before it answers UNREADABLE."""

    def buf_alloc(self, nbytes: int) -> np.ndarray:
        """A zeroed buffer the media moves data from and to without a copy where it can."""
        return np.zeros(nbytes, dtype=np.uint8)

    # ------------------------------------------------------------ helpers for implementations
    def _check_blocks(self, blocks) -> np.ndarray:
        b = np.asarray(blocks, dtype=np.int64).reshape(-1)
        if b.size and (b.min() < 0 or b.max() >= self.geometry.total_blocks):
            raise MediaUsageError(f"block address outside 0..{self.geometry.total_blocks - 1}")
        return b

    def _check_pages(self, pages, data, oob):
        g = self.geometry
        p = np.asarray(pages, dtype=np.int64).reshape(-1)
        if p.size and (p.min() < 0 or p.max() >= g.total_pages):
            raise MediaUsageError(f"page address outside 0..{g.total_pages - 1}")
        data = np.asarray(data).reshape(-1).view(np.uint8)
        if data.nbytes != p.size * g.page_nbytes:
            raise MediaUsageError(f"program of {p.size} page(s) needs {p.size * g.page_nbytes} bytes of "
                                  f"data, got {data.nbytes}")
        want = p.size * g.sectors * g.oob_nbytes
        if oob is None:
            oob = np.zeros(want, dtype=np.uint8)
        else:
            oob = np.asarray(oob).reshape(-1).view(np.uint8)
            if oob.nbytes != want:
                raise MediaUsageError(f"program of {p.size} page(s) needs {want} bytes of OOB, got {oob.nbytes}")
        return p, data, oob

    def _check_sectors(self, sectors, out):
        g = self.geometry
        s = np.asarray(sectors, dtype=np.int64).reshape(-1)
        if s.size and (s.min() < 0 or s.max() >= g.total_sectors):
            raise MediaUsageError(f"sector address outside 0..{g.total_sectors - 1}")
        if out is None:
            out = np.empty(s.size * g.sector_nbytes, dtype=np.uint8)
        else:
            out = out.reshape(-1).view(np.uint8)
            if out.nbytes < s.size * g.sector_nbytes:
                raise MediaUsageError(f"read buffer of {out.nbytes} bytes is short of {s.size * g.sector_nbytes}")
            out = out[:s.size * g.sector_nbytes]
        return s, out
