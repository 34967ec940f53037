"""Admin commands a tool issues by hand -- nvme-cli's id-ctrl, id-ns, get-log, smart-log,
error-log, reset, and its lnvm plugin's identity (0xE2) and bad block table (0xF2) -- over
the user-space driver, answered as the wire structures of oxemu.wire (NVMe 1.2/1.3,
LightNVM 1.2). Nothing here knows the device: only the bus."""
import ctypes
import time

import numpy as np

from oxemu.wire import (BBT_MAGIC, CC, CSTS, AdminOpc, BbTableHeader, Cns, ErrorLogEntry, IdCtrl, IdNs,
                        LogPage, NvmId12, Reg, SmartLog)

from ..driver import ControllerFatal, NvmeDriver
from .errors import NvmeBlockError, NvmeIoError

__all__ = ["AdminStatusError", "MAX_LOG_NBYTES", "NSID_ALL", "admin_read", "bad_block_table", "error_log",
           "get_log", "identify_controller", "identify_namespace", "lun_ppa", "nvm_identity",
           "reset_controller", "smart_log", "u128", "u128_bytes"]

NSID_ALL = 0xFFFF_FFFF
MAX_LOG_NBYTES = 0x1000 * 4     # NUMD is 12 bits of dwords in NVMe 1.2: 16 KiB


class AdminStatusError(NvmeIoError):
    """An admin command completed with a non-zero NVMe status (`status`, DNR included)."""


def u128(v) -> int:
    """A 128-bit counter held as two little-endian u64 halves."""
    return int(v[0]) | (int(v[1]) << 64)


def u128_bytes(v) -> int:
    """A 128-bit counter held as 16 little-endian bytes (tnvmcap, nvmcap)."""
    return int.from_bytes(bytes(v), "little")


def admin_read(drv: NvmeDriver, what: str, opcode: int, nbytes: int, nsid: int = 0, cdw10: int = 0,
               cdw11: int = 0) -> bytes:
    """One admin command that returns `nbytes` of data (PRP1/PRP2 over a DMA buffer of its
    own); AdminStatusError when it completes with an error status."""
    buf = drv.pool.alloc(nbytes)
    try:
        p1, p2 = drv.prps(0, 0, buf.addr, nbytes)
        c = drv.admin(opcode, nsid=nsid, prp1=p1, prp2=p2, cdw10=cdw10, cdw11=cdw11, nbytes=nbytes)
        if c.status:
            raise AdminStatusError(c.status, what)
        return bytes(buf.array[:nbytes])
    finally:
        buf.free()


def identify_controller(drv: NvmeDriver) -> IdCtrl:
    return IdCtrl.from_buffer_copy(admin_read(drv, "identify controller", AdminOpc.IDENTIFY,
                                              ctypes.sizeof(IdCtrl), cdw10=Cns.CONTROLLER))


def identify_namespace(drv: NvmeDriver, nsid: int = 1) -> IdNs:
    return IdNs.from_buffer_copy(admin_read(drv, f"identify namespace {nsid}", AdminOpc.IDENTIFY,
                                            ctypes.sizeof(IdNs), nsid=nsid, cdw10=Cns.NAMESPACE))


def get_log(drv: NvmeDriver, lid: int, nbytes: int, nsid: int = NSID_ALL) -> bytes:
    """`nbytes` (1..16 KiB) of log page `lid`; the command reads whole dwords."""
    if not 0 < nbytes <= MAX_LOG_NBYTES:
        raise ValueError(f"log length {nbytes} is outside 1-{MAX_LOG_NBYTES} bytes")
    if not 0 <= lid <= 0xFF:
        raise ValueError(f"log id {lid} is outside 0-255")
    ndw = -(-nbytes // 4)
    raw = admin_read(drv, f"get log page 0x{lid:02x}", AdminOpc.GET_LOG_PAGE, ndw * 4, nsid=nsid,
                     cdw10=lid | ((ndw - 1) << 16))
    return raw[:nbytes]


def smart_log(drv: NvmeDriver, nsid: int = NSID_ALL) -> SmartLog:
    return SmartLog.from_buffer_copy(get_log(drv, LogPage.SMART, ctypes.sizeof(SmartLog), nsid))


def error_log(drv: NvmeDriver, entries: int, nsid: int = NSID_ALL) -> list[ErrorLogEntry]:
    """The newest `entries` error information entries (at most IdCtrl.elpe + 1)."""
    raw = get_log(drv, LogPage.ERROR, entries * ctypes.sizeof(ErrorLogEntry), nsid)
    return list((ErrorLogEntry * entries).from_buffer_copy(raw))


def nvm_identity(drv: NvmeDriver, nsid: int = 1) -> NvmId12:
    """The LightNVM 1.2 identity (admin 0xE2): AdminStatusError INVALID_OPCODE when the
    device is not open-channel."""
    return NvmId12.from_buffer_copy(admin_read(drv, "LightNVM identity", AdminOpc.NVM_IDENTITY,
                                               ctypes.sizeof(NvmId12), nsid=nsid))


def lun_ppa(ident: NvmId12, ch: int, lun: int) -> int:
    """The device PPA of a LUN (every other field 0), in the identity's PPA format."""
    f = ident.ppaf
    return (ch << f.ch_offset) | (lun << f.lun_offset)


def bad_block_table(drv: NvmeDriver, ident: NvmId12, ch: int, lun: int,
                    nsid: int = 1) -> tuple[BbTableHeader, np.ndarray]:
    """A LUN's bad block table (admin 0xF2): the header and one state byte per block-plane
    (index blk * planes + pl)."""
    g = ident.group
    nblks = g.num_blk * g.num_pln
    n = ctypes.sizeof(BbTableHeader) + nblks
    ppa = lun_ppa(ident, ch, lun)
    raw = admin_read(drv, f"get bad block table of ch {ch} lun {lun}", AdminOpc.NVM_GET_BBT, n,
                     nsid=nsid, cdw10=ppa & 0xFFFF_FFFF, cdw11=ppa >> 32)
    h = BbTableHeader.from_buffer_copy(raw)
    if h.tblid != BBT_MAGIC or h.tblks != nblks:
        raise NvmeBlockError(f"bad block table of ch {ch} lun {lun} from the device is malformed")
    return h, np.frombuffer(raw, dtype=np.uint8, offset=ctypes.sizeof(BbTableHeader)).copy()


def reset_controller(drv: NvmeDriver) -> NvmeDriver:
    """A controller reset, as Linux's nvme_reset_ctrl does it: CC.EN 1 -> 0 (the
    controller drops every queue; a device with a disk file flushes it), wait for
    CSTS.RDY to clear, then bring the controller up again. Returns the driver of the
    re-enabled controller; `drv`'s queues and buffers are gone with the reset."""
    m = drv.m
    m.reg_write32(Reg.CC, m.reg_read32(Reg.CC) & ~CC.EN)
    deadline = time.monotonic() + max(drv.cap_timeout, 1.0)
    while True:
        csts = m.reg_read32(Reg.CSTS)
        if csts & CSTS.CFS:
            raise ControllerFatal("controller fatal status (CSTS.CFS) during the reset")
        if not csts & CSTS.RDY:
            break
        if time.monotonic() > deadline:
            raise ControllerFatal("controller timed out clearing CSTS.RDY on reset")
    return NvmeDriver(m)

