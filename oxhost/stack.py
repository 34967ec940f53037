"""One call that builds the whole stack a volume is served from: the emulated machine, the
driver and the block device of the chosen mode (pblk over open-channel, or the AppNVM
namespace), and tears it down in the right order (SPEC 1, 9)."""
import dataclasses
import logging
import os
import re
import sys
import typing

from oxemu import Faults, Geometry, Machine, probe_geometry, probe_label
from oxemu.wire import Interface, MediaMode, TargetKind

from .blockdev import BlockDevice

log = logging.getLogger(__name__)

MODES = ("pblk", "appnvm")                 # the built-in stacks; plug-in FTLs are 'SPEC@side'
SIDES = ("host", "device")
SPECS = ("1.2", "2.0", "zns")              # host interfaces: OCSSD 1.2, OCSSD 2.0, zoned namespaces
# built-in plug-in stacks a short name stands for: the zoned host FTL on a ZNS device
ALIASES = {"zoned": ("oxftl.zoned:ZonedFtl", "zns")}
ZONED_FTL = ("zoned", 1)                   # its name and version in the media label
DEFAULT_LUNS = (0, 31)          # `nvme lnvm create -b 0 -e 31` on the default geometry
ZONE_UNITS = 2                  # zones an FTL over ZoneMedia writes at once (ZoneMedia's units)


class StackError(Exception):
    """The stack cannot be built as asked: unknown mode, LUN range outside the geometry,
    or a block-device implementation that is not available in this build."""


class Stack:
    """A machine and the block device served from it; a context manager.

    `close()` stops the block device cleanly (flush, pblk's clean stop), then the
    open-channel device / NVMe driver, then the machine (which flushes the disk file).
    `sysfs` is pblk's sysfs directory (oxhost.pblk.sysfs.PblkSysfs) in pblk mode, None in
    AppNVM mode (the device runs its own FTL): what a mount serves as `pblk/`.
    """

    def __init__(self, machine: Machine, blockdev: BlockDevice, device=None, *, mode: str,
                 geometry: Geometry, luns: tuple[int, int] | None, disk: str | None,
                 timing: str, config=None, sysfs=None):
        self.machine = machine
        self.sysfs = sysfs
        self.config = config
        self.blockdev = blockdev
        self.device = device
        self.mode = mode
        self.geometry = geometry
        self.luns = luns
        self.disk = disk
        self.timing = timing
        self._closed = False

    def info(self) -> dict:
        """What the stack is, JSON-able (the `stats` file and status lines use it)."""
        return {
            "mode": self.mode,
            "name": mode_name(self.mode),
            "size": self.blockdev.size,
            "geometry": dataclasses.asdict(self.geometry),
            "luns": list(self.luns) if self.luns is not None else None,
            "disk": self.disk,
            "volatile": self.disk is None,
            "timing": self.timing,
            "config": self.config.to_dict() if self.config is not None else None,
        }

    def abandon(self) -> None:
        """Pull the plug: the machine goes away with no flush and no clean stop of the block
        device (after a power cut, or to crash it on purpose)."""
        if self._closed:
            return
        self._closed = True
        self.machine.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        errors = []
        for what, fn in (("block device", self.blockdev.close),
                         ("device", self.device.close if self.device is not None else None),
                         ("machine", self.machine.close)):
            if fn is None:
                continue
            try:
                fn()
            except Exception as e:      # noqa: BLE001 - keep closing the lower layers
                log.error("closing the %s failed: %s", what, e)
                errors.append(e)
        if errors:
            raise errors[0]

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_luns(text: str | None) -> tuple[int, int] | None:
    """'B-E' (inclusive, like `nvme lnvm create -b B -e E`) -> (B, E); None stays None."""
    if text is None:
        return None
    parts = text.split("-")
    try:
        if len(parts) != 2:
            raise ValueError
        b, e = int(parts[0]), int(parts[1])
    except ValueError:
        raise StackError(f"LUN range {text!r} is not B-E (e.g. 0-31)") from None
    if b < 0 or e < b:
        raise StackError(f"LUN range {text!r}: need 0 <= B <= E")
    return b, e


def _geometry_for(disk: str | None, geometry: Geometry | None) -> Geometry:
    """An existing disk file's geometry wins when none is asked for; a mismatch between an
    asked geometry and the file is refused by the machine itself."""
    if disk is not None and geometry is None:
        found = probe_geometry(disk)
        if found is not None:
            return found
    return geometry or Geometry()


def _ftl_of(label) -> tuple[str, int]:
    return bytes(label.ftl_name).rstrip(b"\0").decode(errors="replace"), int(label.ftl_version)


def _builtin_zoned(label) -> bool:
    return label.mode == MediaMode.ZONED and label.target == TargetKind.FTL and _ftl_of(label) == ZONED_FTL


def describe_label(label) -> str:
    """What a media label says the disk holds, in the words of the command line."""
    if label is None or label.mode == MediaMode.BLANK:
        return "blank media"
    if label.mode == MediaMode.ZONED:
        if _builtin_zoned(label):
            return "a volume of the zoned FTL on zones"
        if label.target == TargetKind.FTL:
            name, version = _ftl_of(label)
            return f"a volume of FTL {name!r} version {version} in the host on zones"
        return "zones with no FTL recorded (ox zone)"
    if label.mode == MediaMode.APPNVM:
        cap = f" of {label.capacity_bytes:,} bytes" if label.capacity_bytes else ""
        return f"an AppNVM volume{cap}"
    if label.mode == MediaMode.DEVICE_FTL:
        name, version = _ftl_of(label)
        return f"a volume of FTL {name!r} version {version} in the device"
    if label.target == TargetKind.PBLK:
        return f"a pblk volume on LUNs {label.lun_begin}-{label.lun_end}"
    if label.target == TargetKind.FTL:
        name, version = _ftl_of(label)
        return f"a volume of FTL {name!r} version {version} in the host on LUNs {label.lun_begin}-{label.lun_end}"
    return "open-channel data written without a pblk target (ox addr / ox vblk)"


def open_flags(label) -> str:
    """The `ox mount` flags that open what the label describes."""
    if label.mode == MediaMode.ZONED:
        if label.target == TargetKind.FTL and not _builtin_zoned(label):
            return f"--ftl FILE.py:CLASS --spec zns (the FTL named {_ftl_of(label)[0]!r})"
        return "--mode zoned"
    if label.mode == MediaMode.APPNVM:
        return "--mode appnvm"
    if label.mode == MediaMode.DEVICE_FTL:
        return f"--ftl FILE.py:CLASS --side device (the FTL named {_ftl_of(label)[0]!r})"
    if label.target == TargetKind.PBLK:
        return f"--mode pblk --luns {label.lun_begin}-{label.lun_end}"
    if label.target == TargetKind.FTL:
        return (f"--ftl FILE.py:CLASS --side host --luns {label.lun_begin}-{label.lun_end} (the FTL named "
                f"{_ftl_of(label)[0]!r})")
    return "--mode pblk"


def label_mode(label) -> str | None:
    """The stack kind the media was written by: pblk, appnvm, ftl@host, ftl@device,
    open-channel (raw data, no target) or zones (raw zoned data, no FTL); None for blank media."""
    if label is None or label.mode == MediaMode.BLANK:
        return None
    if label.mode == MediaMode.ZONED:
        return "ftl@host" if label.target == TargetKind.FTL else "zones"
    if label.mode == MediaMode.APPNVM:
        return "appnvm"
    if label.mode == MediaMode.DEVICE_FTL:
        return "ftl@device"
    return {TargetKind.PBLK: "pblk", TargetKind.FTL: "ftl@host"}.get(label.target, "open-channel")


def _what(kind: str, ftl) -> str:
    if kind.startswith("ftl@"):
        return f"a volume of FTL {ftl[0]!r} version {ftl[1]} in the {kind[4:]}"
    return {"pblk": "a pblk volume", "appnvm": "an AppNVM volume"}[kind]


def label_spec(label) -> str:
    """The host interface media was written through: 1.2 (also for blank media), 2.0, zns."""
    if label is None or label.mode == MediaMode.BLANK:
        return "1.2"
    return {Interface.OCSSD_2_0: "2.0", Interface.ZNS: "zns"}.get(label.interface, "1.2")


def check_label(disk: str, label, mode: str, luns: tuple[int, int] | None,
                capacity: int | None = None, ftl: tuple[str, int] | None = None, spec: str = "1.2") -> None:
    """Refuse, before anything is written, to open media as something it is not: another
    kind of stack, another plug-in FTL (or another version of it), a volume with another
    LUN range, or (`capacity`, the bytes a configuration asks for) a volume of another
    size. One line naming what the disk holds and the flags that open it; `ox format` is
    the way to reuse it. `mode` is pblk, appnvm, ftl@host or ftl@device; `ftl` the plug-in
    FTL's (name, version)."""
    held = label_mode(label)
    if held is None:
        return
    base = "zoned" if spec == "zns" else "appnvm" if mode in ("appnvm", "ftl@device") else "pblk"
    if label_spec(label) != spec:
        flags = open_flags(label) if label.mode == MediaMode.ZONED else f"--spec {label_spec(label)}"
        raise StackError(f"{disk} holds {describe_label(label)} written through interface {label_spec(label)}, "
                         f"not {spec}: open it with {flags}, or erase it with: "
                         f"ox format --disk {disk} --mode {base} --yes")
    fmt = f"ox format --disk {disk} --mode {base} --yes"
    if held in ("open-channel", "zones") and mode in ("pblk", "ftl@host"):
        return                      # raw open-channel or zone use: a host target may create itself
    if held != mode or (mode.startswith("ftl@") and _ftl_of(label) != tuple(ftl)):
        raise StackError(f"{disk} holds {describe_label(label)}, not {_what(mode, ftl)}: open it with "
                         f"{open_flags(label)}, or erase it with: {fmt}")
    if mode in ("pblk", "ftl@host") and spec != "zns" and luns is not None \
            and (label.lun_begin, label.lun_end) != tuple(luns):
        raise StackError(f"{disk} holds {describe_label(label)}, not {luns[0]}-{luns[1]}: open it with "
                         f"--luns {label.lun_begin}-{label.lun_end}, or erase it for LUNs {luns[0]}-{luns[1]} "
                         f"with: {fmt} --luns {luns[0]}-{luns[1]}")
    if capacity is not None and label.capacity_bytes and capacity != label.capacity_bytes:
        raise StackError(f"{disk} holds {describe_label(label)} of {label.capacity_bytes:,} bytes, not the "
                         f"{capacity:,} the configuration asks for (ftl.op): open it without that "
                         f"setting, or erase it for the new size with: {fmt}")


class StackMode(typing.NamedTuple):
    """A stack mode string taken apart. `kind`: pblk, appnvm, ftl@host or ftl@device;
    `ftl`: the plug-in FTL's FILE.py:Class (ftl kinds); `side`: host or device (ftl
    kinds); `spec`: the host interface -- 1.2 (default), 2.0 or zns."""
    kind: str
    ftl: str | None
    side: str | None
    spec: str


def parse_mode(mode: str) -> StackMode:
    """'pblk', 'appnvm', or a plug-in FTL as 'FILE.py:Class@host' / 'package.module:Class@device';
    a host-side stack may add the interface it speaks: 'pblk+2.0', 'FILE.py:Class@host+zns'
    (default +1.2)."""
    body, plus, spec = mode.partition("+")
    if body in ALIASES:
        ftl, own = ALIASES[body]
        if plus and spec != own:
            raise StackError(f"mode {mode!r}: the {body} FTL runs on {own} only")
        return StackMode("ftl@host", ftl, "host", own)
    spec = spec if plus else "1.2"
    if spec not in SPECS:
        raise StackError(f"mode {mode!r}: unknown interface {spec!r} ({', '.join(SPECS)})")
    if body in MODES:
        if body == "appnvm" and spec != "1.2":
            raise StackError(f"mode {mode!r}: AppNVM runs behind a plain namespace; there is no interface to choose")
        if body == "pblk" and spec == "zns":
            raise StackError(f"mode {mode!r}: pblk runs on open-channel media (1.2 or 2.0), not on zones")
        return StackMode(body, None, None, spec)
    ftl, at, side = body.rpartition("@")
    if not at or side not in SIDES or ":" not in ftl:
        raise StackError(f"unknown mode {mode!r} (pblk, appnvm, zoned, or a plug-in FTL as FILE.py:Class@host "
                         f"or FILE.py:Class@device)")
    if side == "device" and spec != "1.2":
        raise StackError(f"mode {mode!r}: a device-side FTL runs behind a plain namespace; there is no "
                         f"interface to choose")
    return StackMode(f"ftl@{side}", ftl, side, spec)


def make_mode(kind: str, ftl: str | None = None, side: str = "host", spec: str = "1.2") -> str:
    """The mode string of a stack: pblk or appnvm (kind), or plug-in FTL `ftl` on `side`;
    with its interface when it is not 1.2. Checked by parse_mode."""
    if ftl is not None:
        if side not in SIDES:
            raise StackError(f"--side {side!r}: host or device")
        body = f"{ftl}@{side}"
    else:
        body = kind
    own = ALIASES[body][1] if body in ALIASES else "1.2"
    mode = body if spec == own else f"{body}+{spec}"
    parse_mode(mode)
    return mode


def mode_name(mode: str) -> str:
    """Short name of a stack mode for reports: pblk, pblk+2.0, appnvm, zoned, Class@side[+spec]."""
    m = parse_mode(mode)
    body = mode.partition("+")[0]
    if body in ALIASES:
        return body
    if m.ftl is None:
        return mode
    name = f"{m.ftl.rsplit(':', 1)[1]}@{m.side}"
    return name if m.spec == "1.2" else f"{name}+{m.spec}"


def normalize_mode(mode: str) -> str:
    """A stack mode as a user gave it, checked: a plug-in FTL's file made absolute (the same
    file from any directory, and in a detached child) and its class loaded. StackError or
    oxftl.FtlLoadError, one line, otherwise."""
    from oxftl import load_ftl
    m = parse_mode(mode.strip())
    if m.ftl is None:
        return make_mode(m.kind, spec=m.spec)
    where, _, cls = m.ftl.rpartition(":")
    ftl = f"{os.path.abspath(where)}:{cls}" if where.endswith(".py") or os.sep in where else m.ftl
    load_ftl(ftl)
    return make_mode("ftl", ftl, m.side, m.spec)


def mode_slug(mode: str) -> str:
    """A file-name-safe short name of a stack mode: pblk, appnvm, pageftl_host, pblk_2.0."""
    return re.sub(r"[^a-z0-9.]+", "_", mode_name(mode).lower()).strip("_")


def open_stack(mode: str | None = None, disk: str | None = "ox.disk", volatile: bool = False,
               debug: bool = False, timing: str = "off",
               luns: tuple[int, int] | None = None, geometry: Geometry | None = None,
               trace_stream=None, faults: Faults | None = None, config=None) -> Stack:
    """Build machine + driver + block device.

    `mode`: 'pblk' (host FTL over open-channel), 'appnvm' (the device's own FTL), 'zoned'
    (the zoned host FTL over a ZNS device), or a plug-in FTL written against the FTL API
    (oxftl.Ftl) as 'FILE.py:Class@host' (over open-channel, where pblk sits),
    'FILE.py:Class@host+zns' (over the zones of a ZNS device) or 'FILE.py:Class@device'
    (inside the device, behind a plain namespace, where AppNVM sits). None means what the
    disk holds (its media label), pblk for new media; media written by another kind of
    stack or another FTL is refused (StackError) before anything is written.

    `config` (oxhost.config.Config, default: every key at its default) sets the NAND
    timing, both FTLs' over-provisioning, victim policy, GC thresholds, buffers and wear
    levelling. Its geometry applies when it sets geometry keys (else an existing disk's
    own); its capacity (ftl.op, appnvm.capacity_bytes) when it sets those keys -- a volume
    of another size is refused (StackError) -- else the size the media label records.

    `luns` is an inclusive (begin, end) range of global LUN ids for a host-side FTL; None
    means the range the media records, else every LUN (DEFAULT_LUNS also means every LUN
    on a geometry with fewer). `faults` injects media faults (lab use: `ox torture`).
    Errors: StackError, oxemu.StoreError (disk file locked, corrupt or of another
    geometry), oxftl.FtlLoadError, the lower layers' own errors."""
    from oxftl import load_ftl

    from .config import SECTOR_NBYTES, Config
    cfg = config if config is not None else Config.default()
    parsed = parse_mode(mode) if mode is not None else None
    kind = parsed.kind if parsed else None
    iface = parsed.spec if parsed else None
    ftl_cls = load_ftl(parsed.ftl) if parsed and parsed.ftl is not None else None
    ftl_id = (ftl_cls.ftl_name(), int(ftl_cls.version)) if ftl_cls is not None else None
    if cfg.is_set("geometry"):
        if geometry is not None and geometry != cfg.to_geometry():
            raise StackError(f"--geometry {geometry.describe()} and the configuration's geometry "
                             f"{cfg.to_geometry().describe()} differ")
        geometry = cfg.to_geometry()
    if volatile:
        disk = None
    elif disk is None:
        disk = "ox.disk"
    label = None
    if disk is not None:
        if os.path.isdir(disk):
            raise StackError(f"{disk}: is a directory, not a disk file")
        disk = os.path.abspath(disk)
        label = probe_label(disk)
    if kind is None and label is not None and (_builtin_zoned(label) or label_mode(label) == "zones"):
        mode = "zoned"                      # the built-in zoned FTL: what a zoned disk holds
        parsed = parse_mode(mode)
        kind, iface = parsed.kind, parsed.spec
        ftl_cls = load_ftl(parsed.ftl)
        ftl_id = (ftl_cls.ftl_name(), int(ftl_cls.version))
    if kind is None:
        held = label_mode(label)
        if held is not None and held.startswith("ftl@"):
            raise StackError(f"{disk} holds {describe_label(label)}: open it with {open_flags(label)}")
        kind = held if held in MODES else "pblk"
        iface = label_spec(label)
        mode = kind if iface == "1.2" else f"{kind}+{iface}"
    host_side = kind in ("pblk", "ftl@host")
    zoned = iface == "zns"
    if label is not None:
        check_label(disk, label, kind, luns, ftl=ftl_id, spec=iface)
    geo = _geometry_for(disk, geometry)
    sized = cfg.is_set("ftl.op", "appnvm.capacity_bytes") if kind == "appnvm" else cfg.is_set("ftl.op")
    nluns = geo.total_luns
    if zoned and luns is not None and tuple(luns) != DEFAULT_LUNS and tuple(luns) != (0, nluns - 1):
        raise StackError("--luns is for open-channel FTLs: zones span every LUN")
    if luns is None and host_side and not zoned and label is not None and label_mode(label) == kind:
        luns = (label.lun_begin, label.lun_end)
    if luns is None or (tuple(luns) == DEFAULT_LUNS and nluns < DEFAULT_LUNS[1] + 1):
        luns = (0, nluns - 1)
    b, e = luns
    if not 0 <= b <= e < nluns:
        raise StackError(f"LUN range {b}-{e} is outside the device's LUNs 0-{nluns - 1}")
    if not host_side and tuple(luns) != (0, nluns - 1):
        raise StackError("--luns is for host-side FTLs: a device-side FTL uses every LUN")
    capacity = pblk_secs = None
    if kind in ("pblk", "appnvm"):
        try:
            if kind == "appnvm":
                want = cfg.appnvm_capacity_bytes(geo)
            else:
                want = cfg.exported_sectors(luns=e - b + 1, geometry=geo) * SECTOR_NBYTES
        except ValueError as ex:
            raise StackError(str(ex)) from None
        capacity = want if sized else None
        pblk_secs = 0
        if label is not None and label_mode(label) == kind:
            if kind == "pblk" and (label.lun_begin, label.lun_end) != (b, e):
                pass                        # another target's label: ours is new
            else:
                check_label(disk, label, kind, luns, capacity)
                if kind == "pblk" and not sized and label.capacity_bytes:
                    pblk_secs = label.capacity_bytes // SECTOR_NBYTES     # the size it was made with

    if not host_side:
        try:
            from .nvme import NvmeBlockDevice
        except ImportError as ex:
            raise StackError(f"device-side modes are not available in this build ({ex})") from None

    if iface == "2.0":
        raise StackError(f"interface {iface} is not built yet")
    machine = Machine(lnvm=1 if host_side and not zoned else 0, volt=0 if disk else 1,
                      debug=1 if debug else 0, disk=disk, geometry=geo, timing=timing,
                      trace_stream=trace_stream or sys.stderr, faults=faults,
                      appnvm_capacity=capacity if kind == "appnvm" else None,
                      nand=cfg.to_nand_timing(), appnvm=cfg.appnvm_params(),
                      ftl=ftl_cls if kind == "ftl@device" else None, spec=iface,
                      zns=cfg.zns_params() if zoned else None)
    device = sysfs = None
    try:
        if zoned:
            from .ftl import FtlBlockDevice
            from .zns import ZonedDevice, ZoneMedia
            device = ZonedDevice.open(machine)
            blockdev = FtlBlockDevice(ZoneMedia(device, units=ZONE_UNITS), ftl_cls, device.driver, None)
            luns = None
        elif host_side:
            from .lightnvm import Device
            device = Device.open(machine)
            if kind == "pblk":
                from .pblk import Pblk
                from .pblk.sysfs import PblkSysfs
                blockdev = Pblk(device, lun_begin=b, lun_end=e, durable_discard=cfg.pblk.durable_discard,
                                params=cfg.pblk_params(capacity_sectors=pblk_secs))
                sysfs = PblkSysfs(blockdev)
            else:
                from .ftl import FtlBlockDevice, HostMedia
                blockdev = FtlBlockDevice(HostMedia(device, b, e), ftl_cls, device.driver, (b, e))
        else:
            blockdev = NvmeBlockDevice.open(machine)
            luns = None
    except BaseException:
        try:
            if device is not None:
                device.close()
        except Exception as ex:        # noqa: BLE001 - the original error matters more
            log.debug("device close after a failed open: %s", ex)
        machine.close()
        raise
    log.info("stack up: %s, %d bytes, geometry %s", mode, blockdev.size, geo.describe())
    return Stack(machine, blockdev, device, mode=mode, geometry=geo, luns=luns, disk=disk,
                 timing=timing, config=cfg, sysfs=sysfs)
