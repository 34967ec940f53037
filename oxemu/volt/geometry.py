"""NAND geometry of the VOLT media and the PPA bit format derived from it (SPEC 3, 5)."""
from dataclasses import dataclass


def _bits(n: int) -> int:
    return max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class Geometry:
    """Fixed default: 8 ch x 4 LUN x 32 blk x 128 pg x 2 pl x 4 sec of 4 KiB, 1 KiB OOB/page."""
    nchannels: int = 8
    nluns: int = 4
    nblocks: int = 32
    npages: int = 128
    nplanes: int = 2
    nsectors: int = 4
    sector_nbytes: int = 4096
    oob_nbytes: int = 1024          # per page (per plane)
    meta_nbytes: int = 16           # per-sector OOB the host sees (sos)

    def __post_init__(self):
        for name in ("nchannels", "nluns", "nblocks", "npages", "nplanes", "nsectors"):
            if getattr(self, name) < 1:
                raise ValueError(f"geometry: {name} must be >= 1")
        if self.nplanes not in (1, 2, 4):
            raise ValueError("geometry: nplanes must be 1, 2 or 4")
        if self.meta_nbytes * self.nsectors > self.oob_nbytes:
            raise ValueError("geometry: host OOB does not fit the page OOB")
        if self.ppa_bits > 64:
            raise ValueError("geometry: PPA does not fit 64 bits")
        if (self.nchannels > 0xFF or self.nluns > 0xFF or self.nblocks > 0xFFFF or self.npages > 0xFFFF
                or self.page_nbytes > 0xFFFF or self.meta_nbytes > 0xFFFF):
            raise ValueError("geometry: does not fit the LightNVM 1.2 identity "
                             "(u8 channels/LUNs, u16 blocks/pages/page size)")

    @classmethod
    def small(cls, **kw) -> "Geometry":
        """A test geometry (2 ch x 2 LUN x 8 blk x 16 pg): 16 MiB, same page shape."""
        base = dict(nchannels=2, nluns=2, nblocks=8, npages=16)
        base.update(kw)
        return cls(**base)

    # derived sizes
    @property
    def page_nbytes(self) -> int:
        return self.nsectors * self.sector_nbytes

    @property
    def total_luns(self) -> int:
        return self.nchannels * self.nluns

    @property
    def sectors_per_block(self) -> int:
        """Sectors in one block across all planes (a pblk chunk)."""
        return self.npages * self.nplanes * self.nsectors

    @property
    def total_sectors(self) -> int:
        return self.total_luns * self.nblocks * self.sectors_per_block

    @property
    def total_pages(self) -> int:
        return self.total_luns * self.nblocks * self.npages * self.nplanes

    @property
    def data_nbytes(self) -> int:
        return self.total_sectors * self.sector_nbytes

    @property
    def oob_total_nbytes(self) -> int:
        return self.total_pages * self.oob_nbytes

    @property
    def block_planes(self) -> int:
        return self.total_luns * self.nblocks * self.nplanes

    # PPA device format: sec, pl, pg, blk, lun, ch from bit 0 upwards
    @property
    def ppaf(self) -> dict:
        lens = dict(sec=_bits(self.nsectors), pl=_bits(self.nplanes), pg=_bits(self.npages),
                    blk=_bits(self.nblocks), lun=_bits(self.nluns), ch=_bits(self.nchannels))
        out, off = {}, 0
        for f in ("sec", "pl", "pg", "blk", "lun", "ch"):
            out[f] = (off, lens[f])
            off += lens[f]
        return out

    @property
    def ppa_bits(self) -> int:
        return sum(_bits(n) for n in (self.nsectors, self.nplanes, self.npages,
                                      self.nblocks, self.nluns, self.nchannels))

    def describe(self) -> str:
        return (f"{self.nchannels}ch x {self.nluns}lun x {self.nblocks}blk x {self.npages}pg x "
                f"{self.nplanes}pl x {self.nsectors}sec x {self.sector_nbytes}B")
