"""Device geometry and PPA format as the host learns them from the 0xE2 identity."""
from dataclasses import dataclass

from oxemu.wire import NvmId12


@dataclass(frozen=True)
class Ppaf:
    """Bit offset and length of each field of a device PPA (nvme_nvm_addr_format)."""
    ch_off: int
    ch_len: int
    lun_off: int
    lun_len: int
    pl_off: int
    pl_len: int
    blk_off: int
    blk_len: int
    pg_off: int
    pg_len: int
    sec_off: int
    sec_len: int


@dataclass(frozen=True)
class Geo:
    """liblightnvm's nvm_geo: the device's shape, in the units users script with."""
    nchannels: int
    nluns: int
    nplanes: int
    nblocks: int
    npages: int
    nsectors: int
    sector_nbytes: int
    page_nbytes: int
    meta_nbytes: int
    ppaf: Ppaf
    mpos: int
    timings_ns: dict

    @classmethod
    def from_identity(cls, raw: bytes) -> "Geo":
        i = NvmId12.from_buffer_copy(raw)
        g, f = i.group, i.ppaf
        return cls(nchannels=g.num_ch, nluns=g.num_lun, nplanes=g.num_pln, nblocks=g.num_blk,
                   npages=g.num_pg, nsectors=g.fpg_sz // g.csecs, sector_nbytes=g.csecs,
                   page_nbytes=g.fpg_sz, meta_nbytes=g.sos,
                   ppaf=Ppaf(f.ch_offset, f.ch_len, f.lun_offset, f.lun_len, f.pln_offset, f.pln_len,
                             f.blk_offset, f.blk_len, f.pg_offset, f.pg_len, f.sect_offset, f.sect_len),
                   mpos=g.mpos,
                   timings_ns=dict(trdt=g.trdt, trdm=g.trdm, tprt=g.tprt, tprm=g.tprm,
                                   tbet=g.tbet, tbem=g.tbem))

    # derived, as liblightnvm computes them
    @property
    def tbytes(self) -> int:
        return self.nchannels * self.nluns * self.nplanes * self.nblocks * self.npages * self.page_nbytes

    @property
    def nsectors_total(self) -> int:
        return self.tbytes // self.sector_nbytes

    @property
    def block_nbytes(self) -> int:
        """One block across all planes (a pblk chunk)."""
        return self.nplanes * self.npages * self.page_nbytes
