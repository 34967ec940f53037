"""Identify controller/namespace and the LightNVM 1.2 identity, built from the device's
geometry and timing (SPEC 5)."""

from ..volt import Geometry, NandTiming
from ..wire import (MAX_PPAS, MPOS_DUAL_PLANE, MPOS_QUAD_PLANE, PCI_DEVICE_ID, PCI_VENDOR_ID,
                    AddrFormat, IdCtrl, IdNs, NvmId12, PAGE_SIZE)

FIRMWARE = b"OXPY0.1"
MODEL = b"OX Open-Channel SSD (Python)"


def mdts_for(max_nbytes: int) -> int:
    """MDTS in powers of two of the 4 KiB memory page."""
    return max(0, (max_nbytes // PAGE_SIZE).bit_length() - 1)


def identify_controller(serial: str, nn: int, max_nbytes: int, oncs: int = 0, vwc: int = 0) -> bytes:
    c = IdCtrl()
    c.vid = PCI_VENDOR_ID
    c.ssvid = PCI_DEVICE_ID
    c.sn = serial.encode()[:20].ljust(20)
    c.mn = MODEL[:40].ljust(40)
    c.fr = FIRMWARE[:8].ljust(8)
    c.mdts = mdts_for(max_nbytes)
    c.cntlid = 1
    c.ver = 0x00010200
    c.oacs = 0
    c.acl = 3
    c.aerl = 3
    c.lpa = 0
    c.elpe = 63
    c.sqes = 0x66
    c.cqes = 0x44
    c.maxcmd = 0
    c.nn = nn
    c.oncs = oncs
    c.vwc = vwc
    return bytes(c)


def identify_namespace(nlbas: int, lnvm: bool) -> bytes:
    ns = IdNs()
    ns.nsze = ns.ncap = ns.nuse = nlbas
    ns.nsfeat = 0x1 if not lnvm else 0      # thin provisioning: deallocate supported
    ns.nlbaf = 0
    ns.flbas = 0
    ns.lbaf[0].ds = 12                      # 4 KiB LBAs
    if lnvm:
        ns.vs[0] = 0x1                      # the Linux driver's "this is LightNVM" flag
    return bytes(ns)


def ppa_format(geo: Geometry) -> AddrFormat:
    f = geo.ppaf
    a = AddrFormat()
    a.ch_offset, a.ch_len = f["ch"]
    a.lun_offset, a.lun_len = f["lun"]
    a.pln_offset, a.pln_len = f["pl"]
    a.blk_offset, a.blk_len = f["blk"]
    a.pg_offset, a.pg_len = f["pg"]
    a.sect_offset, a.sect_len = f["sec"]
    return a


def nvm_identity(geo: Geometry, nand: NandTiming) -> bytes:
    """The nvme_nvm_id12 structure returned by admin opcode 0xE2."""
    i = NvmId12()
    i.ver_id = 1
    i.vmnt = 0
    i.cgrps = 1
    i.cap = 0
    i.dom = 0
    i.ppaf = ppa_format(geo)
    g = i.group
    g.mtype = 0                  # NAND flash
    g.fmtype = 1                 # MLC-like, pages in pairs
    g.num_ch = geo.nchannels
    g.num_lun = geo.nluns
    g.num_pln = geo.nplanes
    g.num_blk = geo.nblocks
    g.num_pg = geo.npages
    g.fpg_sz = geo.page_nbytes
    g.csecs = geo.sector_nbytes
    g.sos = geo.meta_nbytes
    g.trdt, g.trdm = nand.t_read_ns, nand.t_read_max_ns
    g.tprt, g.tprm = nand.t_prog_ns, nand.t_prog_max_ns
    g.tbet, g.tbem = nand.t_erase_ns, nand.t_erase_max_ns
    g.mpos = {1: 0, 2: MPOS_DUAL_PLANE, 4: MPOS_QUAD_PLANE | MPOS_DUAL_PLANE}[geo.nplanes]
    g.mccap = 0x1                # SLC mode supported
    g.cpar = 0
    return bytes(i)


MAX_IO_NBYTES = MAX_PPAS * 4096
