"""`ox dev`, `ox addr`, `ox vblk`, `ox bbt`: liblightnvm's nvm_* tools against a disk file."""
import contextlib
import os
import re
import time

import click
import numpy as np

from oxemu.wire import BlockState, MediaMode, PMode, TargetKind

from ..lightnvm import (Addr, AddrCheck, Device, NvmError, VBlk, addr_check, buf_fill, dev2gen, fmt,
                        gen2dev)
from .common import device_options, disk_exists, missing_disk, open_machine, parse_geometry, resolve_geometry

ADDR_HELP = ("Addresses are generic liblightnvm values (0x... as printed by `ox addr fmt`) "
             "or CH:LUN:PL:BLK:PG:SEC with trailing fields optional (0).")


def parse_addr(text: str) -> Addr:
    if re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", text):
        return Addr.from_val(int(text, 0))
    parts = text.split(":")
    if not 1 <= len(parts) <= 6 or not all(p.isdigit() for p in parts):
        raise click.BadParameter(f"{text!r} is neither a generic address (0x...) nor CH:LUN:PL:BLK:PG:SEC")
    return Addr(*map(int, parts))


def parse_addrs(texts) -> list:
    return [parse_addr(t) for t in texts]


def _check(addrs, geo) -> None:
    bad = addr_check(addrs, geo)
    if bad:
        names = ", ".join(f.name.lower() for f in AddrCheck if bad & f)
        raise click.ClickException(f"address outside the device geometry ({names})")


@contextlib.contextmanager
def open_device(disk, volatile, geometry, debug, *, write=False, create=False):
    with open_machine(disk, volatile, geometry, debug, write=write, create=create) as m:
        dev = Device.open(m)
        try:
            yield dev
        finally:
            dev.close()


def _nvm_error(e: NvmError) -> click.ClickException:
    """`ox: error: <what>: <STATUS> (0x4002): <reason> (k of n address(es) failed)`."""
    return click.ClickException(str(e))


PMODES = {"sngl": PMode.SNGL, "dual": PMode.DUAL, "quad": PMode.QUAD}


def pmode_option(f):
    return click.option("--pmode", type=click.Choice(list(PMODES)), default=None,
                        help="Plane mode (default: the device's widest, dual).")(f)


def _pm(dev, name):
    return dev.pmode if name is None else PMODES[name]


def _input_data(path, seed, nbytes) -> np.ndarray:
    buf = np.zeros(nbytes, dtype=np.uint8)
    if path:
        raw = np.fromfile(path, dtype=np.uint8, count=nbytes)
        buf[:raw.size] = raw
    else:
        buf_fill(buf, seed)
    return buf


def _output(data: np.ndarray, path, what: str) -> None:
    if path:
        data.tofile(path)
        click.echo(f"{what}: {data.nbytes} bytes written to {path}")
    else:
        import crc32c
        click.echo(f"{what}: {data.nbytes} bytes, crc32c 0x{crc32c.crc32c(data.tobytes()):08x}, "
                   f"{np.count_nonzero(data)} non-zero bytes")


# ---------------------------------------------------------------------------- dev
@click.group("dev")
def dev_group():
    """Device information (nvm_dev)."""


@dev_group.command("info")
@device_options
def dev_info(disk, volatile, geometry, debug, create):
    """The media label (what the disk holds), geometry, PPA format, timings and mode; one
    `name: value` per line. Reads only: the disk file is opened read-only."""
    from oxemu import probe_label

    label = None
    if not volatile:
        if not disk_exists(disk):
            raise missing_disk(disk)
        label = probe_label(disk)
    lines = _label_lines(label, disk) if label is not None else [("media", "volatile (volt=1)")]
    if label is not None and label.mode == MediaMode.APPNVM:
        g = resolve_geometry(disk, volatile, geometry)
        lines += [("mode", "AppNVM (device-side FTL behind a plain NVMe namespace, lnvm=0)"),
                  ("nchannels", g.nchannels), ("nluns", g.nluns), ("nplanes", g.nplanes),
                  ("nblocks", g.nblocks), ("npages", g.npages), ("nsectors", g.nsectors),
                  ("sector_nbytes", g.sector_nbytes)]
        for k, v in lines:
            click.echo(f"{k}: {v}")
        return
    with open_device(disk, volatile, geometry, debug) as dev:
        g = dev.geo
        d = dev.driver
        f = g.ppaf
        lines += [
            ("mode", "open-channel (LightNVM 1.2, lnvm=1)"),
            ("serial", d.id_ctrl.sn.decode().strip()),
            ("model", d.id_ctrl.mn.decode().strip()),
            ("firmware", d.id_ctrl.fr.decode().strip()),
            ("pci_ids", f"{d.vendor:04x}:{d.device_id:04x}"),
            ("nvme_version", f"{d.version >> 16}.{(d.version >> 8) & 0xFF}"),
            ("nchannels", g.nchannels), ("nluns", g.nluns), ("nplanes", g.nplanes),
            ("nblocks", g.nblocks), ("npages", g.npages), ("nsectors", g.nsectors),
            ("sector_nbytes", g.sector_nbytes), ("page_nbytes", g.page_nbytes),
            ("meta_nbytes", g.meta_nbytes), ("tbytes", g.tbytes),
            ("pmode", dev.pmode.name), ("mpos", f"0x{g.mpos:06x}"),
            ("max_transfer_nbytes", d.max_transfer),
            ("ppaf", f"ch {f.ch_off}/{f.ch_len} lun {f.lun_off}/{f.lun_len} pl {f.pl_off}/{f.pl_len} "
                     f"blk {f.blk_off}/{f.blk_len} pg {f.pg_off}/{f.pg_len} sec {f.sec_off}/{f.sec_len}"),
        ]
        lines += [(k + "_ns", v) for k, v in g.timings_ns.items()]
    for k, v in lines:
        click.echo(f"{k}: {v}")


def _when(t: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "never"


def _label_lines(label, disk) -> list:
    from ..stack import describe_label
    out = [("media", f"disk file {disk} (volt=0)"), ("holds", describe_label(label))]
    if label.target == TargetKind.PBLK:
        out += [("luns", f"{label.lun_begin}-{label.lun_end}"),
                ("uuid", bytes(label.uuid).hex() if any(label.uuid) else "not yet created")]
    if label.capacity_bytes:
        out.append(("capacity_bytes", label.capacity_bytes))
    out += [("created", _when(label.created_s)), ("formatted", _when(label.formatted_s)),
            ("last_clean_stop", _when(label.last_stop_s)),
            ("last_stop", "clean" if label.last_stop_clean else "unclean (power cut or crash)"),
            ("read_only", "yes: spare blocks used up" if label.read_only else "no"),
            ("power_cycles", label.power_cycles), ("unsafe_shutdowns", label.unsafe_shutdowns),
            ("data_units_written", label.data_units_written), ("data_units_read", label.data_units_read),
            ("media_errors", label.media_errors)]
    return out


# ---------------------------------------------------------------------------- addr
@click.group("addr", help=f"Physical address I/O and conversions (nvm_addr). {ADDR_HELP}")
def addr_group():
    pass


@addr_group.command("erase")
@click.argument("addrs", nargs=-1, required=True)
@pmode_option
@device_options
def addr_erase(addrs, pmode, disk, volatile, geometry, debug, create):
    """Erase the blocks of ADDRS (in dual mode give both planes of each block)."""
    addrs = parse_addrs(addrs)
    with open_device(disk, volatile, geometry, debug, write=True, create=create) as dev:
        _check(addrs, dev.geo)
        try:
            dev.addr_erase(addrs, pmode=_pm(dev, pmode))
        except NvmError as e:
            raise _nvm_error(e) from None
    click.echo(f"erased {len(addrs)} address(es)")


@addr_group.command("write")
@click.argument("addrs", nargs=-1, required=True)
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False),
              help="Data to write (zero-padded); default: a seeded pattern.")
@click.option("--seed", default=0, show_default=True, help="Seed of the generated pattern.")
@click.option("--meta", "meta_seed", type=int, default=None, help="Also write OOB metadata from this seed.")
@pmode_option
@device_options
def addr_write(addrs, input_path, seed, meta_seed, pmode, disk, volatile, geometry, debug, create):
    """Program one sector per address; whole pages (all sectors, and both planes in dual mode)."""
    addrs = parse_addrs(addrs)
    with open_device(disk, volatile, geometry, debug, write=True, create=create) as dev:
        _check(addrs, dev.geo)
        data = _input_data(input_path, seed, len(addrs) * dev.geo.sector_nbytes)
        meta = None
        if meta_seed is not None:
            meta = buf_fill(np.empty(len(addrs) * dev.geo.meta_nbytes, np.uint8), meta_seed)
        try:
            dev.addr_write(addrs, data, meta=meta, pmode=_pm(dev, pmode))
        except NvmError as e:
            raise _nvm_error(e) from None
    click.echo(f"wrote {len(addrs)} sector(s)")


@addr_group.command("read")
@click.argument("addrs", nargs=-1, required=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Write the data to this file.")
@click.option("--meta", "show_meta", is_flag=True, help="Also print each sector's OOB metadata (hex).")
@pmode_option
@device_options
def addr_read(addrs, output, show_meta, pmode, disk, volatile, geometry, debug, create):
    """Read one sector per address."""
    addrs = parse_addrs(addrs)
    with open_device(disk, volatile, geometry, debug) as dev:
        _check(addrs, dev.geo)
        try:
            data, meta = dev.addr_read(addrs, pmode=_pm(dev, pmode), with_meta=show_meta)
        except NvmError as e:
            raise _nvm_error(e) from None
        sos = dev.geo.meta_nbytes
    _output(data, output, f"read {len(addrs)} sector(s)")
    if show_meta:
        for i, a in enumerate(addrs):
            click.echo(f"meta {fmt(a)}: {meta[i * sos:(i + 1) * sos].tobytes().hex()}")


@addr_group.command("fmt")
@click.argument("addrs", nargs=-1, required=True)
def addr_fmt(addrs):
    """Print addresses in liblightnvm's format."""
    for a in parse_addrs(addrs):
        click.echo(fmt(a))


@addr_group.command("gen2dev")
@click.argument("addrs", nargs=-1, required=True)
@device_options
def addr_gen2dev(addrs, disk, volatile, geometry, debug, create):
    """Generic address -> device PPA (per the device's ppaf)."""
    addrs = parse_addrs(addrs)
    with open_device(disk, volatile, geometry, debug) as dev:
        _check(addrs, dev.geo)
        for a in addrs:
            click.echo(f"{fmt(a)} -> dev 0x{gen2dev(a, dev.geo):016x}")


@addr_group.command("dev2gen")
@click.argument("ppas", nargs=-1, required=True)
@device_options
def addr_dev2gen(ppas, disk, volatile, geometry, debug, create):
    """Device PPA -> generic address."""
    try:
        values = [int(p, 0) for p in ppas]
    except ValueError:
        raise click.BadParameter("device PPAs are integers (0x... or decimal)") from None
    with open_device(disk, volatile, geometry, debug) as dev:
        for v in values:
            a = dev2gen(v, dev.geo)
            if gen2dev(a, dev.geo) != v:
                raise click.ClickException(f"0x{v:x} has bits outside the device's PPA format")
            click.echo(f"dev 0x{v:016x} -> {fmt(a)}")


# ---------------------------------------------------------------------------- vblk
@click.group("vblk", help=f"Virtual blocks: one block on several LUNs used as one (nvm_vblk). {ADDR_HELP}")
def vblk_group():
    pass


def _vblk_cmd(name, doc, line: bool):
    """Build `vblk NAME ADDRS...` or `vblk line-NAME CH_BGN CH_END LUN_BGN LUN_END BLK`."""
    def decorate(fn):
        params = ([click.argument(n, type=int) for n in ("ch_bgn", "ch_end", "lun_bgn", "lun_end", "blk")]
                  if line else [click.argument("addrs", nargs=-1, required=True)])
        for p in reversed(params):
            fn = p(fn)
        return vblk_group.command(("line-" if line else "") + name, help=doc)(device_options(fn))
    return decorate


@contextlib.contextmanager
def _vblk(kw, debug_and_dev, write=True):
    disk, volatile, geometry, debug = debug_and_dev
    with open_device(disk, volatile, geometry, debug, write=write, create=kw.pop("create", False)) as dev:
        if "addrs" in kw:
            addrs = parse_addrs(kw["addrs"])
            _check(addrs, dev.geo)
            vb = VBlk.alloc(dev, addrs)
        else:
            vb = VBlk.alloc_line(dev, kw["ch_bgn"], kw["ch_end"], kw["lun_bgn"], kw["lun_end"], kw["blk"])
        try:
            yield vb
        except NvmError as e:
            raise _nvm_error(e) from None


def _make_vblk_commands(line: bool):
    @_vblk_cmd("erase", "Erase every block of the virtual block.", line)
    def erase(disk, volatile, geometry, debug, **kw):
        with _vblk(kw, (disk, volatile, geometry, debug)) as vb:
            vb.erase()
            click.echo(f"erased {len(vb.blks)} block(s), {vb.nbytes} bytes")

    @click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False),
                  help="Data to write (zero-padded to the vblk size); default: a seeded pattern.")
    @click.option("--seed", default=0, show_default=True)
    @_vblk_cmd("write", "Write the whole virtual block (it must be erased).", line)
    def write(disk, volatile, geometry, debug, input_path=None, seed=0, **kw):
        with _vblk(kw, (disk, volatile, geometry, debug)) as vb:
            buf = vb.dev.buf_alloc(vb.nbytes)
            buf[:] = _input_data(input_path, seed, vb.nbytes)
            vb.write(buf)
            click.echo(f"wrote {vb.nbytes} bytes to {len(vb.blks)} block(s)")

    @click.option("--output", type=click.Path(dir_okay=False), help="Write the data to this file.")
    @click.option("--nbytes", type=int, default=None, help="Bytes to read (default: all).")
    @_vblk_cmd("read", "Read the virtual block.", line)
    def read(disk, volatile, geometry, debug, output=None, nbytes=None, **kw):
        with _vblk(kw, (disk, volatile, geometry, debug), write=False) as vb:
            n = vb.nbytes if nbytes is None else nbytes
            _output(vb.read(n).copy(), output, f"read {len(vb.blks)} block(s)")

    @_vblk_cmd("pad", "Program the remaining pages of the virtual block with zeros.", line)
    def pad(disk, volatile, geometry, debug, **kw):
        with _vblk(kw, (disk, volatile, geometry, debug)) as vb:
            dev = vb.dev
            # resume after the pages already programmed: find the first empty stripe
            stripe = vb.stripe_nsectors * dev.geo.sector_nbytes
            pos = 0
            while pos < vb.nbytes:
                try:
                    vb.pread(dev.geo.sector_nbytes, pos)
                except NvmError:
                    break
                pos += stripe
            vb.pos_write = pos
            vb.pad()
            click.echo(f"padded {vb.nbytes - pos} bytes")


_make_vblk_commands(line=False)
_make_vblk_commands(line=True)


# ---------------------------------------------------------------------------- bbt
STATES = {"free": BlockState.FREE, "bad": BlockState.BAD, "grown": BlockState.GRWN_BAD,
          "dev": BlockState.DEV, "host": BlockState.HOST}


@click.group("bbt")
def bbt_group():
    """Bad block tables (nvm_bbt)."""


@bbt_group.command("get")
@click.argument("ch", type=int)
@click.argument("lun", type=int)
@device_options
def bbt_get(ch, lun, disk, volatile, geometry, debug, create):
    """Print the bad block table of a LUN (entries that are not free)."""
    with open_device(disk, volatile, geometry, debug) as dev:
        _check([Addr(ch, lun)], dev.geo)
        click.echo(dev.bbt_get(Addr(ch, lun)).pr())


@bbt_group.command("mark")
@click.argument("state", type=click.Choice(list(STATES)))
@click.argument("addrs", nargs=-1, required=True)
@device_options
def bbt_mark(state, addrs, disk, volatile, geometry, debug, create):
    """Set the state of the block-planes named by ADDRS."""
    addrs = parse_addrs(addrs)
    with open_device(disk, volatile, geometry, debug, write=True, create=create) as dev:
        _check(addrs, dev.geo)
        dev.bbt_mark(addrs, STATES[state])
    click.echo(f"marked {len(addrs)} block-plane(s) {state}")


def _parse_blocks(text: str, nblocks: int) -> list:
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if not m:
            raise click.BadParameter(f"{part!r} is not a block number or range")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if not lo <= hi < nblocks:
            raise click.BadParameter(f"blocks {part} outside 0-{nblocks - 1}")
        out.extend(range(lo, hi + 1))
    return out


@bbt_group.command("set")
@click.argument("ch", type=int)
@click.argument("lun", type=int)
@click.argument("state", type=click.Choice(list(STATES)))
@click.option("--blocks", default=None, help="Blocks to set, e.g. 1,4-7 (default: every block).")
@device_options
def bbt_set(ch, lun, state, blocks, disk, volatile, geometry, debug, create):
    """Write a LUN's table: the chosen blocks (all planes) get STATE, the rest keep theirs."""
    with open_device(disk, volatile, geometry, debug, write=True, create=create) as dev:
        _check([Addr(ch, lun)], dev.geo)
        table = dev.bbt_get(Addr(ch, lun))
        blks = range(dev.geo.nblocks) if blocks is None else _parse_blocks(blocks, dev.geo.nblocks)
        for b in blks:
            table.blks[b * dev.geo.nplanes:(b + 1) * dev.geo.nplanes] = STATES[state]
        dev.bbt_set(table)
    click.echo(f"set {len(blks)} block(s) of ch {ch} lun {lun} to {state}")


# ---------------------------------------------------------------------------- format
@click.command("format")
@click.option("--disk", default="ox.disk", show_default=True, type=click.Path(dir_okay=False),
              help="The media file to format (created when missing).")
@click.option("--mode", type=click.Choice(["pblk", "appnvm", "zoned"]), required=True,
              help="What the media is for: a pblk volume (open-channel), an AppNVM volume, or zones (a "
                   "zoned namespace: the zoned FTL, an FTL of yours with --spec zns, or `ox zone`).")
@click.option("--luns", default=None, metavar="B-E",
              help="pblk's LUN range (inclusive; default all LUNs).")
@click.option("--geometry", default=None, metavar="CHxLUNxBLKxPG",
              help="Geometry of a new disk file (an existing one keeps its own).")
@click.option("--yes", is_flag=True, help="Confirm: every byte on the media is erased.")
def format_cmd(disk, mode, luns, geometry, yes):
    """Erase the media and label it for MODE: the one way to reuse a disk for another
    mode or LUN range. Bad block tables (factory and grown) and erase counts are kept,
    as a drive keeps them; every data block is erased. Refuses a disk in use."""
    from oxemu import format_media, probe_label
    from oxemu.wire import Interface, MediaMode, TargetKind

    from ..fuse import registry
    from ..stack import StackError, describe_label, parse_luns

    if os.path.isdir(disk):
        raise click.ClickException(f"{disk}: is a directory, not a disk file")
    rng = parse_luns(luns)
    if mode != "pblk" and rng is not None:
        raise StackError(f"--luns is for pblk: {'zones span' if mode == 'zoned' else 'the AppNVM FTL uses'} "
                         f"every LUN")
    rec = registry.find_disk(os.path.abspath(disk))
    if rec is not None:
        raise click.ClickException(f"{disk}: in use: mounted at {rec.upper or rec.mountpoint} "
                                   f"(pid {rec.pid}); unmount it first")
    held = None
    if os.path.exists(disk):
        try:
            held = describe_label(probe_label(disk))
        except Exception:             # noqa: BLE001 - an old or foreign file: format says
            held = "media this build cannot describe"
    if not yes:
        what = f"it holds {held}" if held else "a new disk file is created"
        raise click.ClickException(f"ox format erases every byte on {disk} ({what}); "
                                   f"add --yes to do it")
    geo = parse_geometry(geometry)
    if mode == "pblk":
        kw = dict(mode=MediaMode.OPEN_CHANNEL, target=TargetKind.PBLK, luns=rng)
    elif mode == "zoned":
        kw = dict(mode=MediaMode.ZONED, interface=Interface.ZNS)
    else:
        kw = dict(mode=MediaMode.APPNVM)
    label = format_media(disk, geometry=geo, **kw)
    click.echo(f"ox: formatted {disk} for {describe_label(label)}; bad blocks and erase counts kept")


def register(main):
    for g in (dev_group, addr_group, vblk_group, bbt_group, format_cmd):
        main.add_command(g)


