"""NVMe Zoned Namespace command set (NVMe ZNS 1.1, TP 4053): zone states, actions and
attributes, the zone report's header and descriptors, and the ZNS identify structures.

The I/O opcodes (zone management send 0x79 and receive 0x7A, zone append 0x7D), the zone
statuses (0x1B8-0x1BF) and the identify CNS values live with the rest of NVMe in
wire.nvme; this module holds what only zones have. Command fields (ZNS 1.1, 3.3-3.4):

    zone management send (0x79): SLBA cdw10-11; cdw13 bits 0-7 the action (ZoneAction),
        bit 8 select all (every zone the action applies to; SLBA ignored)
    zone management receive (0x7A): SLBA cdw10-11; cdw12 the buffer's length in dwords,
        0-based; cdw13 bits 0-7 the action (ZoneReceiveAction), bits 8-15 the filter
        (ZoneReportFilter), bit 16 partial report (nr_zones counts the descriptors
        returned, not every zone that matches)
    zone append (0x7D): ZSLBA cdw10-11 (the zone's first LBA), NLB cdw12 bits 0-15
        (0-based); the completion's dwords 0-1 carry the LBA the data was written at
"""
import ctypes
import enum

__all__ = ["CSI_NVM", "CSI_ZNS", "IdCtrlZns", "IdNsZns", "LbaFormatExt", "NsIdDescType", "ZoneAction",
           "ZoneAttr", "ZoneDescriptor", "ZoneReceiveAction", "ZoneReportFilter", "ZoneReportHeader",
           "ZoneState", "ZoneType", "ZONE_MGMT_SELECT_ALL", "ZONE_REPORT_PARTIAL", "ZONE_WP_INVALID"]

CSI_NVM = 0x00                # command set identifiers (NVMe 2.0, figure 286)
CSI_ZNS = 0x02
ZONE_MGMT_SELECT_ALL = 1 << 8  # zone management send cdw13
ZONE_REPORT_PARTIAL = 1 << 16  # zone management receive cdw13
ZONE_WP_INVALID = 0xFFFF_FFFF_FFFF_FFFF   # a descriptor's wp when the zone has none (full, read-only, offline)


class NsIdDescType(enum.IntEnum):
    """Namespace identification descriptor types (identify CNS 0x03, NVMe 2.0 figure 315)."""
    EUI64 = 0x01
    NGUID = 0x02
    UUID = 0x03
    CSI = 0x04


class ZoneType(enum.IntEnum):
    SEQ_WRITE_REQUIRED = 0x2   # the only type ZNS defines


class ZoneState(enum.IntEnum):
    """Zone states (ZNS 1.1, 2.1.1): the zone descriptor's zs field holds them in bits 4-7."""
    EMPTY = 0x1                # ZSE: nothing written, write pointer at the zone start
    IMPLICITLY_OPEN = 0x2      # ZSIO: opened by a write
    EXPLICITLY_OPEN = 0x3      # ZSEO: opened by a zone management open
    CLOSED = 0x4               # ZSC: written part way, not open (an active resource still)
    READ_ONLY = 0xD            # ZSRO: the media can only be read (the device decided)
    FULL = 0xE                 # ZSF: written to its capacity, or finished
    OFFLINE = 0xF              # ZSO: neither readable nor writable


class ZoneAction(enum.IntEnum):
    """Zone send actions (zone management send cdw13 bits 0-7, ZNS 1.1 figure 40)."""
    CLOSE = 0x01
    FINISH = 0x02
    OPEN = 0x03
    RESET = 0x04
    OFFLINE = 0x05
    SET_ZONE_DESCRIPTOR_EXTENSION = 0x10


class ZoneReceiveAction(enum.IntEnum):
    """Zone receive actions (zone management receive cdw13 bits 0-7)."""
    REPORT = 0x00
    EXTENDED_REPORT = 0x01     # descriptors followed by their extensions


class ZoneReportFilter(enum.IntEnum):
    """Which zones a report lists (zone management receive cdw13 bits 8-15)."""
    ALL = 0x0
    EMPTY = 0x1
    IMPLICITLY_OPEN = 0x2
    EXPLICITLY_OPEN = 0x3
    CLOSED = 0x4
    FULL = 0x5
    READ_ONLY = 0x6
    OFFLINE = 0x7


class ZoneAttr(enum.IntFlag):
    """Zone attributes (the descriptor's za field, ZNS 1.1 figure 37)."""
    ZFC = 1 << 0               # zone finished by controller
    FZR = 1 << 1               # finish zone recommended
    RZR = 1 << 2               # reset zone recommended
    ZRWAV = 1 << 3             # zone random write area valid
    ZDEV = 1 << 7              # zone descriptor extension valid


class _LE(ctypes.LittleEndianStructure):
    _pack_ = 1


class ZoneDescriptor(_LE):
    """Zone descriptor (ZNS 1.1, figure 37), 64 bytes: zs = ZoneState << 4; wp is
    ZONE_WP_INVALID for zones without a write pointer (full, read-only, offline)."""
    _fields_ = [
        ("zt", ctypes.c_uint8), ("zs", ctypes.c_uint8), ("za", ctypes.c_uint8), ("zai", ctypes.c_uint8),
        ("rsvd4", ctypes.c_uint8 * 4),
        ("zcap", ctypes.c_uint64), ("zslba", ctypes.c_uint64), ("wp", ctypes.c_uint64),
        ("rsvd32", ctypes.c_uint8 * 32),
    ]


class ZoneReportHeader(_LE):
    """Report zones data structure header (ZNS 1.1, figure 36), 64 bytes; descriptors follow."""
    _fields_ = [("nr_zones", ctypes.c_uint64), ("rsvd8", ctypes.c_uint8 * 56)]


class LbaFormatExt(_LE):
    """LBA format extension (ZNS 1.1, figure 50), 16 bytes: the zone size in LBAs and the
    zone descriptor extension size in 64-byte units."""
    _fields_ = [("zsze", ctypes.c_uint64), ("zdes", ctypes.c_uint8), ("rsvd9", ctypes.c_uint8 * 7)]


class IdNsZns(_LE):
    """I/O command set specific identify namespace for ZNS (identify CNS 0x05, CSI 0x02;
    ZNS 1.1 figure 48), 4096 bytes. mar / mor: maximum active / open resources, 0-based,
    0xFFFFFFFF for no limit. zoc bit 0: variable zone capacity; ozcs bit 0: reads may
    cross zone boundaries."""
    _fields_ = [
        ("zoc", ctypes.c_uint16), ("ozcs", ctypes.c_uint16), ("mar", ctypes.c_uint32),
        ("mor", ctypes.c_uint32), ("rrl", ctypes.c_uint32), ("frl", ctypes.c_uint32),
        ("rrl1", ctypes.c_uint32), ("rrl2", ctypes.c_uint32), ("rrl3", ctypes.c_uint32),
        ("frl1", ctypes.c_uint32), ("frl2", ctypes.c_uint32), ("frl3", ctypes.c_uint32),
        ("numzrwa", ctypes.c_uint32), ("zrwafg", ctypes.c_uint16), ("zrwasz", ctypes.c_uint16),
        ("zrwacap", ctypes.c_uint8), ("rsvd53", ctypes.c_uint8 * 2763),
        ("lbafe", LbaFormatExt * 16), ("rsvd3072", ctypes.c_uint8 * 768), ("vs", ctypes.c_uint8 * 256),
    ]


class IdCtrlZns(_LE):
    """I/O command set specific identify controller for ZNS (identify CNS 0x06, CSI 0x02;
    ZNS 1.1 figure 47), 4096 bytes: zasl, the zone append size limit, a power of two in
    units of the minimum memory page (0: MDTS)."""
    _fields_ = [("zasl", ctypes.c_uint8), ("rsvd1", ctypes.c_uint8 * 4095)]


assert ctypes.sizeof(ZoneDescriptor) == 64 and ZoneDescriptor.zslba.offset == 16 and ZoneDescriptor.wp.offset == 24
assert ctypes.sizeof(ZoneReportHeader) == 64 and ctypes.sizeof(LbaFormatExt) == 16
assert ctypes.sizeof(IdNsZns) == 4096 and IdNsZns.lbafe.offset == 2816 and IdNsZns.vs.offset == 3840
assert IdNsZns.numzrwa.offset == 44 and ctypes.sizeof(IdCtrlZns) == 4096
