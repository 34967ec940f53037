"""`ox nvme`: nvme-cli's commands (id-ctrl, id-ns, smart-log, error-log, get-log, reset)
and its lnvm plugin of the Linux 4.x years (list, info, id-ns, diag-bbtbl), against a disk
file, with nvme-cli's field names, layout and JSON keys, so scripts and habits carry over.

Everything is asked of the emulated controller over the bus (identify, log pages, the
LightNVM identity and bad block table); the device mode comes from the disk's media
label. Commands that only read open the disk read-only; `reset` is the one that writes."""
import contextlib
import json

import click

from oxemu import probe_label
from oxemu.wire import BlockState, LogPage, MediaMode, TargetKind, status_name

from ..driver import NvmeDriver
from ..nvme.admin import (MAX_LOG_NBYTES, NSID_ALL, bad_block_table, error_log, get_log, identify_controller,
                          identify_namespace, nvm_identity, reset_controller, smart_log, u128, u128_bytes)
from .common import device_options, disk_exists, missing_disk, open_machine

FORMATS = ("normal", "json", "binary")
LIGHTNVM_VERSIONS = {1: "1.2", 2: "2.0"}        # the identity's ver_id
NOT_LIGHTNVM = ("not a LightNVM device: it holds an AppNVM volume (the device runs its own FTL behind a "
                "plain NVMe namespace, lnvm=0); the lnvm commands are for open-channel disks")


# ---------------------------------------------------------------------------- the device
class _Dev:
    """One power-on of the device on a disk file, through the user-space driver."""

    def __init__(self, name: str, driver: NvmeDriver):
        self.name = name
        self.driver = driver

    def is_lightnvm(self) -> bool:
        """What Linux looked at: vs[0] = 1 in namespace 1's identify data."""
        return identify_namespace(self.driver, 1).vs[0] == 1

    def need_lightnvm(self) -> None:
        if not self.is_lightnvm():
            raise click.ClickException(f"{self.name}: {NOT_LIGHTNVM}")


@contextlib.contextmanager
def _device(disk, volatile, geometry, debug, *, write=False, create=False):
    """The device in the mode the disk's label says (blank media and --volatile:
    open-channel), read-only unless the command writes; a normal shutdown at the end."""
    appnvm = False
    if not volatile:
        if not disk_exists(disk) and not (write and create):
            raise missing_disk(disk)
        label = probe_label(disk)
        appnvm = label is not None and label.mode == MediaMode.APPNVM
    with open_machine(disk, volatile, geometry, debug, lnvm=0 if appnvm else 1, write=write,
                      create=create) as m:
        dev = _Dev("volatile" if volatile else disk, NvmeDriver(m))
        try:
            yield dev
        finally:
            dev.driver.shutdown()


# ---------------------------------------------------------------------------- output
def _hx(v: int) -> str:
    """C's %#x: 0 is "0", anything else 0x..."""
    return f"{v:#x}" if v else "0"


def _text(b: bytes) -> str:
    """A fixed-width ASCII field as nvme-cli prints it (%-.*s: up to the first NUL)."""
    return b.split(b"\0", 1)[0].decode("ascii", "replace")


def _lines(rows, width: int) -> str:
    """nvme-cli's `name    : value` rows, names padded to `width`."""
    return "\n".join(f"{k:<{width}}: {v}" for k, v in rows)


def _emit(text: str) -> None:
    """All of a command's output in one write (a reader that stops early, like `head`,
    then costs nothing)."""
    click.echo(text)


def _emit_json(obj) -> None:
    _emit(json.dumps(obj, indent=2))


def _emit_binary(raw: bytes) -> None:
    click.echo(raw, nl=False)


def output_options(f):
    f = click.option("-b", "--raw-binary", is_flag=True, help="Output the raw structure (same as -o binary).")(f)
    f = click.option("-o", "--output-format", "fmt", type=click.Choice(FORMATS), default="normal",
                     show_default=True, help="Output format: normal (nvme-cli's text), json (nvme-cli's "
                                             "keys) or binary (the structure as the device sent it).")(f)
    return f


def _fmt(fmt: str, raw_binary: bool) -> str:
    return "binary" if raw_binary else fmt


class _Int(click.ParamType):
    """An integer in decimal or 0x hex, as nvme-cli's options take them."""
    name = "NUM"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return int(value, 0)
        except ValueError:
            self.fail(f"{value!r} is not a number (decimal or 0x...)", param, ctx)


NUM = _Int()


# ---------------------------------------------------------------------------- id-ctrl
def id_ctrl_fields(c) -> list:
    """(name, text, json) per field, in nvme-cli's order and formats."""
    ieee = c.ieee[2] << 16 | c.ieee[1] << 8 | c.ieee[0]
    d, x, h = "d", "x", "#x"
    spec = [("vid", h), ("ssvid", h), ("sn", "s"), ("mn", "s"), ("fr", "s"), ("rab", d), ("ieee", "ieee"),
            ("cmic", h), ("mdts", d), ("cntlid", x), ("ver", x), ("rtd3r", x), ("rtd3e", x), ("oaes", h),
            ("ctratt", h), ("oacs", h), ("acl", d), ("aerl", d), ("frmw", h), ("lpa", h), ("elpe", d),
            ("npss", d), ("avscc", h), ("apsta", h), ("wctemp", d), ("cctemp", d), ("mtfa", d),
            ("hmpre", d), ("hmmin", d), ("tnvmcap", "u128"), ("unvmcap", "u128"), ("rpmbs", h),
            ("edstt", d), ("dsto", d), ("fwug", d), ("kas", d), ("hctma", h), ("mntmt", d), ("mxtmt", d),
            ("sanicap", h), ("sqes", h), ("cqes", h), ("maxcmd", d), ("nn", d), ("oncs", h), ("fuses", h),
            ("fna", h), ("vwc", h), ("awun", d), ("awupf", d), ("nvscc", d), ("acwu", d), ("sgls", x),
            ("subnqn", "s"), ("ioccsz", d), ("iorcsz", d), ("icdoff", d), ("ctrattr", x), ("msdbd", d)]
    out = []
    for name, kind in spec:
        v = getattr(c, name)
        if kind == "s":
            v = _text(v)
            out.append((name, v, v))
        elif kind == "ieee":
            out.append((name, f"{ieee:06x}", ieee))
        elif kind == "u128":
            v = u128_bytes(v)
            out.append((name, str(v), v))
        else:
            out.append((name, _hx(v) if kind == h else f"{v:{kind}}", int(v)))
    return out


def _power(scale_power: int, scale: int) -> str:
    if scale == 1:
        return f"{scale_power // 10000}.{scale_power % 10000:04d}W"
    if scale == 2:
        return f"{scale_power // 100}.{scale_power % 100:02d}W"
    return "-" if scale == 0 else "reserved"


def _psd_lines(c) -> list:
    rows = []
    for i in range(c.npss + 1):
        p = c.psd[i]
        mp = (f"{p.max_power // 10000}.{p.max_power % 10000:04d}W" if p.flags & 1
              else f"{p.max_power // 100}.{p.max_power % 100:02d}W")
        op = "non-operational" if p.flags & 2 else "operational"
        rows.append(f"ps {i:4d} : mp:{mp} {op} enlat:{p.entry_lat} exlat:{p.exit_lat} "
                    f"rrt:{p.read_tput} rrl:{p.read_lat}\n          rwt:{p.write_tput} rwl:{p.write_lat} "
                    f"idle_power:{_power(p.idle_power, p.idle_scale >> 6)} "
                    f"active_power:{_power(p.active_power, p.active_work_scale >> 6)}")
    return rows


def _psd_json(c) -> list:
    names = ("max_power", "flags", "entry_lat", "exit_lat", "read_tput", "read_lat", "write_tput",
             "write_lat", "idle_power", "idle_scale", "active_power", "active_work_scale")
    return [{n: int(getattr(c.psd[i], n)) for n in names} for i in range(c.npss + 1)]


# ---------------------------------------------------------------------------- id-ns
def id_ns_fields(ns) -> list:
    d, h = "d", "#x"
    spec = [("nsze", h), ("ncap", h), ("nuse", h), ("nsfeat", h), ("nlbaf", d), ("flbas", h), ("mc", h),
            ("dpc", h), ("dps", h), ("nmic", h), ("rescap", h), ("fpi", h), ("nawun", d), ("nawupf", d),
            ("nacwu", d), ("nabsn", d), ("nabo", d), ("nabspf", d), ("noiob", d)]
    out = [(n, _hx(getattr(ns, n)) if k == h else str(getattr(ns, n)), int(getattr(ns, n))) for n, k in spec]
    cap = u128_bytes(ns.nvmcap)
    out.append(("nvmcap", str(cap), cap))
    out.append(("nguid", bytes(ns.nguid).hex(), bytes(ns.nguid).hex()))
    out.append(("eui64", bytes(ns.eui64).hex(), bytes(ns.eui64).hex()))
    return out


# ---------------------------------------------------------------------------- smart-log
SMART_COUNTERS = (("data_units_read", "data_units_read"), ("data_units_written", "data_units_written"),
                  ("host_read_commands", "host_reads"), ("host_write_commands", "host_writes"),
                  ("controller_busy_time", "ctrl_busy_time"), ("power_cycles", "power_cycles"),
                  ("power_on_hours", "power_on_hours"), ("unsafe_shutdowns", "unsafe_shutdowns"),
                  ("media_errors", "media_errors"), ("num_err_log_entries", "num_err_log_entries"))


def smart_json(s) -> dict:
    """nvme-cli's JSON smart-log: its keys, temperature in kelvin, 128-bit counters whole."""
    out = dict(critical_warning=s.critical_warning, temperature=s.temperature, avail_spare=s.avail_spare,
               spare_thresh=s.spare_thresh, percent_used=s.percent_used)
    out.update({k: u128(getattr(s, f)) for k, f in SMART_COUNTERS})
    out.update(warning_temp_time=s.warning_temp_time, critical_comp_time=s.critical_comp_time)
    for i, t in enumerate(s.temp_sensor):
        if t:
            out[f"temperature_sensor_{i + 1}"] = int(t)
    out.update(thm_temp1_trans_count=s.thm_temp1_trans_count, thm_temp2_trans_count=s.thm_temp2_trans_count,
               thm_temp1_total_time=s.thm_temp1_total_time, thm_temp2_total_time=s.thm_temp2_total_time)
    return out


def smart_text(s, name: str, nsid: int) -> str:
    rows = [("critical_warning", _hx(s.critical_warning)), ("temperature", f"{s.temperature - 273} C"),
            ("available_spare", f"{s.avail_spare}%"), ("available_spare_threshold", f"{s.spare_thresh}%"),
            ("percentage_used", f"{s.percent_used}%")]
    rows += [(k, u128(getattr(s, f))) for k, f in SMART_COUNTERS]
    rows += [("Warning Temperature Time", s.warning_temp_time),
             ("Critical Composite Temperature Time", s.critical_comp_time)]
    rows += [(f"Temperature Sensor {i + 1}", f"{t - 273} C") for i, t in enumerate(s.temp_sensor) if t]
    rows += [("Thermal Management T1 Trans Count", s.thm_temp1_trans_count),
             ("Thermal Management T2 Trans Count", s.thm_temp2_trans_count),
             ("Thermal Management T1 Total Time", s.thm_temp1_total_time),
             ("Thermal Management T2 Total Time", s.thm_temp2_total_time)]
    return f"Smart Log for NVME device:{name} namespace-id:{nsid:x}\n" + _lines(rows, 36)


# ---------------------------------------------------------------------------- error-log
ERROR_FIELDS = ("error_count", "sqid", "cmdid", "status_field", "parm_error_location", "lba", "nsid", "vs")


def _status_text(field: int) -> str:
    """The name of an error entry's status (status field >> 1): 'INVALID_LOG_PAGE'; the
    code itself when it has no name."""
    name = status_name(field >> 1)                    # '0x4109 (INVALID_LOG_PAGE)'
    return name[name.index("(") + 1:-1] if "(" in name else name


def error_log_text(entries, name: str) -> str:
    out = [f"Error Log Entries for device:{name} entries:{len(entries)}", "................."]
    for i, e in enumerate(entries):
        out += [f" Entry[{i:2d}]   ", ".................",
                _lines([("error_count", e.error_count), ("sqid", e.sqid), ("cmdid", _hx(e.cmdid)),
                        ("status_field", f"{_hx(e.status_field)}({_status_text(e.status_field)})"),
                        ("parm_err_loc", _hx(e.parm_error_location)), ("lba", _hx(e.lba)),
                        ("nsid", _hx(e.nsid)), ("vs", e.vs)], 13),
                "................."]
    return "\n".join(out)


# ---------------------------------------------------------------------------- get-log
def hexdump(buf: bytes) -> str:
    """nvme-cli's d(buf, len, 16, 1): offsets, 16 bytes a row, the printable characters."""
    out = ["     " + "".join(f"{i:3x}" for i in range(16))]
    for off in range(0, len(buf), 16):
        row = buf[off:off + 16]
        hexes = " ".join(f"{b:02x}" for b in row)
        asc = "".join(chr(b) if 0x21 <= b <= 0x7E else "." for b in row)
        out.append(f"{off:04x}: {hexes:<47} \"{asc}\"")
    return "\n".join(out)


def _default_log_len(lid: int, elpe: int) -> int:
    if lid == LogPage.ERROR:
        return (elpe + 1) * 64
    if lid in (LogPage.SMART, LogPage.FW_SLOT, LogPage.OX_MEDIA_LABEL, LogPage.OX_FTL):
        return 512
    return 4096


# ---------------------------------------------------------------------------- lnvm
def lnvm_id_ns_json(i) -> dict:
    f = i.ppaf
    ppaf = {n: int(getattr(f, n)) for n, _ in f._fields_ if n != "res"}
    groups = []
    g = i.group
    for _ in range(min(i.cgrps, 1)):
        groups.append(dict(mtype=g.mtype, fmtype=g.fmtype, chnls=g.num_ch, luns=g.num_lun, plns=g.num_pln,
                           blks=g.num_blk, pgs=g.num_pg, fpg_sz=g.fpg_sz, csecs=g.csecs, sos=g.sos,
                           trdt=g.trdt, trdm=g.trdm, tprt=g.tprt, tprm=g.tprm, tbet=g.tbet, tbem=g.tbem,
                           mpos=g.mpos, mccap=g.mccap, cpar=g.cpar))
    return dict(verid=i.ver_id, vmnt=i.vmnt, cgrps=i.cgrps, cap=i.cap, dom=i.dom, ppaf=ppaf, groups=groups)


def lnvm_id_ns_text(i, nsid: int) -> str:
    f = i.ppaf
    rows = [("verid", _hx(i.ver_id)), ("vmnt", _hx(i.vmnt)), ("cgrps", i.cgrps), ("cap", _hx(i.cap)),
            ("dom", _hx(i.dom))]
    out = [f"LightNVM Identify Geometry ({nsid}):", _lines(rows, 9), "ppaf     :",
           f" ch offs : {f.ch_offset} ch bits  : {f.ch_len}",
           f" lun offs: {f.lun_offset} lun bits : {f.lun_len}",
           f" pl offs : {f.pln_offset} pl bits  : {f.pln_len}",
           f" blk offs: {f.blk_offset} blk bits : {f.blk_len}",
           f" pg offs : {f.pg_offset} pg bits  : {f.pg_len}",
           f" sec offs: {f.sect_offset} sec bits : {f.sect_len}"]
    for n, g in enumerate(lnvm_id_ns_json(i)["groups"]):
        out.append(f"{'grp':<9}: {n}")
        out += [f" {k:<8}: {_hx(v) if k in ('mpos', 'mccap', 'cpar') else v}" for k, v in g.items()]
    return "\n".join(out)


# ---------------------------------------------------------------------------- commands
@click.group("nvme")
def nvme_group():
    """nvme-cli's commands against a disk file: `ox nvme smart-log` is `nvme smart-log
    /dev/nvme0`, with its field names, layout and JSON keys (-o json).

    Every value is asked of the emulated controller over the bus (identify, log pages,
    LightNVM identity, bad block tables), in the mode the disk's media label says
    (open-channel or AppNVM). Commands that only read open the disk read-only and never
    create it; `reset` writes. `ox nvme lnvm ...` is the lnvm plugin of the Linux 4.x
    years; `nvme lnvm create -d nvme0n1 -n NAME -t pblk -b B -e E` is `ox format --mode
    pblk --luns B-E` here (the first mount creates the target's instance)."""


@nvme_group.command("id-ctrl")
@output_options
@device_options
def id_ctrl(fmt, raw_binary, disk, volatile, geometry, debug, create):
    """Identify controller (CNS 1), as `nvme id-ctrl` prints it: `vid     : 0x1d1d`, ...
    and one line per power state."""
    with _device(disk, volatile, geometry, debug) as dev:
        c = identify_controller(dev.driver)
    fmt = _fmt(fmt, raw_binary)
    if fmt == "binary":
        return _emit_binary(bytes(c))
    fields = id_ctrl_fields(c)
    if fmt == "json":
        obj = {k: j for k, _, j in fields if not (k == "subnqn" and not j)}
        obj["psds"] = _psd_json(c)
        return _emit_json(obj)
    _emit("NVME Identify Controller:\n" + _lines([(k, t) for k, t, _ in fields], 8) + "\n"
          + "\n".join(_psd_lines(c)))


@nvme_group.command("id-ns")
@click.option("-n", "--namespace-id", "nsid", type=NUM, default=1, show_default=True,
              help="The namespace to identify (this device has namespace 1).")
@output_options
@device_options
def id_ns(nsid, fmt, raw_binary, disk, volatile, geometry, debug, create):
    """Identify namespace (CNS 0), as `nvme id-ns` prints it. An open-channel namespace
    is flagged by vs[0] = 1 (what Linux looked at to call it LightNVM)."""
    with _device(disk, volatile, geometry, debug) as dev:
        ns = identify_namespace(dev.driver, nsid)
    fmt = _fmt(fmt, raw_binary)
    if fmt == "binary":
        return _emit_binary(bytes(ns))
    fields = id_ns_fields(ns)
    lbafs = [ns.lbaf[i] for i in range(ns.nlbaf + 1)]
    if fmt == "json":
        obj = {k: j for k, _, j in fields}
        obj["lbafs"] = [dict(ms=f.ms, ds=f.ds, rp=f.rp) for f in lbafs]
        obj["vs"] = [int(ns.vs[0])]
        return _emit_json(obj)
    rows = [(k, t) for k, t, _ in fields]
    lines = [f"lbaf {i:2d} : ms:{f.ms:<3d} lbads:{f.ds:<2d} rp:{_hx(f.rp)} "
             f"{'(in use)' if i == (ns.flbas & 0xF) else ''}".rstrip() for i, f in enumerate(lbafs)]
    _emit(f"NVME Identify Namespace {nsid}:\n" + _lines(rows, 8) + "\n" + "\n".join(lines))


@nvme_group.command("smart-log")
@click.option("-n", "--namespace-id", "nsid", type=NUM, default=NSID_ALL, show_default="0xffffffff",
              help="The namespace (0xffffffff: the controller).")
@output_options
@device_options
def smart_log_cmd(nsid, fmt, raw_binary, disk, volatile, geometry, debug, create):
    """SMART / health log (log page 0x02), as `nvme smart-log` prints it. The counters are
    lifetime counters kept in the disk's media label: data units (1000 x 512 bytes, rounded
    up per power-on), host read/write commands, power cycles (this command's own power-on
    included; a read-only look is not recorded), unsafe shutdowns, media errors;
    num_err_log_entries counts this power-on's errors. critical_warning bit 3 means the
    device placed the media in read-only mode (spare blocks used up)."""
    with _device(disk, volatile, geometry, debug) as dev:
        s = smart_log(dev.driver, nsid)
    fmt = _fmt(fmt, raw_binary)
    if fmt == "binary":
        return _emit_binary(bytes(s))
    if fmt == "json":
        return _emit_json(smart_json(s))
    _emit(smart_text(s, dev.name, nsid))


@nvme_group.command("error-log")
@click.option("-n", "--namespace-id", "nsid", type=NUM, default=NSID_ALL, show_default="0xffffffff")
@click.option("-e", "--log-entries", "entries", type=NUM, default=64, show_default=True,
              help="Entries to fetch (at most the controller's elpe + 1).")
@output_options
@device_options
def error_log_cmd(nsid, entries, fmt, raw_binary, disk, volatile, geometry, debug, create):
    """Error information log (log page 0x01), newest first, as `nvme error-log` prints
    it: error_count, sqid, cmdid, status_field (with the status's name), ... The
    controller keeps the entries of its power-on: each ox command is one, so the log
    shows what went wrong in this command's own session (empty entries are all zero)."""
    if entries <= 0:
        raise click.UsageError("non-zero --log-entries is required")
    with _device(disk, volatile, geometry, debug) as dev:
        elpe = identify_controller(dev.driver).elpe
        ents = error_log(dev.driver, min(entries, elpe + 1), nsid)
    fmt = _fmt(fmt, raw_binary)
    if fmt == "binary":
        return _emit_binary(b"".join(bytes(e) for e in ents))
    if fmt == "json":
        return _emit_json({"errors": [{k: int(getattr(e, k)) for k in ERROR_FIELDS} for e in ents]})
    _emit(error_log_text(ents, dev.name))


@nvme_group.command("get-log")
@click.option("-i", "--log-id", "lid", type=NUM, required=True,
              help="Log page id, e.g. 0x02 (SMART), 0x01 (error), 0x03 (firmware slot), 0xc0 (OX media "
                   "label), 0xc1 (OX FTL counters, AppNVM).")
@click.option("-l", "--log-len", "nbytes", type=NUM, default=None,
              help=f"Bytes to fetch, 1-{MAX_LOG_NBYTES} (default: the page's size when known, else 4096).")
@click.option("-n", "--namespace-id", "nsid", type=NUM, default=NSID_ALL, show_default="0xffffffff")
@click.option("-b", "--raw-binary", is_flag=True, help="Output the log page's bytes as they are.")
@device_options
def get_log_cmd(lid, nbytes, nsid, raw_binary, disk, volatile, geometry, debug, create):
    """Any log page, as `nvme get-log` prints it: a hex dump (or -b, the bytes). A log
    page the device does not have is refused with its NVMe status in one line."""
    if not 0 <= lid <= 0xFF:
        raise click.BadParameter(f"{lid} is not a log page id (0-255)", param_hint="--log-id")
    if nbytes is not None and not 0 < nbytes <= MAX_LOG_NBYTES:
        raise click.BadParameter(f"{nbytes} is outside 1-{MAX_LOG_NBYTES}", param_hint="--log-len")
    with _device(disk, volatile, geometry, debug) as dev:
        if nbytes is None:
            nbytes = _default_log_len(lid, identify_controller(dev.driver).elpe)
        raw = get_log(dev.driver, lid, nbytes, nsid)
    if raw_binary:
        return _emit_binary(raw)
    _emit(f"Device:{dev.name} log-id:{lid} namespace-id:{_hx(nsid)}\n" + hexdump(raw))


@nvme_group.command("reset")
@device_options
def reset_cmd(disk, volatile, geometry, debug, create):
    """Controller reset, `nvme reset`: CC.EN 1 -> 0, which makes the device persist its
    media to the disk file (AppNVM: the write buffer and a checkpoint first), then the
    controller is enabled again. Opens the disk for writing; like every ox command, it
    ends with a normal shutdown when it powers the device off."""
    with _device(disk, volatile, geometry, debug, write=True, create=create) as dev:
        dev.driver = reset_controller(dev.driver)
    click.echo(f"{dev.name}: controller reset (CC.EN 1->0)" + ("" if volatile else ": media persisted"))


# ---------------------------------------------------------------------------- lnvm
@nvme_group.group("lnvm")
def lnvm_group():
    """nvme-cli's lnvm plugin (LightNVM, Linux 4.x): list, info, id-ns, diag-bbtbl.

    `nvme lnvm create -d nvme0n1 -n NAME -t pblk -b B -e E` has no command here: `ox
    format --disk D --mode pblk --luns B-E --yes` labels the media for a pblk target on
    LUNs B-E, and the first `ox mount` creates its instance (uuid)."""


@lnvm_group.command("list")
@click.option("--disk", "disks", multiple=True, type=click.Path(dir_okay=False),
              help="A disk file to look at (repeatable; default ./ox.disk).")
@click.option("-o", "--output-format", "fmt", type=click.Choice(FORMATS[:2]), default="normal", show_default=True)
def lnvm_list(disks, fmt):
    """The disk files given and whether each is a LightNVM (open-channel) device, as `nvme
    lnvm list` listed the kernel's LightNVM devices: each disk is opened read-only and
    asked (identify namespace, the LightNVM identity)."""
    from ..stack import describe_label

    rows = []
    for disk in disks or ("ox.disk",):
        with _device(disk, False, None, False) as dev:
            lightnvm = dev.is_lightnvm()
            version = LIGHTNVM_VERSIONS.get(nvm_identity(dev.driver).ver_id, "?") if lightnvm else None
            holds = describe_label(dev.driver.media_label())
        rows.append(dict(device=disk, lightnvm=lightnvm,
                         mode="open-channel" if lightnvm else "AppNVM", version=version, holds=holds))
    if fmt == "json":
        return _emit_json({"devices": rows})
    out = [f"Number of devices: {len(rows)}", f"{'Device':<12}\t{'Mode':<12}\tVersion\tHolds"]
    out += [f"{r['device']:<12}\t{r['mode']:<12}\t{r['version'] or '-'}\t{r['holds']}" for r in rows]
    _emit("\n".join(out))


@lnvm_group.command("info")
@click.option("-o", "--output-format", "fmt", type=click.Choice(FORMATS[:2]), default="normal", show_default=True)
@device_options
def lnvm_info(fmt, disk, volatile, geometry, debug, create):
    """The target recorded in the media label (vendor log page 0xC0), where `nvme lnvm
    info` listed the target types the kernel had registered: type, LUN range, instance
    uuid and capacity."""
    with _device(disk, volatile, geometry, debug) as dev:
        dev.need_lightnvm()
        lab = dev.driver.media_label()
    tgts = []
    if lab.target == TargetKind.PBLK:
        tgts.append(dict(type="pblk", lun_begin=lab.lun_begin, lun_end=lab.lun_end,
                         uuid=bytes(lab.uuid).hex() if any(lab.uuid) else None,
                         capacity_bytes=lab.capacity_bytes or None))
    if fmt == "json":
        return _emit_json({"device": dev.name, "targets": tgts})
    out = [f"LightNVM (1,2,0). {len(tgts)} target(s) recorded in the media label of {dev.name}."]
    if tgts:
        out.append("Type\tLUNs\tUUID\tCapacity")
        for t in tgts:
            out.append(f"{t['type']}\t{t['lun_begin']}-{t['lun_end']}\t{t['uuid'] or 'not yet created'}\t"
                       + (f"{t['capacity_bytes']} bytes" if t["capacity_bytes"] else "not yet created"))
    else:
        out.append(f"(create one: ox format --disk {dev.name} --mode pblk --luns B-E --yes, then ox mount)")
    _emit("\n".join(out))


@lnvm_group.command("id-ns")
@click.option("-n", "--namespace-id", "nsid", type=NUM, default=1, show_default=True)
@output_options
@device_options
def lnvm_id_ns(nsid, fmt, raw_binary, disk, volatile, geometry, debug, create):
    """The LightNVM 1.2 identity (admin 0xE2), as `nvme lnvm id-ns` printed it: verid,
    vmnt, cgrps, cap, dom, the PPA format, then per group mtype, fmtype, chnls, luns,
    plns, blks, pgs, fpg_sz, csecs, sos, the NAND times in ns (trdt ... tbem), mpos,
    mccap, cpar."""
    with _device(disk, volatile, geometry, debug) as dev:
        dev.need_lightnvm()
        ident = nvm_identity(dev.driver, nsid)
    fmt = _fmt(fmt, raw_binary)
    if fmt == "binary":
        return _emit_binary(bytes(ident))
    if fmt == "json":
        return _emit_json(lnvm_id_ns_json(ident))
    _emit(lnvm_id_ns_text(ident, nsid))


@lnvm_group.command("diag-bbtbl")
@click.option("-c", "--channel-id", "ch", type=NUM, default=0, show_default=True, help="Channel.")
@click.option("-l", "--lun-id", "lun", type=NUM, default=0, show_default=True, help="LUN within the channel.")
@click.option("-n", "--namespace-id", "nsid", type=NUM, default=1, show_default=True)
@output_options
@device_options
def lnvm_diag_bbtbl(ch, lun, nsid, fmt, raw_binary, disk, volatile, geometry, debug, create):
    """A LUN's bad block table (admin 0xF2), as `nvme lnvm diag-bbtbl` printed it: the
    counts, and with -b the table (one state byte per block-plane, blk * planes + pl:
    0 free, 1 bad, 2 grown bad, 4 device reserved, 8 host reserved); -o json has both."""
    with _device(disk, volatile, geometry, debug) as dev:
        dev.need_lightnvm()
        ident = nvm_identity(dev.driver, nsid)
        g = ident.group
        if not (0 <= ch < g.num_ch and 0 <= lun < g.num_lun):
            raise click.ClickException(f"out of bound channel id or LUN id: ch {ch} lun {lun} (the device "
                                       f"has channels 0-{g.num_ch - 1}, LUNs 0-{g.num_lun - 1})")
        h, table = bad_block_table(dev.driver, ident, ch, lun, nsid)
    fmt = _fmt(fmt, raw_binary)
    if fmt == "binary":
        return _emit_binary(table.tobytes())
    counts = dict(verid=h.verid, tblks=h.tblks, tfact=h.tfact, tgrown=h.tgrown, tdresv=h.tdresv,
                  thresv=h.thresv)
    if fmt == "json":
        npl = g.num_pln
        marked = [dict(blk=int(i) // npl, pl=int(i) % npl, state=BlockState(int(table[i])).name.lower())
                  for i in table.nonzero()[0]]
        return _emit_json(dict(counts, channel=ch, lun=lun, table=table.tolist(), marked=marked))
    rows = [(k, _hx(v) if k == "verid" else v) for k, v in counts.items()]
    _emit("LightNVM Bad Block Stats:\n" + _lines(rows, 9) + "\nUse raw output to retrieve table.")


def register(main):
    main.add_command(nvme_group)
