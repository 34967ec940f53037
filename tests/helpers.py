"""Test helpers: raw open-channel commands, address sets, stamps and process probes."""
import hashlib

import numpy as np

from oxemu.wire import SQE_PH
from oxhost.lightnvm import Addr, gen2dev

SECTOR = 4096
DNR = 0x4000
INVALID_FIELD = 0x4002          # 0x0002 invalid field, with Do Not Retry


def ph_sqe(opcode: int, spba: int, nlb: int = 0, *, prp1: int = 0, prp2: int = 0, mptr: int = 0,
           control: int = 0, nsid: int = 1, flags: int = 0) -> bytes:
    """A raw nvme_nvm_ph_rw / erase command (the driver fills in the cid)."""
    return SQE_PH.pack(opcode, flags, 0, nsid, 0, 0, mptr, prp1, prp2, spba, nlb, control, 0, 0)


def raw_io(dev, opcode: int, ppas: list, *, prp1: int = 0, prp2: int = 0, mptr: int = 0,
           control: int = 0, nsid: int = 1, list_addr: int | None = None):
    """Submit one physical command built by hand on I/O queue 1; returns the Completion.

    With more than one address the PPA list goes into a fresh guest buffer (or list_addr).
    """
    drv = dev.driver
    buf = None
    if len(ppas) == 1 and list_addr is None:
        spba = ppas[0]
    else:
        if list_addr is None:
            buf = drv.pool.alloc(8 * len(ppas))
            buf.array.view("<u8")[:len(ppas)] = ppas
            list_addr = buf.addr
        spba = list_addr
    try:
        return drv.submit_raw(1, ph_sqe(opcode, spba, len(ppas) - 1, prp1=prp1, prp2=prp2,
                                        mptr=mptr, control=control, nsid=nsid))
    finally:
        if buf is not None:
            buf.free()


def guest_addr(dev, arr: np.ndarray) -> int:
    """Guest physical address of an array living in guest RAM (from dev.buf_alloc)."""
    return int(arr.ctypes.data - dev.driver.ram.ctypes.data)


def prp_pair(dev, addr: int, nbytes: int) -> tuple[int, int]:
    """PRP1/PRP2 (with a PRP list when needed) for the next command on I/O queue 1."""
    return dev.driver.prps(1, 0, addr, nbytes)


def page_addrs(ch: int, lun: int, blk: int, pg: int, nplanes: int, nsectors: int = 4) -> list:
    """One page on every plane, plane-major: the address order of a multi-plane write."""
    return [Addr(ch, lun, pl=pl, blk=blk, pg=pg, sec=s) for pl in range(nplanes) for s in range(nsectors)]


def block_planes(ch: int, lun: int, blk: int, nplanes: int) -> list:
    return [Addr(ch, lun, pl=pl, blk=blk) for pl in range(nplanes)]


def ppas_of(dev, addrs) -> list:
    return [gen2dev(a, dev.geo) for a in addrs]


def stamp_sectors(addrs, seed: int = 0) -> np.ndarray:
    """One 4 KiB sector per address: its generic address in the first 8 bytes, then noise."""
    out = np.random.default_rng(seed).integers(0, 256, len(addrs) * SECTOR, dtype=np.uint8)
    view = out.reshape(len(addrs), SECTOR)
    for i, a in enumerate(addrs):
        view[i, :8] = np.frombuffer(a.val.to_bytes(8, "little"), np.uint8)
    return out


def stamp_meta(addrs, sos: int = 16) -> np.ndarray:
    """sos bytes per address: the generic address twice over, bit-inverted the second time."""
    out = np.zeros(len(addrs) * sos, dtype=np.uint8)
    for i, a in enumerate(addrs):
        out[i * sos:i * sos + 8] = np.frombuffer(a.val.to_bytes(8, "little"), np.uint8)
        out[i * sos + 8:i * sos + 16] = np.frombuffer((a.val ^ (2**64 - 1)).to_bytes(8, "little"), np.uint8)
    return out


def erase_write(dev, addrs_by_page, data=None, meta=None, pmode=None):
    """Erase the blocks of the given pages, then program them in order."""
    seen = []
    for page in addrs_by_page:
        for a in page:
            blk = Addr(a.ch, a.lun, pl=a.pl, blk=a.blk)
            if blk not in seen:
                seen.append(blk)
    dev.addr_erase(seen, pmode=pmode)
    flat = [a for page in addrs_by_page for a in page]
    dev.addr_write(flat, stamp_sectors(flat) if data is None else data, meta=meta, pmode=pmode)
    return flat


# ---------------------------------------------------------------- process probes
def vmrss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def mapping_dirty_kib(path) -> int:
    """Dirty kilobytes of this process's mappings of `path` (0 once msync wrote them back)."""
    path = str(path)
    total, current = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(maxsplit=1)[0] if line.strip() else ""
            if "-" in head and not head.endswith(":"):
                current = line.rstrip("\n").endswith(path)
            elif current and line.startswith(("Shared_Dirty:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


def file_digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
