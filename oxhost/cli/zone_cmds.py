"""`ox zone`: a zoned namespace's zones by hand, as libzbd's `zbd` tool and nvme-cli's `nvme
zns` work a ZNS drive: info, report, open, close, finish, reset, append, read."""
import contextlib
import json
import sys

import click
import numpy as np

from oxemu.wire import ZoneReportFilter, ZoneState

from .common import GEOMETRY_HELP, config_options, disk_exists, load_config, resolve_geometry

_STATES = {"empty": ZoneReportFilter.EMPTY, "implicitly-open": ZoneReportFilter.IMPLICITLY_OPEN,
           "explicitly-open": ZoneReportFilter.EXPLICITLY_OPEN, "closed": ZoneReportFilter.CLOSED,
           "full": ZoneReportFilter.FULL, "read-only": ZoneReportFilter.READ_ONLY,
           "offline": ZoneReportFilter.OFFLINE}


def _cond(state: ZoneState) -> str:
    return state.name.lower().replace("_", "-")


def _disk_options(f):
    f = click.option("--debug", is_flag=True, help="Print the controller's per-command trace (stderr).")(f)
    f = click.option("--geometry", default=None, metavar="CHxLUNxBLKxPG", help=GEOMETRY_HELP)(f)
    f = click.option("--disk", default="ox.disk", show_default=True, type=click.Path(dir_okay=False),
                     help="Media file of the zoned device. Commands that only read open it read-only; "
                          "none creates it unless --create.")(f)
    return config_options(f)


def _write_options(f):
    f = click.option("--create", is_flag=True, help="Create the disk file if it is missing.")(f)
    return _disk_options(f)


@contextlib.contextmanager
def open_zoned(disk, geometry, debug, config_path, sets, *, write=False, create=False):
    """The zoned device on the disk file (read-only unless the command writes)."""
    from oxemu import Machine

    from ..zns import ZonedDevice
    if not (disk_exists(disk) or (write and create)):
        raise click.ClickException(f"{disk}: no such disk file; create one with `ox format --disk {disk} "
                                   f"--mode zoned --yes` (or pass --create to a command that writes)")
    cfg = load_config(config_path, sets)
    geo = resolve_geometry(disk, False, geometry)
    with Machine(lnvm=0, spec="zns", volt=0, disk=disk, geometry=geo, debug=1 if debug else 0,
                 trace_stream=sys.stderr, readonly=not write, nand=cfg.to_nand_timing(),
                 zns=cfg.zns_params()) as m:
        dev = ZonedDevice.open(m)
        try:
            yield dev
        finally:
            dev.close()


def _zones(dev, zone: int | None, select_all: bool) -> tuple[int, int]:
    """(first LBA, LBAs) of one zone, or (0, 0) for every zone."""
    if select_all == (zone is not None):
        raise click.UsageError("give a ZONE number or --all")
    if select_all:
        return 0, 0
    if not 0 <= zone < dev.info.nr_zones:
        raise click.BadParameter(f"zone {zone} outside 0-{dev.info.nr_zones - 1}", param_hint="ZONE")
    return zone * dev.info.zone_sectors, dev.info.zone_sectors


@click.group("zone")
def zone_group():
    """A zoned namespace's zones by hand (a device in zoned mode: `--spec zns`).

    \b
    ox zone info                         zones, sizes, limits
    ox zone report [--state full]        every zone: start, length, capacity, write pointer, state
    ox zone append 3 --count 8           append to zone 3; prints the LBA it landed at
    ox zone read 768 --count 8           read it back
    ox zone finish 3 | reset 3 | reset --all | open 3 | close 3
    Zones are numbered from 0; LBAs are 4 KiB. docs/zns.md describes the device.
    """


@zone_group.command("info")
@_disk_options
def zone_info(disk, geometry, debug, config_path, sets):
    """The namespace's zones and limits (libzbd's zbd_get_info)."""
    with open_zoned(disk, geometry, debug, config_path, sets) as dev:
        i = dev.info
        cap = dev.zone(0).capacity if i.nr_zones else 0
    rows = [("zones", f"{i.nr_zones}"), ("zone size", f"{i.zone_sectors} LBAs ({i.zone_size:,} bytes)"),
            ("zone capacity", f"{cap} LBAs ({cap * i.lblock_size:,} bytes)"),
            ("LBA size", f"{i.lblock_size} bytes + {i.md_size} bytes of metadata"),
            ("write unit", f"{i.write_unit} LBAs"),
            ("max open zones", str(i.max_nr_open_zones or "no limit")),
            ("max active zones", str(i.max_nr_active_zones or "no limit")),
            ("capacity", f"{i.nr_lblocks} LBAs ({i.nr_lblocks * i.lblock_size:,} bytes)")]
    for k, v in rows:
        click.echo(f"{k:<18}{v}")


@zone_group.command("report")
@click.option("--zone", "first", type=click.IntRange(min=0), default=0, show_default=True,
              help="The first zone to report.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Zones to report (default: to the end).")
@click.option("--state", type=click.Choice(list(_STATES)), default=None, help="Only zones in this state.")
@click.option("--json", "as_json", is_flag=True, help="JSON, one object per zone.")
@_disk_options
def zone_report(first, count, state, as_json, disk, geometry, debug, config_path, sets):
    """Report zones (zone management receive 0x7A): start LBA, length, capacity, write
    pointer (none for full, read-only and offline zones), state, attributes."""
    with open_zoned(disk, geometry, debug, config_path, sets) as dev:
        i = dev.info
        if first >= i.nr_zones:
            raise click.BadParameter(f"zone {first} outside 0-{i.nr_zones - 1}", param_hint="--zone")
        n = (count or i.nr_zones) * i.zone_sectors
        zones = dev.report_zones(first * i.zone_sectors, min(n, (i.nr_zones - first) * i.zone_sectors),
                                 ro=_STATES.get(state, ZoneReportFilter.ALL))
    if as_json:
        click.echo(json.dumps([dict(zone=z.index, start=z.start, len=z.len, capacity=z.capacity, wp=z.wp,
                                    state=_cond(z.cond), attrs=int(z.attrs)) for z in zones], indent=1))
        return
    click.echo(f"{'zone':>5} {'start':>10} {'len':>7} {'cap':>7} {'wp':>10}  state            attrs")
    for z in zones:
        wp = "-" if z.wp is None else str(z.wp)
        attrs = "finished-by-controller" if z.attrs & 1 else ""
        click.echo(f"{z.index:>5} {z.start:>10} {z.len:>7} {z.capacity:>7} {wp:>10}  {_cond(z.cond):<16} {attrs}")
    click.echo(f"{len(zones)} zone(s)")


def _action(name: str, what: str):
    @zone_group.command(name, help=what)
    @click.argument("zone", type=int, required=False)
    @click.option("--all", "select_all", is_flag=True, help="Every zone the action applies to (select all).")
    @_write_options
    def cmd(zone, select_all, disk, geometry, debug, create, config_path, sets):
        with open_zoned(disk, geometry, debug, config_path, sets, write=True, create=create) as dev:
            lba, n = _zones(dev, zone, select_all)
            getattr(dev, f"{name}_zones")(lba, n)
        click.echo(f"{name}: {'every zone it applies to' if select_all else f'zone {zone}'}")
    return cmd


_action("open", "Open zone ZONE explicitly (zone management send 0x79, open). The device shuts down "
                "when the command ends, which closes open zones: the zone stays closed, holding an active "
                "resource (a closed zone written to nothing is still closed), until finished or reset.")
_action("close", "Close open zone ZONE: it keeps its data and write pointer and an active resource.")
_action("finish", "Finish zone ZONE: full from now on, its write pointer gone, no resource held.")
_action("reset", "Reset zone ZONE: empty again, its data gone, its write pointer at its start.")


@zone_group.command("append")
@click.argument("zone", type=int)
@click.option("--count", type=click.IntRange(1, 256), default=1, show_default=True, help="LBAs to append.")
@click.option("--file", "path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Data from this file (zero-padded to whole LBAs); default: a seeded pattern.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the pattern.")
@_write_options
def zone_append(zone, count, path, seed, disk, geometry, debug, create, config_path, sets):
    """Zone append (0x7D): COUNT LBAs land at ZONE's write pointer; prints the LBA the
    device wrote them at (from the completion)."""
    import crc32c

    from ..lightnvm import buf_fill
    with open_zoned(disk, geometry, debug, config_path, sets, write=True, create=create) as dev:
        _zones(dev, zone, False)
        buf = np.zeros(count * dev.info.lblock_size, np.uint8)
        if path:
            raw = np.fromfile(path, dtype=np.uint8, count=buf.nbytes)
            buf[:raw.size] = raw
        else:
            buf_fill(buf, seed)
        lba = dev.append(zone, buf)
    click.echo(f"zone {zone}: appended {count} LBA(s) at LBA {lba} (crc32c 0x{crc32c.crc32c(buf.tobytes()):08x})")


@zone_group.command("read")
@click.argument("lba", type=click.IntRange(min=0))
@click.option("--count", type=click.IntRange(1, 1 << 20), default=1, show_default=True, help="LBAs to read.")
@click.option("--out", "path", default=None, type=click.Path(dir_okay=False),
              help="Write the data to this file (default: print its size and crc32c).")
@_disk_options
def zone_read(lba, count, path, disk, geometry, debug, config_path, sets):
    """Read COUNT LBAs from LBA (never-written ones read as zeros)."""
    import crc32c
    with open_zoned(disk, geometry, debug, config_path, sets) as dev:
        if lba + count > dev.info.nr_lblocks:
            raise click.BadParameter(f"LBAs {lba}+{count} beyond the namespace of {dev.info.nr_lblocks}",
                                     param_hint="LBA")
        data, _ = dev.read(lba, count)
    if path:
        data.tofile(path)
        click.echo(f"read {data.nbytes} bytes to {path}")
    else:
        click.echo(f"read {data.nbytes} bytes, crc32c 0x{crc32c.crc32c(data.tobytes()):08x}, "
                   f"{np.count_nonzero(data)} non-zero bytes")


def register(main: click.Group) -> None:
    main.add_command(zone_group)
