"""The 2.0 geometry as the host learns it from the geometry command (admin 0xE2, major
version 2), in liblightnvm 2.x's names (nvm_geo: npugrp, npunit, nchunk, nsectr, ...)."""
from dataclasses import dataclass

from oxemu.wire import Geometry20


@dataclass(frozen=True)
class Lbaf:
    """The LBA format: each field's bit offset and length (offsets from the lengths, the
    logical block at bit 0, then chunk, PU, group, as the Linux driver derives them)."""
    pugrp_off: int
    pugrp_len: int
    punit_off: int
    punit_len: int
    chunk_off: int
    chunk_len: int
    sectr_off: int
    sectr_len: int

    @classmethod
    def from_lengths(cls, grp: int, pu: int, chk: int, sec: int) -> "Lbaf":
        return cls(pugrp_off=sec + chk + pu, pugrp_len=grp, punit_off=sec + chk, punit_len=pu,
                   chunk_off=sec, chunk_len=chk, sectr_off=0, sectr_len=sec)

    @property
    def nbits(self) -> int:
        return self.pugrp_off + self.pugrp_len


@dataclass(frozen=True)
class Geo20:
    """liblightnvm's nvm_geo for a 2.0 device: its shape in groups, parallel units, chunks
    and sectors (logical blocks), the write requirements and the timings (ns)."""
    npugrp: int           # groups
    npunit: int           # parallel units per group
    nchunk: int           # chunks per parallel unit
    nsectr: int           # logical blocks (sectors) per chunk: clba
    nbytes: int           # bytes per sector
    nbytes_oob: int       # OOB bytes per sector
    ws_min: int           # a write is a multiple of ws_min sectors at the write pointer
    ws_opt: int           # ... best in multiples of ws_opt
    mw_cunits: int        # the last mw_cunits sectors of an open chunk are not readable yet
    maxoc: int            # open chunks at most (device-wide)
    maxocpu: int          # ... per parallel unit
    mccap: int            # media and controller capabilities (wire.Mccap)
    wit: int              # wear-level index delta threshold
    lbaf: Lbaf
    timings_ns: dict
    verid: str = "2.0"

    @classmethod
    def from_geometry(cls, raw: bytes, nbytes: int, nbytes_oob: int) -> "Geo20":
        """From the geometry command's 4096 bytes; the sector and OOB sizes come from the
        namespace's LBA format (identify namespace), as 2.0 leaves them out of the geometry."""
        i = Geometry20.from_buffer_copy(raw)
        f = i.lbaf
        return cls(npugrp=i.num_grp, npunit=i.num_pu, nchunk=i.num_chk, nsectr=i.clba, nbytes=nbytes,
                   nbytes_oob=nbytes_oob, ws_min=i.ws_min, ws_opt=i.ws_opt, mw_cunits=i.mw_cunits,
                   maxoc=i.maxoc, maxocpu=i.maxocpu, mccap=i.mccap, wit=i.wit,
                   lbaf=Lbaf.from_lengths(f.grp_len, f.pu_len, f.chk_len, f.lba_len),
                   timings_ns=dict(trdt=i.trdt, trdm=i.trdm, twrt=i.twrt, twrm=i.twrm, tcrst=i.tcrst,
                                   tcrsm=i.tcrsm))

    # derived, as liblightnvm computes them
    @property
    def npunits(self) -> int:
        """Parallel units in all (global PU id = pugrp * npunit + punit)."""
        return self.npugrp * self.npunit

    @property
    def nchunks(self) -> int:
        return self.npunits * self.nchunk

    @property
    def chunk_nbytes(self) -> int:
        return self.nsectr * self.nbytes

    @property
    def tbytes(self) -> int:
        return self.nchunks * self.chunk_nbytes
