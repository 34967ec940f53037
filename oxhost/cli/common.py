"""Options and helpers the CLI commands share: which device, which geometry."""
import contextlib
import os
import re
import sys

import click

from oxemu import Geometry, Machine, probe_geometry

GEOMETRY_HELP = ("Media geometry CHxLUNxBLKxPG (planes 2, sectors 4 x 4 KiB), e.g. 2x2x16x32; "
                 "default 8x4x32x128, or the geometry recorded in an existing disk file.")


def parse_geometry(text: str | None) -> Geometry | None:
    if text is None:
        return None
    if text == "small":
        return Geometry.small()
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)x(\d+)", text)
    if not m:
        raise click.BadParameter(f"{text!r} is not CHxLUNxBLKxPG (e.g. 8x4x32x128)")
    ch, lun, blk, pg = map(int, m.groups())
    try:
        return Geometry(nchannels=ch, nluns=lun, nblocks=blk, npages=pg)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def device_options(f):
    """--disk/--volatile/--create, --geometry, --debug for commands that open a device."""
    f = click.option("--debug", is_flag=True, help="Print the controller's per-command trace (stderr).")(f)
    f = click.option("--geometry", "geometry", default=None, metavar="CHxLUNxBLKxPG", help=GEOMETRY_HELP)(f)
    f = click.option("--volatile", is_flag=True, help="Keep the media in memory only (volt=1).")(f)
    f = click.option("--create", is_flag=True,
                     help="Create the disk file if it is missing (commands that write only).")(f)
    f = click.option("--disk", default="ox.disk", show_default=True, type=click.Path(dir_okay=False),
                     help="Media file (volt=0), kept between commands. Commands that only read "
                          "open it read-only; none creates it unless --create.")(f)
    return f


def disk_exists(disk: str) -> bool:
    """Whether the disk file is there; one-line errors for a directory or no access."""
    try:
        st = os.stat(disk)
    except FileNotFoundError:
        return False
    except PermissionError:
        raise click.ClickException(f"{disk}: permission denied (the file or a directory above "
                                   f"it is not accessible to you)") from None
    if os.path.isdir(disk) or not os.path.isfile(disk):
        raise click.ClickException(f"{disk}: is a directory, not a disk file")
    return bool(st)


def missing_disk(disk: str) -> click.ClickException:
    return click.ClickException(f"{disk}: no such disk file; create one with `ox format --disk {disk} "
                                f"--mode pblk --yes` (or pass --create to a command that writes)")


def resolve_geometry(disk: str | None, volatile: bool, geometry: str | None) -> Geometry:
    """The explicit --geometry, else the disk file's own, else the default."""
    geo = parse_geometry(geometry)
    if not volatile and disk:
        found = probe_geometry(disk)
        if found is not None:
            if geo is not None and geo != found:
                raise click.ClickException(f"{disk} holds geometry {found.describe()}, not {geo.describe()}")
            return found
    return geo or Geometry()


@contextlib.contextmanager
def open_machine(disk, volatile, geometry, debug, lnvm=1, timing="off", *, write=False, create=False):
    """A machine on the disk file: read-only (shared lock, nothing written) unless the
    command writes; a missing disk file is an error unless the command writes and asks
    --create. Commands that read never create media."""
    if not volatile and not (disk_exists(disk) or (write and create)):
        raise missing_disk(disk)
    geo = resolve_geometry(disk, volatile, geometry)
    with Machine(lnvm=lnvm, volt=1 if volatile else 0, debug=1 if debug else 0,
                 disk=None if volatile else disk, geometry=geo, timing=timing,
                 trace_stream=sys.stderr, readonly=not (write or volatile)) as m:
        yield m


class ConfigUsageError(click.ClickException):
    """A bad configuration (file, key or value): one line, exit status 2 like any usage error."""
    exit_code = 2


def config_options(f):
    """--config FILE and --set KEY=VALUE (repeatable), the one configuration of oxhost.config."""
    f = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override one configuration key, e.g. --set ftl.op=0.28 --set "
                          "ftl.gc_policy=cost-benefit (repeatable; applied after --config).")(f)
    f = click.option("--config", "config_path", default=None, metavar="FILE", type=click.Path(dir_okay=False),
                     help="TOML configuration for the device and both FTLs (sections geometry, nand, "
                          "ftl, pblk, appnvm, host; see oxhost/config.py).")(f)
    return f


def load_config(path: str | None, sets=()):
    """The configuration of --config / --set; ConfigUsageError (exit 2) on any mistake."""
    from ..config import Config, ConfigError
    try:
        return Config.load(path, list(sets))
    except ConfigError as e:
        raise ConfigUsageError(str(e)) from None


_FTL_HELP = ("Serve your own FTL instead of pblk or AppNVM: FILE.py:Class or package.module:Class, "
             "a subclass of oxftl.Ftl (docs/ftl-api.md; `ox ftl new` writes one to start from).")
_SIDE_HELP = ("Where --ftl runs: host (over the open-channel device, where pblk sits; default) or "
              "device (inside the controller behind a plain NVMe namespace, where AppNVM sits).")
_SPEC_HELP = ("The host interface a host-side FTL speaks: 1.2 (OCSSD 1.2, default), 2.0 (OCSSD 2.0 "
              "chunks) or zns (a zoned namespace; alone, it means the zoned FTL: --mode zoned). Default: "
              "what the disk holds.")


def resolve_mode(mode, ftl, side, spec, stack=None):
    """One stack mode string (oxhost.stack) from --mode/--ftl/--side/--spec, or None for
    what the disk holds. `stack` (hidden --stack) passes a resolved mode to a child."""
    from ..stack import StackError, make_mode, normalize_mode, parse_mode
    if stack is not None:
        parse_mode(stack)
        return stack
    if side is not None and ftl is None:
        raise StackError("--side places a plug-in FTL: give it with --ftl FILE.py:Class")
    if ftl is not None:
        if mode is not None:
            raise StackError("--ftl replaces --mode: give one of them")
        return normalize_mode(make_mode("ftl", ftl, side or "host", spec or "1.2"))
    if mode is None and spec is None:
        return None
    if mode is None and spec == "zns":
        mode = "zoned"                              # the built-in stack on zones
    return make_mode(mode or "pblk", spec=spec or ("zns" if mode == "zoned" else "1.2"))


def stack_mode_options(f):
    """--mode, --ftl, --side, --spec (and the hidden --stack a detached child gets) folded
    into one `mode` argument: a stack mode string, or None for what the disk holds."""
    import functools

    @functools.wraps(f)
    def wrapper(*args, mode=None, ftl=None, side=None, spec=None, stack=None, **kw):
        return f(*args, mode=resolve_mode(mode, ftl, side, spec, stack), **kw)
    for o in (click.option("--stack", default=None, hidden=True),
              click.option("--spec", type=click.Choice(["1.2", "2.0", "zns"]), default=None, help=_SPEC_HELP),
              click.option("--side", type=click.Choice(["host", "device"]), default=None, help=_SIDE_HELP),
              click.option("--ftl", default=None, metavar="FILE.py:CLASS", help=_FTL_HELP)):
        wrapper = o(wrapper)
    return wrapper
