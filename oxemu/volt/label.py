"""The media label in words, and the check that a device mode may use the media (SPEC 8).

A disk file says what it holds (wire.ox.MediaLabel): the mode that wrote it, the pblk
target's LUN range, the AppNVM volume's exported capacity. A device of the other mode,
or an AppNVM device asked for another capacity, is refused before anything is written,
with one line naming what the media holds.
"""
import ctypes

from ..wire.ox import LABEL_MAGIC, LABEL_VERSION, MediaLabel, MediaMode, TargetKind
from .errors import StoreError

# the lifetime counters a device session adds to (SMART and the label's own)
SESSION_COUNTERS = ("data_units_read", "data_units_written", "host_read_cmds",
                    "host_write_cmds", "media_errors")


def new_label(now_s: int) -> MediaLabel:
    """The label of media just made: blank, clean, nothing counted yet."""
    lab = MediaLabel(magic=LABEL_MAGIC, version=LABEL_VERSION, mode=MediaMode.BLANK,
                     target=TargetKind.NONE, last_stop_clean=1, created_s=now_s)
    return lab


def copy_label(label: MediaLabel) -> MediaLabel:
    return MediaLabel.from_buffer_copy(bytes(label))


def uuid_is_zero(label: MediaLabel) -> bool:
    return not any(label.uuid)


def set_uuid(label: MediaLabel, uuid: bytes) -> None:
    ctypes.memmove(ctypes.addressof(label) + MediaLabel.uuid.offset, bytes(uuid)[:16].ljust(16, b"\0"), 16)


def describe(label: MediaLabel, name: str) -> str:
    """'ox.disk holds a pblk volume on LUNs 0-31 (open-channel, lnvm=1)' and the like."""
    if label.mode == MediaMode.APPNVM:
        size = f" of {label.capacity_bytes:,} bytes" if label.capacity_bytes else ""
        return f"{name} holds an AppNVM volume{size} (device-side FTL, lnvm=0)"
    if label.mode == MediaMode.OPEN_CHANNEL:
        if label.target == TargetKind.PBLK:
            return (f"{name} holds a pblk volume on LUNs {label.lun_begin}-{label.lun_end} "
                    f"(open-channel, lnvm=1)")
        if label.target == TargetKind.NONE:
            return f"{name} holds open-channel media without a target (lnvm=1)"
        return f"{name} holds open-channel media of an unknown target {label.target} (lnvm=1)"
    if label.mode == MediaMode.BLANK:
        return f"{name} is blank media"
    return f"{name} holds media of an unknown mode {label.mode}"


def check_mode(label: MediaLabel, name: str, *, lnvm: bool, capacity: int | None = None) -> None:
    """Refuse media that another device mode wrote (StoreError, one line).

    lnvm: the device runs open-channel (True) or AppNVM (False); capacity: the AppNVM
    exported bytes asked for (None: what the media records).
    """
    mode = MediaMode.OPEN_CHANNEL if lnvm else MediaMode.APPNVM
    if label.mode not in (MediaMode.BLANK, mode):
        want = "open-channel mode (lnvm=1)" if lnvm else "AppNVM mode (lnvm=0)"
        raise StoreError(f"{describe(label, name)}; refusing to use it in {want}")
    if (not lnvm and label.mode == MediaMode.APPNVM and capacity is not None
            and label.capacity_bytes and capacity != label.capacity_bytes):
        raise StoreError(f"{name} holds an AppNVM volume formatted with a capacity of "
                         f"{label.capacity_bytes:,} bytes, not the {capacity:,} asked for "
                         f"(device-side FTL, lnvm=0)")
