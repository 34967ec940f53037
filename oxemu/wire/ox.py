"""OX's vendor extensions of the wire: the media label and the SMART / health log layout.

The media label says what the media holds and for whom: the device mode that formatted
it, the host target using it (pblk: its LUN range and instance uuid, as pblk's smeta
carries the uuid in every line header), the exported capacity, and lifetime counters
that NVMe defines as surviving power cycles. The device keeps it in its media file and
answers it as vendor log page 0xC0; a host records its target with the vendor admin
command 0xC1 (PRP1 -> a MediaLabel whose target fields are used).
"""
import ctypes
import enum

__all__ = ["MediaMode", "Interface", "TargetKind", "MediaLabel", "LABEL_MAGIC", "LABEL_VERSION",
           "CriticalWarning", "SmartLog", "SMART_DATA_UNIT_NBYTES", "FtlLog"]

LABEL_MAGIC = int.from_bytes(b"OXLB", "little")
LABEL_VERSION = 1
SMART_DATA_UNIT_NBYTES = 512 * 1000     # a SMART data unit: 1000 sectors of 512 bytes


class MediaMode(enum.IntEnum):
    """Which device mode wrote the media."""
    BLANK = 0            # nothing written since the media was made or formatted
    OPEN_CHANNEL = 1     # open-channel (LightNVM 1.2, lnvm > 0): the host places data
    APPNVM = 2           # the device-side FTL behind a plain namespace (lnvm = 0)
    DEVICE_FTL = 3       # a plug-in FTL (oxftl API) inside the device behind a plain namespace
    ZONED = 4            # a zoned namespace (ZNS): the host places data in zones


class Interface(enum.IntEnum):
    """The host interface the media was written through (open-channel's spec version, or
    zones); a device speaking another one refuses the media."""
    OCSSD_1_2 = 0        # LightNVM / Open-Channel SSD 1.2 (and the plain namespaces of AppNVM)
    OCSSD_2_0 = 1        # Open-Channel SSD 2.0: chunks
    ZNS = 2              # NVMe Zoned Namespaces


class TargetKind(enum.IntEnum):
    """The host target recorded on open-channel media."""
    NONE = 0
    PBLK = 1
    FTL = 2              # a plug-in FTL (oxftl API) in the host; ftl_name / ftl_version say which


class _LE(ctypes.LittleEndianStructure):
    _pack_ = 1


class MediaLabel(_LE):
    """Vendor log page 0xC0 (and the label part of the media file header), 512 bytes."""
    _fields_ = [
        ("magic", ctypes.c_uint32), ("version", ctypes.c_uint16),
        ("mode", ctypes.c_uint8),            # MediaMode
        ("target", ctypes.c_uint8),          # TargetKind
        ("lun_begin", ctypes.c_uint16), ("lun_end", ctypes.c_uint16),   # inclusive, global ids
        ("read_only", ctypes.c_uint8),       # the device placed the media in read-only mode
        ("last_stop_clean", ctypes.c_uint8),  # the last stop was a clean shutdown
        ("rsvd0", ctypes.c_uint16),
        ("uuid", ctypes.c_uint8 * 16),       # the host target's instance uuid
        ("capacity_bytes", ctypes.c_uint64),  # exported: AppNVM namespace or pblk target
        ("created_s", ctypes.c_uint64),      # unix time the media file was made
        ("formatted_s", ctypes.c_uint64),    # last `ox format` (0: never)
        ("labelled_s", ctypes.c_uint64),     # when mode / target were recorded
        ("last_stop_s", ctypes.c_uint64),    # last clean stop (0: never)
        ("power_cycles", ctypes.c_uint64),   # device starts that wrote to the media
        ("unsafe_shutdowns", ctypes.c_uint64),
        ("data_units_read", ctypes.c_uint64), ("data_units_written", ctypes.c_uint64),
        ("host_read_cmds", ctypes.c_uint64), ("host_write_cmds", ctypes.c_uint64),
        ("media_errors", ctypes.c_uint64),
        ("ftl_name", ctypes.c_uint8 * 32),   # plug-in FTL (target FTL or mode DEVICE_FTL): its name
        ("ftl_version", ctypes.c_uint32),    # ... and the on-media format version it declares
        ("interface", ctypes.c_uint8),       # Interface the media was written through
        ("reserved", ctypes.c_uint8 * 347),
    ]


assert ctypes.sizeof(MediaLabel) == 512 and MediaLabel.ftl_name.offset == 128


class CriticalWarning(enum.IntFlag):
    """SMART critical warning bits (NVMe 1.2, figure 94, byte 0)."""
    SPARE = 1 << 0            # available spare below its threshold
    TEMPERATURE = 1 << 1
    RELIABILITY = 1 << 2      # degraded by media errors
    READ_ONLY = 1 << 3        # the media has been placed in read-only mode
    VOLATILE_BACKUP = 1 << 4


class SmartLog(_LE):
    """SMART / health information log page (NVMe 1.2, figure 94, with NVMe 1.3's thermal
    fields), 512 bytes.

    The 128-bit counters are split into lo/hi u64 halves."""
    _fields_ = [
        ("critical_warning", ctypes.c_uint8), ("temperature", ctypes.c_uint16),
        ("avail_spare", ctypes.c_uint8), ("spare_thresh", ctypes.c_uint8),
        ("percent_used", ctypes.c_uint8), ("rsvd6", ctypes.c_uint8 * 26),
        ("data_units_read", ctypes.c_uint64 * 2), ("data_units_written", ctypes.c_uint64 * 2),
        ("host_reads", ctypes.c_uint64 * 2), ("host_writes", ctypes.c_uint64 * 2),
        ("ctrl_busy_time", ctypes.c_uint64 * 2), ("power_cycles", ctypes.c_uint64 * 2),
        ("power_on_hours", ctypes.c_uint64 * 2), ("unsafe_shutdowns", ctypes.c_uint64 * 2),
        ("media_errors", ctypes.c_uint64 * 2), ("num_err_log_entries", ctypes.c_uint64 * 2),
        ("warning_temp_time", ctypes.c_uint32), ("critical_comp_time", ctypes.c_uint32),
        ("temp_sensor", ctypes.c_uint16 * 8),
        ("thm_temp1_trans_count", ctypes.c_uint32), ("thm_temp2_trans_count", ctypes.c_uint32),
        ("thm_temp1_total_time", ctypes.c_uint32), ("thm_temp2_total_time", ctypes.c_uint32),
        ("rsvd232", ctypes.c_uint8 * 280),
    ]


assert ctypes.sizeof(SmartLog) == 512 and SmartLog.data_units_read.offset == 32
assert SmartLog.num_err_log_entries.offset == 176 and SmartLog.thm_temp2_total_time.offset == 228


class FtlLog(_LE):
    """Vendor log page 0xC1: what a device-side FTL (AppNVM) did, in the same terms pblk
    reports on the host -- sectors written by kind, GC, erases, valid data, bad blocks --
    so the two stacks' figures compare one to one. Counts are lifetime counts: they are
    kept in the FTL's checkpoints and survive restarts. 512 bytes."""
    _fields_ = [
        ("host_sectors_written", ctypes.c_uint64), ("host_sectors_read", ctypes.c_uint64),
        ("user_sectors", ctypes.c_uint64), ("gc_sectors", ctypes.c_uint64),
        ("pad_sectors", ctypes.c_uint64), ("meta_sectors", ctypes.c_uint64),
        ("gc_runs", ctypes.c_uint64), ("erases", ctypes.c_uint64),
        ("discarded_sectors", ctypes.c_uint64), ("checkpoints", ctypes.c_uint64),
        ("valid_sectors", ctypes.c_uint64), ("capacity_sectors", ctypes.c_uint64),
        ("free_blocks", ctypes.c_uint32), ("good_blocks", ctypes.c_uint32),
        ("total_blocks", ctypes.c_uint32), ("factory_bad_blocks", ctypes.c_uint32),
        ("grown_bad_blocks", ctypes.c_uint32), ("read_only", ctypes.c_uint8),
        ("rsvd0", ctypes.c_uint8 * 3),
        ("program_fails", ctypes.c_uint64), ("erase_fails", ctypes.c_uint64),
        ("read_retries", ctypes.c_uint64), ("unrecovered_reads", ctypes.c_uint64),
        ("reserved", ctypes.c_uint8 * 360),
    ]


assert ctypes.sizeof(FtlLog) == 512
