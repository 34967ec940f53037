"""NVMe 1.2 registers, opcodes, status codes and the SQE/CQE/identify layouts."""
import ctypes
import enum
import struct

import numpy as np

__all__ = [
    "Reg", "CAP", "CC", "CSTS", "SHN", "SHST", "DOORBELL_BASE", "doorbell_offset",
    "AdminOpc", "NvmOpc", "FeatureId", "LogPage", "Cns", "Status", "status_name",
    "describe_status", "STATUS_REASONS",
    "SQE", "SQE_SIZE", "CQE", "CQE_SIZE", "PAGE_SIZE", "IdCtrl", "IdNs", "PowerStateDesc",
    "ErrorLogEntry",
    "PCI_VENDOR_ID", "PCI_DEVICE_ID", "PciCfg",
]

PAGE_SIZE = 4096          # CC.MPS = 0 -> 4 KiB memory pages; PRPs are in these units
PCI_VENDOR_ID = 0x1D1D    # CNEX Labs: the id Linux used to spot an open-channel device
PCI_DEVICE_ID = 0x1F1F


class PciCfg(enum.IntEnum):
    """The few PCI configuration-space offsets a driver reads before touching BAR0."""
    VENDOR_ID = 0x00
    DEVICE_ID = 0x02
    CLASS_CODE = 0x09      # 3 bytes: 0x010802 = mass storage / NVM / NVMe


class Reg(enum.IntEnum):
    """Controller register offsets in BAR0 (NVMe 1.2, section 3.1)."""
    CAP = 0x00      # 64-bit
    VS = 0x08
    INTMS = 0x0C
    INTMC = 0x10
    CC = 0x14
    CSTS = 0x1C
    NSSR = 0x20
    AQA = 0x24
    ASQ = 0x28      # 64-bit
    ACQ = 0x30      # 64-bit


DOORBELL_BASE = 0x1000


def doorbell_offset(qid: int, is_cq: bool, dstrd: int = 0) -> int:
    """Offset of a queue's doorbell: 0x1000 + (2*qid + is_cq) * (4 << CAP.DSTRD)."""
    return DOORBELL_BASE + (2 * qid + int(is_cq)) * (4 << dstrd)


class CAP:
    """Field positions of the 64-bit capabilities register."""
    MQES_SHIFT, MQES_MASK = 0, 0xFFFF          # max queue entries, 0-based
    CQR = 1 << 16                              # contiguous queues required
    TO_SHIFT, TO_MASK = 24, 0xFF               # ready timeout, 500 ms units
    DSTRD_SHIFT, DSTRD_MASK = 32, 0xF
    NSSRS = 1 << 36
    CSS_SHIFT, CSS_MASK = 37, 0xFF             # bit 0: NVM command set
    MPSMIN_SHIFT, MPSMIN_MASK = 48, 0xF
    MPSMAX_SHIFT, MPSMAX_MASK = 52, 0xF


class CC(enum.IntFlag):
    """Controller configuration (NVMe 1.2, 3.1.5); multi-bit fields via the shifts."""
    EN = 1 << 0
    # CSS bits 4-6, MPS bits 7-10, AMS bits 11-13, SHN bits 14-15,
    # IOSQES bits 16-19, IOCQES bits 20-23.

    CSS_SHIFT = 4
    MPS_SHIFT = 7
    AMS_SHIFT = 11
    SHN_SHIFT = 14
    IOSQES_SHIFT = 16
    IOCQES_SHIFT = 20


class SHN(enum.IntEnum):
    NONE = 0
    NORMAL = 1
    ABRUPT = 2


class CSTS(enum.IntFlag):
    RDY = 1 << 0
    CFS = 1 << 1
    SHST_SHIFT = 2          # bits 2-3
    NSSRO = 1 << 4


class SHST(enum.IntEnum):
    NORMAL = 0
    OCCURRING = 1
    COMPLETE = 2


class AdminOpc(enum.IntEnum):
    DELETE_SQ = 0x00
    CREATE_SQ = 0x01
    GET_LOG_PAGE = 0x02
    DELETE_CQ = 0x04
    CREATE_CQ = 0x05
    IDENTIFY = 0x06
    ABORT = 0x08
    SET_FEATURES = 0x09
    GET_FEATURES = 0x0A
    # LightNVM 1.2 vendor admin commands (Linux nvme_nvm_admin_opcode)
    NVM_IDENTITY = 0xE2
    NVM_SET_BBT = 0xF1
    NVM_GET_BBT = 0xF2
    # OX vendor commands (NVMe reserves 0xC0-0xFF for vendors)
    OX_SET_TARGET = 0xC1      # record the host target in the media label (wire.ox)
    OX_IDLE = 0xC2            # the host is idle: the device mode may run background work (result 1: more)


class NvmOpc(enum.IntEnum):
    """I/O opcodes: the NVM command set and the open-channel physical commands."""
    FLUSH = 0x00
    WRITE = 0x01
    READ = 0x02
    DSM = 0x09
    PH_ERASE = 0x90
    PH_WRITE = 0x91
    PH_READ = 0x92
    # NVMe Zoned Namespace command set (ZNS 1.1, TP 4053; wire.zns)
    ZONE_MGMT_SEND = 0x79
    ZONE_MGMT_RECV = 0x7A
    ZONE_APPEND = 0x7D


class FeatureId(enum.IntEnum):
    ARBITRATION = 0x01
    POWER_MGMT = 0x02
    TEMP_THRESH = 0x04
    ERR_RECOVERY = 0x05
    VOLATILE_WC = 0x06
    NUM_QUEUES = 0x07
    IRQ_COALESCE = 0x08
    ASYNC_EVENT = 0x0B


class LogPage(enum.IntEnum):
    ERROR = 0x01
    SMART = 0x02
    FW_SLOT = 0x03
    OX_MEDIA_LABEL = 0xC0     # vendor: the media label (wire.ox.MediaLabel)
    OX_FTL = 0xC1             # vendor: the device FTL's counters (wire.ox.FtlLog), AppNVM only


class Cns(enum.IntEnum):
    NAMESPACE = 0x00
    CONTROLLER = 0x01
    NS_ACTIVE_LIST = 0x02
    NS_ID_DESCRIPTORS = 0x03      # namespace identification descriptors (the CSI one: wire.zns)
    CS_NAMESPACE = 0x05           # I/O command set specific identify namespace (CSI in cdw11 bits 24-31)
    CS_CONTROLLER = 0x06          # I/O command set specific identify controller


class Status(enum.IntEnum):
    """Status field of a completion (bits 1-15 of CQE dword 3), DNR bit included."""
    SUCCESS = 0x0000
    INVALID_OPCODE = 0x0001
    INVALID_FIELD = 0x0002
    CID_CONFLICT = 0x0003
    DATA_XFER_ERROR = 0x0004
    ABORTED_POWER_LOSS = 0x0005
    INTERNAL = 0x0006
    ABORT_REQ = 0x0007
    INVALID_NS = 0x000B
    PRP_OFFSET_INVALID = 0x0013
    NS_WRITE_PROTECTED = 0x0020
    LBA_RANGE = 0x0080
    CAP_EXCEEDED = 0x0081
    NS_NOT_READY = 0x0082
    # command specific (SCT 1)
    INVALID_CQ = 0x0100
    INVALID_QID = 0x0101
    INVALID_QSIZE = 0x0102
    INVALID_LOG_PAGE = 0x0109
    FEATURE_NOT_SAVEABLE = 0x010D
    # media errors (SCT 2)
    WRITE_FAULT = 0x0280
    UNRECOVERED_READ = 0x0281
    # open-channel 1.2 (Linux NVM_RSP_*; DNR set)
    NVM_FAIL_CRC = 0x4004
    NVM_FAIL_WRITE = 0x40FF
    NVM_FAIL_ECC = 0x4281
    NVM_EMPTY_PAGE = 0x42FF
    NVM_WARN_HIGH_ECC = 0x4700
    # NVMe Zoned Namespace command set (ZNS 1.1, figure 26; command specific, SCT 1)
    ZONE_BOUNDARY_ERROR = 0x01B8
    ZONE_FULL = 0x01B9
    ZONE_READ_ONLY = 0x01BA
    ZONE_OFFLINE = 0x01BB
    ZONE_INVALID_WRITE = 0x01BC
    ZONE_TOO_MANY_ACTIVE = 0x01BD
    ZONE_TOO_MANY_OPEN = 0x01BE
    ZONE_INVALID_TRANSITION = 0x01BF
    DNR = 0x4000


# One line per status: why a command completes with it.
STATUS_REASONS = {
    Status.SUCCESS: "the command completed",
    Status.INVALID_OPCODE: "the opcode is not supported in this device mode",
    Status.INVALID_FIELD: "a field of the command is invalid (address outside the geometry, "
                          "too many addresses, plane mode not matching, or a write that does not "
                          "cover whole pages)",
    Status.CID_CONFLICT: "the command id is already in use on that queue",
    Status.DATA_XFER_ERROR: "a data or list pointer lies outside guest RAM",
    Status.ABORTED_POWER_LOSS: "the command was aborted by a power loss",
    Status.INTERNAL: "the device failed internally (a device bug; see its log)",
    Status.ABORT_REQ: "the command was aborted on request",
    Status.INVALID_NS: "the namespace id is not 1",
    Status.PRP_OFFSET_INVALID: "a PRP entry has an invalid offset",
    Status.NS_WRITE_PROTECTED: "the media is read-only (its spare blocks are used up, or it was opened read-only)",
    Status.LBA_RANGE: "the LBA range lies beyond the namespace",
    Status.CAP_EXCEEDED: "the device has no room left for the data (capacity exceeded)",
    Status.NS_NOT_READY: "the namespace is not ready",
    Status.INVALID_CQ: "the completion queue id is invalid",
    Status.INVALID_QID: "the queue id is invalid or in use",
    Status.INVALID_QSIZE: "the queue size is invalid",
    Status.INVALID_LOG_PAGE: "the log page is not supported",
    Status.FEATURE_NOT_SAVEABLE: "the feature cannot be saved",
    Status.WRITE_FAULT: "the media could not be written",
    Status.UNRECOVERED_READ: "the media could not be read (uncorrectable error)",
    Status.NVM_FAIL_CRC: "the data failed its CRC check",
    Status.NVM_FAIL_WRITE: "program or erase failed: the page was not the next erased page "
                           "of its block, or the block is bad",
    Status.NVM_FAIL_ECC: "uncorrectable ECC error: the sector cannot be read",
    Status.NVM_EMPTY_PAGE: "the page has not been written since its block was erased",
    Status.NVM_WARN_HIGH_ECC: "read succeeded with a high ECC error count (refresh the data)",
    # NVMe Zoned Namespace command set
    Status.ZONE_BOUNDARY_ERROR: "the write (or a read, where reads may not cross zones) crosses the end of "
                                "its zone's writable capacity",
    Status.ZONE_FULL: "the zone is full: written to its capacity or finished",
    Status.ZONE_READ_ONLY: "the zone is read-only",
    Status.ZONE_OFFLINE: "the zone is offline: it can be neither read nor written",
    Status.ZONE_INVALID_WRITE: "the write does not start at the zone's write pointer",
    Status.ZONE_TOO_MANY_ACTIVE: "opening the zone would exceed the maximum number of active zones",
    Status.ZONE_TOO_MANY_OPEN: "opening the zone would exceed the maximum number of open zones",
    Status.ZONE_INVALID_TRANSITION: "the zone action is not allowed from the zone's state",
}


def _status(status: int):
    for code in (status, status & ~Status.DNR):
        try:
            return Status(code)
        except ValueError:
            continue
    return None


def status_name(status: int) -> str:
    """'0x4002 (INVALID_FIELD)': the code and, when known, its name."""
    s = _status(status)
    return f"0x{status:04X} ({s.name})" if s is not None else f"0x{status:04X}"


def describe_status(status: int) -> str:
    """'INVALID_FIELD (0x4002): <reason>', the form errors are reported in."""
    s = _status(status)
    if s is None:
        return f"unknown status (0x{status:04X})"
    return f"{s.name} (0x{status:04X}): {STATUS_REASONS.get(s, 'no description')}"


# Submission queue entry (NVMe 1.2, 4.2): opcode, flags, cid, nsid, cdw2, cdw3,
# mptr, prp1, prp2, cdw10..cdw15. The open-channel nvme_nvm_ph_rw overlays
# cdw10..15 as spba u64 @40, nlb u16 @48, control u16 @50, dsmgmt u32 @52.
SQE = struct.Struct("<BBHIIIQQQIIIIII")
SQE_SIZE = 64
assert SQE.size == SQE_SIZE
SQE_PH = struct.Struct("<BBHIIIQQQQHHIQ")   # nvme_nvm_ph_rw / nvme_nvm_erase_blk
assert SQE_PH.size == SQE_SIZE
__all__.append("SQE_PH")

# Completion queue entry (4.6): dw0-dw1 as one 64-bit result (the open-channel
# failed-address bitmap), sq head, sq id, cid, status<<1 | phase.
CQE = struct.Struct("<QHHHH")
CQE_SIZE = 16
assert CQE.size == CQE_SIZE

# The same two layouts as numpy records, for a ring read or written many entries at once.
SQE_DTYPE = np.dtype([("opcode", "u1"), ("flags", "u1"), ("cid", "<u2"), ("nsid", "<u4"),
                      ("cdw2", "<u4"), ("cdw3", "<u4"), ("mptr", "<u8"), ("prp1", "<u8"),
                      ("prp2", "<u8"), ("cdw10", "<u4"), ("cdw11", "<u4"), ("cdw12", "<u4"),
                      ("cdw13", "<u4"), ("cdw14", "<u4"), ("cdw15", "<u4")])
assert SQE_DTYPE.itemsize == SQE_SIZE
CQE_DTYPE = np.dtype([("result", "<u8"), ("sq_head", "<u2"), ("sq_id", "<u2"), ("cid", "<u2"),
                      ("status", "<u2")])
assert CQE_DTYPE.itemsize == CQE_SIZE
__all__ += ["SQE_DTYPE", "CQE_DTYPE"]


class _LE(ctypes.LittleEndianStructure):
    _pack_ = 1


class PowerStateDesc(_LE):
    """Power state descriptor (NVMe 1.3, figure 113), 32 bytes; nvme-cli's names."""
    _fields_ = [
        ("max_power", ctypes.c_uint16), ("rsvd2", ctypes.c_uint8), ("flags", ctypes.c_uint8),
        ("entry_lat", ctypes.c_uint32), ("exit_lat", ctypes.c_uint32),
        ("read_tput", ctypes.c_uint8), ("read_lat", ctypes.c_uint8),
        ("write_tput", ctypes.c_uint8), ("write_lat", ctypes.c_uint8),
        ("idle_power", ctypes.c_uint16), ("idle_scale", ctypes.c_uint8), ("rsvd19", ctypes.c_uint8),
        ("active_power", ctypes.c_uint16), ("active_work_scale", ctypes.c_uint8),
        ("rsvd23", ctypes.c_uint8 * 9),
    ]


assert ctypes.sizeof(PowerStateDesc) == 32


class IdCtrl(_LE):
    """Identify controller data structure (NVMe 1.2, figure 90, with the fields NVMe 1.3
    named in its reserved bytes), the names Linux's nvme.h and nvme-cli use."""
    _fields_ = [
        ("vid", ctypes.c_uint16), ("ssvid", ctypes.c_uint16),
        ("sn", ctypes.c_char * 20), ("mn", ctypes.c_char * 40), ("fr", ctypes.c_char * 8),
        ("rab", ctypes.c_uint8), ("ieee", ctypes.c_uint8 * 3), ("cmic", ctypes.c_uint8),
        ("mdts", ctypes.c_uint8), ("cntlid", ctypes.c_uint16), ("ver", ctypes.c_uint32),
        ("rtd3r", ctypes.c_uint32), ("rtd3e", ctypes.c_uint32), ("oaes", ctypes.c_uint32),
        ("ctratt", ctypes.c_uint32), ("rsvd100", ctypes.c_uint8 * 156),
        ("oacs", ctypes.c_uint16), ("acl", ctypes.c_uint8), ("aerl", ctypes.c_uint8),
        ("frmw", ctypes.c_uint8), ("lpa", ctypes.c_uint8), ("elpe", ctypes.c_uint8),
        ("npss", ctypes.c_uint8), ("avscc", ctypes.c_uint8), ("apsta", ctypes.c_uint8),
        ("wctemp", ctypes.c_uint16), ("cctemp", ctypes.c_uint16), ("mtfa", ctypes.c_uint16),
        ("hmpre", ctypes.c_uint32), ("hmmin", ctypes.c_uint32),
        ("tnvmcap", ctypes.c_uint8 * 16), ("unvmcap", ctypes.c_uint8 * 16), ("rpmbs", ctypes.c_uint32),
        ("edstt", ctypes.c_uint16), ("dsto", ctypes.c_uint8), ("fwug", ctypes.c_uint8),
        ("kas", ctypes.c_uint16), ("hctma", ctypes.c_uint16), ("mntmt", ctypes.c_uint16),
        ("mxtmt", ctypes.c_uint16), ("sanicap", ctypes.c_uint32), ("rsvd332", ctypes.c_uint8 * 180),
        ("sqes", ctypes.c_uint8), ("cqes", ctypes.c_uint8), ("maxcmd", ctypes.c_uint16),
        ("nn", ctypes.c_uint32), ("oncs", ctypes.c_uint16), ("fuses", ctypes.c_uint16),
        ("fna", ctypes.c_uint8), ("vwc", ctypes.c_uint8), ("awun", ctypes.c_uint16),
        ("awupf", ctypes.c_uint16), ("nvscc", ctypes.c_uint8), ("rsvd531", ctypes.c_uint8),
        ("acwu", ctypes.c_uint16), ("rsvd534", ctypes.c_uint8 * 2), ("sgls", ctypes.c_uint32),
        ("rsvd540", ctypes.c_uint8 * 228), ("subnqn", ctypes.c_char * 256),
        ("rsvd1024", ctypes.c_uint8 * 768),
        ("ioccsz", ctypes.c_uint32), ("iorcsz", ctypes.c_uint32), ("icdoff", ctypes.c_uint16),
        ("ctrattr", ctypes.c_uint8), ("msdbd", ctypes.c_uint8), ("rsvd1804", ctypes.c_uint8 * 244),
        ("psd", PowerStateDesc * 32), ("vs", ctypes.c_uint8 * 1024),
    ]


assert ctypes.sizeof(IdCtrl) == 4096 and IdCtrl.sqes.offset == 512 and IdCtrl.nn.offset == 516
assert IdCtrl.avscc.offset == 264 and IdCtrl.sanicap.offset == 328 and IdCtrl.subnqn.offset == 768
assert IdCtrl.ioccsz.offset == 1792 and IdCtrl.psd.offset == 2048 and IdCtrl.vs.offset == 3072


class LbaFormat(_LE):
    _fields_ = [("ms", ctypes.c_uint16), ("ds", ctypes.c_uint8), ("rp", ctypes.c_uint8)]


class IdNs(_LE):
    """Identify namespace data structure (NVMe 1.2, figure 92, with NVMe 1.4's write
    granularity fields); vs[0] = 1 flags LightNVM."""
    _fields_ = [
        ("nsze", ctypes.c_uint64), ("ncap", ctypes.c_uint64), ("nuse", ctypes.c_uint64),
        ("nsfeat", ctypes.c_uint8), ("nlbaf", ctypes.c_uint8), ("flbas", ctypes.c_uint8),
        ("mc", ctypes.c_uint8), ("dpc", ctypes.c_uint8), ("dps", ctypes.c_uint8),
        ("nmic", ctypes.c_uint8), ("rescap", ctypes.c_uint8), ("fpi", ctypes.c_uint8),
        ("rsvd33", ctypes.c_uint8), ("nawun", ctypes.c_uint16), ("nawupf", ctypes.c_uint16),
        ("nacwu", ctypes.c_uint16), ("nabsn", ctypes.c_uint16), ("nabo", ctypes.c_uint16),
        ("nabspf", ctypes.c_uint16), ("noiob", ctypes.c_uint16), ("nvmcap", ctypes.c_uint8 * 16),
        # NVMe 1.4: preferred write granularity and alignment, optimal write size (0-based LBAs)
        ("npwg", ctypes.c_uint16), ("npwa", ctypes.c_uint16), ("npdg", ctypes.c_uint16),
        ("npda", ctypes.c_uint16), ("nows", ctypes.c_uint16),
        ("rsvd74", ctypes.c_uint8 * 30), ("nguid", ctypes.c_uint8 * 16), ("eui64", ctypes.c_uint8 * 8),
        ("lbaf", LbaFormat * 16), ("rsvd192", ctypes.c_uint8 * 192), ("vs", ctypes.c_uint8 * 3712),
    ]


assert ctypes.sizeof(IdNs) == 4096 and IdNs.lbaf.offset == 128 and IdNs.vs.offset == 384
assert IdNs.npwg.offset == 64 and IdNs.nows.offset == 72 and IdNs.nguid.offset == 104


class ErrorLogEntry(_LE):
    """Error information log entry (NVMe 1.3, figure 93), 64 bytes; log page 0x01 holds
    up to IdCtrl.elpe + 1 of them, newest first. status_field carries the status as a
    completion does (bits 1-15; bit 0 the phase tag)."""
    _fields_ = [
        ("error_count", ctypes.c_uint64), ("sqid", ctypes.c_uint16), ("cmdid", ctypes.c_uint16),
        ("status_field", ctypes.c_uint16), ("parm_error_location", ctypes.c_uint16),
        ("lba", ctypes.c_uint64), ("nsid", ctypes.c_uint32), ("vs", ctypes.c_uint8),
        ("rsvd29", ctypes.c_uint8 * 3), ("cs", ctypes.c_uint64), ("rsvd40", ctypes.c_uint8 * 24),
    ]


assert ctypes.sizeof(ErrorLogEntry) == 64 and ErrorLogEntry.cs.offset == 32
