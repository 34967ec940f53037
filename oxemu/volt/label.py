"""The media label in words, and the check that a device mode may use the media (SPEC 8).

A disk file says what it holds (wire.ox.MediaLabel): the mode that wrote it, the pblk
target's LUN range, the AppNVM volume's exported capacity. A device of the other mode,
or an AppNVM device asked for another capacity, is refused before anything is written,
with one line naming what the media holds.
"""
import ctypes

from ..wire.ox import LABEL_MAGIC, LABEL_VERSION, Interface, MediaLabel, MediaMode, TargetKind
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


def set_bytes(label: MediaLabel, field: str, value: bytes) -> None:
    """Set a byte-array field (uuid, ftl_name), zero-padded to its size."""
    f = getattr(MediaLabel, field)
    ctypes.memmove(ctypes.addressof(label) + f.offset, bytes(value)[:f.size].ljust(f.size, b"\0"), f.size)


def ftl_of(label: MediaLabel) -> tuple[str, int]:
    """(name, version) of the plug-in FTL a label records."""
    return bytes(label.ftl_name).rstrip(b"\0").decode(errors="replace"), int(label.ftl_version)


def describe(label: MediaLabel, name: str) -> str:
    """'ox.disk holds a pblk volume on LUNs 0-31 (open-channel, lnvm=1)' and the like; media
    written through another interface than 1.2 says which."""
    text = _describe(label, name)
    iface = label.interface
    if iface != Interface.OCSSD_1_2 and label.mode not in (MediaMode.BLANK, MediaMode.ZONED):
        text += f" through interface {INTERFACE_WORDS.get(iface, iface)}"
    return text


def _describe(label: MediaLabel, name: str) -> str:
    if label.mode == MediaMode.APPNVM:
        size = f" of {label.capacity_bytes:,} bytes" if label.capacity_bytes else ""
        return f"{name} holds an AppNVM volume{size} (device-side FTL, lnvm=0)"
    if label.mode == MediaMode.DEVICE_FTL:
        name_, version = ftl_of(label)
        return f"{name} holds the volume of device FTL {name_} version {version} (plug-in FTL in the device)"
    if label.mode == MediaMode.OPEN_CHANNEL:
        if label.target == TargetKind.FTL:
            name_, version = ftl_of(label)
            return (f"{name} holds the volume of host FTL {name_} version {version} on LUNs "
                    f"{label.lun_begin}-{label.lun_end} (open-channel, lnvm=1)")
        if label.target == TargetKind.PBLK:
            return (f"{name} holds a pblk volume on LUNs {label.lun_begin}-{label.lun_end} "
                    f"(open-channel, lnvm=1)")
        if label.target == TargetKind.NONE:
            return f"{name} holds open-channel media without a target (lnvm=1)"
        return f"{name} holds open-channel media of an unknown target {label.target} (lnvm=1)"
    if label.mode == MediaMode.ZONED:
        if label.target == TargetKind.FTL:
            name_, version = ftl_of(label)
            return f"{name} holds the volume of host FTL {name_} version {version} on a zoned namespace (ZNS)"
        return f"{name} holds zoned namespace media without a host FTL (ZNS)"
    if label.mode == MediaMode.BLANK:
        return f"{name} is blank media"
    return f"{name} holds media of an unknown mode {label.mode}"


_MODE_WORDS = {MediaMode.OPEN_CHANNEL: "open-channel mode (lnvm=1)", MediaMode.APPNVM: "AppNVM mode (lnvm=0)",
               MediaMode.DEVICE_FTL: "device FTL mode", MediaMode.ZONED: "zoned mode (ZNS)"}
INTERFACE_WORDS = {Interface.OCSSD_1_2: "1.2", Interface.OCSSD_2_0: "2.0", Interface.ZNS: "zns"}


def check_mode(label: MediaLabel, name: str, *, mode: MediaMode, capacity: int | None = None,
               ftl: tuple[str, int] | None = None, interface: Interface = Interface.OCSSD_1_2) -> None:
    """Refuse media that another device mode (or interface) wrote (StoreError, one line).

    mode: the mode the device runs; capacity: the AppNVM exported bytes asked for (None:
    what the media records); ftl: (name, version) of the plug-in FTL in device FTL mode;
    interface: the host interface the device speaks (OCSSD 1.2, 2.0, ZNS).
    """
    if label.mode not in (MediaMode.BLANK, mode):
        want = _MODE_WORDS[mode] + (f" with FTL {ftl[0]!r}" if ftl else "")
        raise StoreError(f"{describe(label, name)}; refusing to use it in {want}")
    if label.mode != MediaMode.BLANK and label.interface != interface:
        raise StoreError(f"{describe(label, name)}; refusing to use it through interface "
                         f"{INTERFACE_WORDS[Interface(interface)]} (ox format erases it for reuse)")
    if mode == MediaMode.DEVICE_FTL and label.mode == mode and ftl_of(label) != tuple(ftl):
        raise StoreError(f"{describe(label, name)}; refusing to use it with FTL {ftl[0]!r} version {ftl[1]}")
    if (mode == MediaMode.APPNVM and label.mode == MediaMode.APPNVM and capacity is not None
            and label.capacity_bytes and capacity != label.capacity_bytes):
        raise StoreError(f"{name} holds an AppNVM volume formatted with a capacity of "
                         f"{label.capacity_bytes:,} bytes, not the {capacity:,} asked for "
                         f"(device-side FTL, lnvm=0)")
