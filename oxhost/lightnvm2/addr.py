"""2.0 addresses (liblightnvm 2.x nvm_addr's `l` form) and their conversions.

A chunk address names group, parallel unit, chunk and sector (logical block). Its
generic u64 packs sectr:24 @0, chunk:16 @24, punit:8 @40, pugrp:8 @48, independent of
the device; the device LBA packs the same fields per the geometry's LBA format. Offsets
and linear sector numbers count in (pugrp, punit, chunk, sectr) order, so a chunk's
data is contiguous.
"""
import enum

import numpy as np

from .geo import Geo20

_GEN = (("sectr", 0, 24), ("chunk", 24, 16), ("punit", 40, 8), ("pugrp", 48, 8))


class AddrCheck(enum.IntFlag):
    """Bits of addr_check's answer: which field lies outside the geometry."""
    PUGRP = 1
    PUNIT = 2
    CHUNK = 4
    SECTR = 8


class ChunkAddr:
    """One 2.0 address; fields default to 0, so ChunkAddr(g, p, c) names a chunk."""

    __slots__ = ("pugrp", "punit", "chunk", "sectr")

    def __init__(self, pugrp: int = 0, punit: int = 0, chunk: int = 0, sectr: int = 0):
        self.pugrp, self.punit, self.chunk, self.sectr = pugrp, punit, chunk, sectr

    def fields(self) -> tuple:
        return (self.pugrp, self.punit, self.chunk, self.sectr)

    def __repr__(self) -> str:
        return f"ChunkAddr(pugrp={self.pugrp}, punit={self.punit}, chunk={self.chunk}, sectr={self.sectr})"

    def __eq__(self, other) -> bool:
        return isinstance(other, ChunkAddr) and self.fields() == other.fields()

    def __hash__(self) -> int:
        return hash(self.fields())

    def replace(self, **kw) -> "ChunkAddr":
        a = ChunkAddr(*self.fields())
        for k, v in kw.items():
            setattr(a, k, v)
        return a

    @property
    def val(self) -> int:
        """The generic u64."""
        return sum(getattr(self, name) << off for name, off, _ in _GEN)

    @classmethod
    def from_val(cls, v: int) -> "ChunkAddr":
        return cls(**{name: (v >> off) & ((1 << ln) - 1) for name, off, ln in _GEN})


def gen2dev(addr: ChunkAddr, geo: Geo20) -> int:
    """The device LBA of an address (nvm_addr_gen2dev)."""
    f = geo.lbaf
    return ((addr.pugrp << f.pugrp_off) | (addr.punit << f.punit_off) | (addr.chunk << f.chunk_off)
            | (addr.sectr << f.sectr_off))


def dev2gen(lba: int, geo: Geo20) -> ChunkAddr:
    f = geo.lbaf

    def field(off, ln):
        return (lba >> off) & ((1 << ln) - 1)
    return ChunkAddr(field(f.pugrp_off, f.pugrp_len), field(f.punit_off, f.punit_len),
                     field(f.chunk_off, f.chunk_len), field(f.sectr_off, f.sectr_len))


def dev_lbas(geo: Geo20, pugrp, punit, chunk, sectr=0) -> np.ndarray:
    """Device LBAs of field arrays (broadcast), as uint64."""
    f, u = geo.lbaf, np.uint64
    return ((np.asarray(pugrp).astype(u) << u(f.pugrp_off)) | (np.asarray(punit).astype(u) << u(f.punit_off))
            | (np.asarray(chunk).astype(u) << u(f.chunk_off)) | (np.asarray(sectr).astype(u) << u(f.sectr_off)))


def gen2lin(addr: ChunkAddr, geo: Geo20) -> int:
    """Linear sector number: (pugrp, punit, chunk, sectr) order."""
    return ((addr.pugrp * geo.npunit + addr.punit) * geo.nchunk + addr.chunk) * geo.nsectr + addr.sectr


def lin2gen(lin: int, geo: Geo20) -> ChunkAddr:
    lin, sectr = divmod(lin, geo.nsectr)
    lin, chunk = divmod(lin, geo.nchunk)
    pugrp, punit = divmod(lin, geo.npunit)
    return ChunkAddr(pugrp, punit, chunk, sectr)


def gen2off(addr: ChunkAddr, geo: Geo20) -> int:
    """Byte offset of the sector (nvm_addr_gen2off)."""
    return gen2lin(addr, geo) * geo.nbytes


def off2gen(off: int, geo: Geo20) -> ChunkAddr:
    return lin2gen(off // geo.nbytes, geo)


def gen2lpo(addr: ChunkAddr, geo: Geo20, entry_nbytes: int = 32) -> int:
    """Offset of the chunk's descriptor in the chunk information log page (nvm_addr_gen2lpo)."""
    return ((addr.pugrp * geo.npunit + addr.punit) * geo.nchunk + addr.chunk) * entry_nbytes


def addr_check(addrs, geo: Geo20) -> int:
    """OR of AddrCheck bits over the addresses; 0 when all lie inside the geometry."""
    if isinstance(addrs, ChunkAddr):
        addrs = [addrs]
    mask = 0
    for a in addrs:
        for bit, v, lim in ((AddrCheck.PUGRP, a.pugrp, geo.npugrp), (AddrCheck.PUNIT, a.punit, geo.npunit),
                            (AddrCheck.CHUNK, a.chunk, geo.nchunk), (AddrCheck.SECTR, a.sectr, geo.nsectr)):
            if not 0 <= v < lim:
                mask |= bit
    return int(mask)


def lba_check(lbas: np.ndarray, geo: Geo20) -> int:
    """addr_check for device LBAs: bits beyond the format count as the group's."""
    f = geo.lbaf
    lbas = np.asarray(lbas, dtype=np.uint64).reshape(-1)
    mask = 0
    if f.nbits < 64 and np.any(lbas >> np.uint64(f.nbits)):
        mask |= AddrCheck.PUGRP
    for bit, off, ln, lim in ((AddrCheck.PUGRP, f.pugrp_off, f.pugrp_len, geo.npugrp),
                              (AddrCheck.PUNIT, f.punit_off, f.punit_len, geo.npunit),
                              (AddrCheck.CHUNK, f.chunk_off, f.chunk_len, geo.nchunk),
                              (AddrCheck.SECTR, f.sectr_off, f.sectr_len, geo.nsectr)):
        if np.any((lbas >> np.uint64(off)) & np.uint64((1 << ln) - 1) >= lim):
            mask |= bit
    return int(mask)


def fmt(addr: ChunkAddr) -> str:
    """liblightnvm's nvm_addr_pr line for a 2.0 address."""
    return (f"(0x{addr.val:016x}){{ pugrp({addr.pugrp:02d}), punit({addr.punit:02d}), "
            f"chunk({addr.chunk:04d}), sectr({addr.sectr:04d}) }}")
