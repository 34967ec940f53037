"""Open-Channel SSD 2.0 wire formats: geometry, chunk information and notification logs,
vector commands (Open-Channel SSD specification revision 2.0, January 2018).

Byte layouts follow the Linux driver (drivers/nvme/host/lightnvm.c, 4.17-5.14:
nvme_nvm_id20, nvme_nvm_id20_addrf, nvme_nvm_chk_meta) and SPDK's
include/spdk/nvme_ocssd_spec.h (spdk_ocssd_geometry_data, spdk_ocssd_chunk_information,
spdk_ocssd_chunk_notification). The 2.0 statuses live with the others in nvme.Status.

Addresses are logical block addresses (LBAs) whose fields, from bit 0 up, are the
logical block within its chunk, the chunk, the parallel unit (PU) and the group; the
geometry gives each field's length (the Linux driver derives the offsets the same way).
"""
import ctypes
import enum

import numpy as np

__all__ = [
    "OCSSD2_MAJOR", "OCSSD2_MINOR", "MAX_LBAS", "ChunkOpc", "Ocssd2LogPage", "ChunkState", "ChunkType",
    "Mccap", "NotifyState", "NotifyMask", "AsyncEventType", "VectorFlags", "LbaFormat20", "Geometry20",
    "ChunkDescriptor", "CHUNK_DESC_DTYPE", "ChunkNotification", "async_event_result",
]

OCSSD2_MAJOR = 2              # Geometry20.mjr: the byte 1.2's ver_id shares (Linux tells them apart by it)
OCSSD2_MINOR = 0
MAX_LBAS = 64                 # LBAs in one vector command (the 64-bit completion bitmap)


class ChunkOpc(enum.IntEnum):
    """Vector I/O commands (spec 2.2; the same opcodes as 1.2's physical commands)."""
    VECTOR_RESET = 0x90
    VECTOR_WRITE = 0x91
    VECTOR_READ = 0x92
    VECTOR_COPY = 0x93


class Ocssd2LogPage(enum.IntEnum):
    """Log pages the 2.0 device adds (Get Log Page, admin 0x02; offsets honoured)."""
    CHUNK_INFO = 0xCA              # one ChunkDescriptor per chunk, group-major (NVM_LOG_CHUNK_INFO)
    CHUNK_NOTIFICATION = 0xD0      # ChunkNotification entries, newest first


class ChunkState(enum.IntFlag):
    """Chunk state (ChunkDescriptor.cs; NVM_CHK_ST_*)."""
    FREE = 1 << 0
    CLOSED = 1 << 1
    OPEN = 1 << 2
    OFFLINE = 1 << 3


class ChunkType(enum.IntFlag):
    """Chunk type (ChunkDescriptor.ct; NVM_CHK_TP_*)."""
    SEQ_WRITE = 1 << 0             # written sequentially at the write pointer
    RND_WRITE = 1 << 1
    SIZE_DEVIATE = 1 << 4          # cnlb differs from the geometry's clba


class Mccap(enum.IntFlag):
    """Media and controller capabilities (Geometry20.mccap)."""
    VECTOR_COPY = 1 << 0           # the vector chunk copy command is supported
    MULTI_RESET = 1 << 1           # a free chunk may be reset again


class NotifyState(enum.IntFlag):
    """What a chunk notification reports (ChunkNotification.state)."""
    ERROR_RATE_LOW = 1 << 0
    ERROR_RATE_MEDIUM = 1 << 1
    ERROR_RATE_HIGH = 1 << 2       # reads needed retries: refresh the data
    UNRECOVERABLE = 1 << 3         # a read could not be corrected
    REFRESHED = 1 << 4
    WIT_EXCEEDED = 1 << 8          # the wear-level index left the average by more than wit


class NotifyMask(enum.IntFlag):
    """What a notification's LBA covers (ChunkNotification.mask)."""
    LOGICAL_BLOCK = 1 << 0
    CHUNK = 1 << 1
    PARALLEL_UNIT = 1 << 2


class AsyncEventType(enum.IntEnum):
    """Asynchronous event type (completion dword 0 bits 2:0 of an AER; NVMe 1.3 5.2)."""
    ERROR = 0
    SMART = 1
    NOTICE = 2
    IO_COMMAND_SET = 6
    VENDOR = 7                     # the 2.0 chunk notification: log page 0xD0


class VectorFlags(enum.IntFlag):
    """Flags in cdw12 of a vector command, above the 0-based LBA count (bits 0-15)."""
    LIMITED_RETRY = 1 << 31


def async_event_result(kind: AsyncEventType, log_page: int, info: int = 0) -> int:
    """Completion dword 0 of an asynchronous event request: type, info, log page to read."""
    return int(kind) | (info & 0xFF) << 8 | (log_page & 0xFF) << 16


class _LE(ctypes.LittleEndianStructure):
    _pack_ = 1


class LbaFormat20(_LE):
    """nvme_nvm_id20_addrf: bit lengths of the LBA's fields (offsets follow, sector first)."""
    _fields_ = [("grp_len", ctypes.c_uint8), ("pu_len", ctypes.c_uint8), ("chk_len", ctypes.c_uint8),
                ("lba_len", ctypes.c_uint8), ("resv", ctypes.c_uint8 * 4)]


assert ctypes.sizeof(LbaFormat20) == 8


class Geometry20(_LE):
    """nvme_nvm_id20: the 4096-byte answer to the geometry command (admin 0xE2), 2.0."""
    _fields_ = [
        ("mjr", ctypes.c_uint8), ("mnr", ctypes.c_uint8), ("resv", ctypes.c_uint8 * 6),
        ("lbaf", LbaFormat20),
        ("mccap", ctypes.c_uint32), ("resv2", ctypes.c_uint8 * 12),
        ("wit", ctypes.c_uint8), ("resv3", ctypes.c_uint8 * 31),
        # geometry
        ("num_grp", ctypes.c_uint16), ("num_pu", ctypes.c_uint16), ("num_chk", ctypes.c_uint32),
        ("clba", ctypes.c_uint32), ("resv4", ctypes.c_uint8 * 52),
        # write data requirements
        ("ws_min", ctypes.c_uint32), ("ws_opt", ctypes.c_uint32), ("mw_cunits", ctypes.c_uint32),
        ("maxoc", ctypes.c_uint32), ("maxocpu", ctypes.c_uint32), ("resv5", ctypes.c_uint8 * 44),
        # performance related metrics (ns)
        ("trdt", ctypes.c_uint32), ("trdm", ctypes.c_uint32), ("twrt", ctypes.c_uint32),
        ("twrm", ctypes.c_uint32), ("tcrst", ctypes.c_uint32), ("tcrsm", ctypes.c_uint32),
        ("resv6", ctypes.c_uint8 * 40),
        ("resv7", ctypes.c_uint8 * 2816), ("vs", ctypes.c_uint8 * 1024),
    ]


assert ctypes.sizeof(Geometry20) == 4096
assert Geometry20.lbaf.offset == 8 and Geometry20.mccap.offset == 16 and Geometry20.wit.offset == 32
assert Geometry20.num_grp.offset == 64 and Geometry20.ws_min.offset == 128 and Geometry20.trdt.offset == 192


class ChunkDescriptor(_LE):
    """nvme_nvm_chk_meta: one entry of the chunk information log page (0xCA), 32 bytes."""
    _fields_ = [("cs", ctypes.c_uint8), ("ct", ctypes.c_uint8), ("wli", ctypes.c_uint8),
                ("rsvd", ctypes.c_uint8 * 5), ("slba", ctypes.c_uint64), ("cnlb", ctypes.c_uint64),
                ("wp", ctypes.c_uint64)]


assert ctypes.sizeof(ChunkDescriptor) == 32

# The same entry as a numpy record, for a whole log page at once.
CHUNK_DESC_DTYPE = np.dtype([("cs", "u1"), ("ct", "u1"), ("wli", "u1"), ("rsvd", "u1", 5),
                             ("slba", "<u8"), ("cnlb", "<u8"), ("wp", "<u8")])
assert CHUNK_DESC_DTYPE.itemsize == ctypes.sizeof(ChunkDescriptor)


class ChunkNotification(_LE):
    """spdk_ocssd_chunk_notification: one entry of the chunk notification log (0xD0), 64 bytes.
    `nc` counts notifications from 1; 0 marks an unused entry."""
    _fields_ = [("nc", ctypes.c_uint64), ("lba", ctypes.c_uint64), ("nsid", ctypes.c_uint32),
                ("state", ctypes.c_uint16), ("mask", ctypes.c_uint8), ("rsvd", ctypes.c_uint8 * 9),
                ("nlb", ctypes.c_uint16), ("rsvd2", ctypes.c_uint8 * 30)]


assert ctypes.sizeof(ChunkNotification) == 64 and ChunkNotification.nlb.offset == 32
