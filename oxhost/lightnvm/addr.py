"""Generic addresses and their conversions (liblightnvm 1.2 nvm_addr).

The generic format packs blk:16 @0, pg:16 @16, sec:8 @32, pl:8 @40, lun:8 @48, ch:7 @56 into
one u64, independent of the device. Byte offsets and LBAs number sectors in the order
(ch, lun, blk, pg, pl, sec), so one block's data across its planes is contiguous.
"""
import enum

import numpy as np

from .geo import Geo


class AddrCheck(enum.IntFlag):
    """Bits of addr_check's answer: which field is outside the geometry."""
    CH = 1
    LUN = 2
    PL = 4
    BLK = 8
    PG = 16
    SEC = 32


class Addr:
    """One generic address. Fields default to 0, so Addr(ch, lun) names a LUN."""

    __slots__ = ("ch", "lun", "pl", "blk", "pg", "sec")

    def __init__(self, ch: int = 0, lun: int = 0, pl: int = 0, blk: int = 0, pg: int = 0, sec: int = 0):
        self.ch, self.lun, self.pl, self.blk, self.pg, self.sec = ch, lun, pl, blk, pg, sec

    def __repr__(self) -> str:
        return f"Addr(ch={self.ch}, lun={self.lun}, pl={self.pl}, blk={self.blk}, pg={self.pg}, sec={self.sec})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Addr) and self.fields() == other.fields()

    def __hash__(self) -> int:
        return hash(self.fields())

    def fields(self) -> tuple:
        return (self.ch, self.lun, self.pl, self.blk, self.pg, self.sec)

    def replace(self, **kw) -> "Addr":
        a = Addr(*self.fields())
        for k, v in kw.items():
            setattr(a, k, v)
        return a

    # generic u64
    @property
    def val(self) -> int:
        return (self.blk | (self.pg << 16) | (self.sec << 32) | (self.pl << 40)
                | (self.lun << 48) | (self.ch << 56))

    @classmethod
    def from_val(cls, v: int) -> "Addr":
        return cls(ch=(v >> 56) & 0x7F, lun=(v >> 48) & 0xFF, pl=(v >> 40) & 0xFF,
                   blk=v & 0xFFFF, pg=(v >> 16) & 0xFFFF, sec=(v >> 32) & 0xFF)


def gen2dev(addr: Addr, geo: Geo) -> int:
    """Device PPA per the identity's ppaf."""
    f = geo.ppaf
    return ((addr.ch << f.ch_off) | (addr.lun << f.lun_off) | (addr.pl << f.pl_off)
            | (addr.blk << f.blk_off) | (addr.pg << f.pg_off) | (addr.sec << f.sec_off))


def dev2gen(ppa: int, geo: Geo) -> Addr:
    f = geo.ppaf

    def field(off, ln):
        return (ppa >> off) & ((1 << ln) - 1)

    return Addr(ch=field(f.ch_off, f.ch_len), lun=field(f.lun_off, f.lun_len),
                pl=field(f.pl_off, f.pl_len), blk=field(f.blk_off, f.blk_len),
                pg=field(f.pg_off, f.pg_len), sec=field(f.sec_off, f.sec_len))


def gen2lba(addr: Addr, geo: Geo) -> int:
    return (((((addr.ch * geo.nluns + addr.lun) * geo.nblocks + addr.blk) * geo.npages + addr.pg)
             * geo.nplanes + addr.pl) * geo.nsectors + addr.sec)


def lba2gen(lba: int, geo: Geo) -> Addr:
    lba, sec = divmod(lba, geo.nsectors)
    lba, pl = divmod(lba, geo.nplanes)
    lba, pg = divmod(lba, geo.npages)
    lba, blk = divmod(lba, geo.nblocks)
    ch, lun = divmod(lba, geo.nluns)
    return Addr(ch=ch, lun=lun, pl=pl, blk=blk, pg=pg, sec=sec)


def gen2off(addr: Addr, geo: Geo) -> int:
    return gen2lba(addr, geo) * geo.sector_nbytes


def off2gen(off: int, geo: Geo) -> Addr:
    return lba2gen(off // geo.sector_nbytes, geo)


def addr_check(addrs, geo: Geo) -> int:
    """OR of AddrCheck bits over the addresses; 0 when all lie inside the geometry."""
    if isinstance(addrs, Addr):
        addrs = [addrs]
    mask = 0
    for a in addrs:
        if not 0 <= a.ch < geo.nchannels:
            mask |= AddrCheck.CH
        if not 0 <= a.lun < geo.nluns:
            mask |= AddrCheck.LUN
        if not 0 <= a.pl < geo.nplanes:
            mask |= AddrCheck.PL
        if not 0 <= a.blk < geo.nblocks:
            mask |= AddrCheck.BLK
        if not 0 <= a.pg < geo.npages:
            mask |= AddrCheck.PG
        if not 0 <= a.sec < geo.nsectors:
            mask |= AddrCheck.SEC
    return int(mask)


def ppa_check(ppas: np.ndarray, geo: Geo) -> int:
    """addr_check for device PPAs (uint64 array): bits beyond the format count as the
    channel's, a field at or past its geometry limit as its own."""
    f = geo.ppaf
    mask = 0
    top = max(f.ch_off + f.ch_len, f.lun_off + f.lun_len, f.pl_off + f.pl_len,
              f.blk_off + f.blk_len, f.pg_off + f.pg_len, f.sec_off + f.sec_len)
    if top < 64 and np.any(ppas >> np.uint64(top)):
        mask |= AddrCheck.CH
    for bit, off, ln, lim in ((AddrCheck.CH, f.ch_off, f.ch_len, geo.nchannels),
                              (AddrCheck.LUN, f.lun_off, f.lun_len, geo.nluns),
                              (AddrCheck.PL, f.pl_off, f.pl_len, geo.nplanes),
                              (AddrCheck.BLK, f.blk_off, f.blk_len, geo.nblocks),
                              (AddrCheck.PG, f.pg_off, f.pg_len, geo.npages),
                              (AddrCheck.SEC, f.sec_off, f.sec_len, geo.nsectors)):
        if lim < (1 << ln) and np.any((ppas >> np.uint64(off)) & np.uint64((1 << ln) - 1) >= lim):
            mask |= bit
    return int(mask)


def fmt(addr: Addr) -> str:
    """liblightnvm's nvm_addr_pr line."""
    return (f"(0x{addr.val:016x}){{ ch({addr.ch:02d}), lun({addr.lun:02d}), pl({addr.pl}), "
            f"blk({addr.blk:04d}), pg({addr.pg:03d}), sec({addr.sec}) }}")
