"""Open-channel (LightNVM 1.2) wire formats: identity, PPA format, bad block table.

Byte layouts follow the Linux driver (drivers/nvme/host/lightnvm.c, 4.12):
nvme_nvm_id12, nvme_nvm_addr_format, nvme_nvm_bb_tbl, nvme_nvm_ph_rw.
"""
import ctypes
import enum

__all__ = [
    "PMode", "Control", "BlockState", "AddrFormat", "NvmIdGroup", "NvmId12",
    "BbTableHeader", "BBT_MAGIC", "MAX_PPAS", "MPOS_DUAL_PLANE", "MPOS_QUAD_PLANE",
]

MAX_PPAS = 64                 # nlb is 0-based in 6 bits' worth: at most 64 addresses
BBT_MAGIC = b"BBLT"
MPOS_DUAL_PLANE = 0x020202    # mpos: dual-plane read/program/erase supported
MPOS_QUAD_PLANE = 0x040404


class PMode(enum.IntEnum):
    """Plane mode in the low bits of the command's control field (NVM_IO_*_ACCESS)."""
    SNGL = 0x0
    DUAL = 0x1
    QUAD = 0x2


class Control(enum.IntFlag):
    """Control field of nvme_nvm_ph_rw, above the plane mode bits."""
    PLANE_MASK = 0x3
    SUSPEND = 0x80
    SLC_MODE = 0x100
    SCRAMBLE = 0x200


class BlockState(enum.IntEnum):
    """Bad block table entry states (NVM_BLK_T_*)."""
    FREE = 0x0
    BAD = 0x1
    GRWN_BAD = 0x2
    DEV = 0x4
    HOST = 0x8


class _LE(ctypes.LittleEndianStructure):
    _pack_ = 1


class AddrFormat(_LE):
    """nvme_nvm_addr_format: bit offset and length of each PPA field."""
    _fields_ = [
        ("ch_offset", ctypes.c_uint8), ("ch_len", ctypes.c_uint8),
        ("lun_offset", ctypes.c_uint8), ("lun_len", ctypes.c_uint8),
        ("pln_offset", ctypes.c_uint8), ("pln_len", ctypes.c_uint8),
        ("blk_offset", ctypes.c_uint8), ("blk_len", ctypes.c_uint8),
        ("pg_offset", ctypes.c_uint8), ("pg_len", ctypes.c_uint8),
        ("sect_offset", ctypes.c_uint8), ("sect_len", ctypes.c_uint8),
        ("res", ctypes.c_uint8 * 4),
    ]


assert ctypes.sizeof(AddrFormat) == 16


class NvmIdGroup(_LE):
    """nvme_nvm_id12_grp: one configuration group, 960 bytes."""
    _fields_ = [
        ("mtype", ctypes.c_uint8), ("fmtype", ctypes.c_uint8), ("res16", ctypes.c_uint16),
        ("num_ch", ctypes.c_uint8), ("num_lun", ctypes.c_uint8), ("num_pln", ctypes.c_uint8),
        ("rsvd1", ctypes.c_uint8), ("num_blk", ctypes.c_uint16), ("num_pg", ctypes.c_uint16),
        ("fpg_sz", ctypes.c_uint16), ("csecs", ctypes.c_uint16), ("sos", ctypes.c_uint16),
        ("rsvd2", ctypes.c_uint16), ("trdt", ctypes.c_uint32), ("trdm", ctypes.c_uint32),
        ("tprt", ctypes.c_uint32), ("tprm", ctypes.c_uint32), ("tbet", ctypes.c_uint32),
        ("tbem", ctypes.c_uint32), ("mpos", ctypes.c_uint32), ("mccap", ctypes.c_uint32),
        ("cpar", ctypes.c_uint16), ("reserved", ctypes.c_uint8 * 906),
    ]


assert ctypes.sizeof(NvmIdGroup) == 960


class NvmId12(_LE):
    """nvme_nvm_id12: the 4096-byte answer to the 0xE2 identity command."""
    _fields_ = [
        ("ver_id", ctypes.c_uint8), ("vmnt", ctypes.c_uint8), ("cgrps", ctypes.c_uint8),
        ("res", ctypes.c_uint8), ("cap", ctypes.c_uint32), ("dom", ctypes.c_uint32),
        ("ppaf", AddrFormat), ("resv", ctypes.c_uint8 * 228),
        ("group", NvmIdGroup), ("resv2", ctypes.c_uint8 * 2880),
    ]


assert ctypes.sizeof(NvmId12) == 4096
assert NvmId12.ppaf.offset == 12 and NvmId12.group.offset == 256
assert NvmId12.group.offset + NvmIdGroup.num_ch.offset == 260
assert NvmId12.group.offset + NvmIdGroup.mpos.offset == 300
assert NvmId12.group.offset + NvmIdGroup.cpar.offset == 308


class BbTableHeader(_LE):
    """nvme_nvm_bb_tbl header; one state byte per block-plane follows (blk*planes+pl)."""
    _fields_ = [
        ("tblid", ctypes.c_char * 4), ("verid", ctypes.c_uint16), ("revid", ctypes.c_uint16),
        ("rvsd1", ctypes.c_uint32), ("tblks", ctypes.c_uint32), ("tfact", ctypes.c_uint32),
        ("tgrown", ctypes.c_uint32), ("tdresv", ctypes.c_uint32), ("thresv", ctypes.c_uint32),
        ("rsvd2", ctypes.c_uint32 * 8),
    ]


assert ctypes.sizeof(BbTableHeader) == 64
