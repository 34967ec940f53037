"""`ox bench`: the volume's figures against their baselines in one run (run on purpose, never
in CI); `ox bench bus` and `ox bench fuse` run one part alone."""
import json

import click

_MODES_HELP = ("Comma-separated stacks to measure, as `ox compare --stack` takes them: pblk, appnvm, or a "
               "plug-in FTL as FILE.py:Class@host or FILE.py:Class@device (e.g. "
               "pblk,oxftl.template:PageFtl@host).")


def _modes(ctx, param, value: str) -> list[str]:
    """--modes checked before anything is mounted: each a stack mode (its FTL loaded), once."""
    from oxftl import FtlLoadError

    from ..bench.modes import slug
    from ..stack import normalize_mode
    from ..stack import StackError
    out = []
    for text in (v.strip() for v in value.split(",")):
        if not text:
            continue
        try:
            out.append(normalize_mode(text))
        except (StackError, FtlLoadError) as e:
            raise click.BadParameter(str(e)) from None
    out = list(dict.fromkeys(out))
    if not out:
        raise click.BadParameter("no stack given")
    slugs = [slug(m) for m in out]
    if len(set(slugs)) != len(slugs):
        raise click.BadParameter(f"two stacks would share the name {max(slugs, key=slugs.count)!r}: "
                                 f"measure them in separate runs")
    return out


def ftl_options(f):
    """--ftl FILE.py:Class --side host|device|both: a plug-in FTL added to --modes."""
    f = click.option("--side", type=click.Choice(["host", "device", "both"]), default="host", show_default=True,
                     help="Where --ftl runs.")(f)
    return click.option("--ftl", default=None, metavar="FILE.py:CLASS",
                        help="Also measure your own FTL (a subclass of oxftl.Ftl) on --side.")(f)


def _with_ftl(modes: list[str], ftl, side) -> list[str]:
    if ftl is None:
        return modes
    sides = ("host", "device") if side == "both" else (side,)
    return _modes(None, None, ",".join([*modes, *(f"{ftl}@{s}" for s in sides)]))


@click.group("bench", invoke_without_command=True)
@click.option("--quick", is_flag=True, help="A smaller run (under two minutes).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures here.")
@click.option("--ext4", is_flag=True, help="Also time copies onto ext4 on the volume (root).")
@click.option("--modes", default="pblk,appnvm", show_default=True, callback=_modes, help=_MODES_HELP)
@click.option("--volatile", is_flag=True, help="Our volumes' media in RAM instead of fresh disk files.")
@ftl_options
@click.pass_context
def bench_group(ctx, quick, json_path, ext4, modes, volatile, ftl, side):
    """Bus, FUSE and (with --ext4) ext4 figures of our volume against a numpy copy and the
    store / null FUSE file systems, in one run: a table of ratios, each against its goal.

    Each figure is the best of a few runs, baselines interleaved with ours. Figures of a
    stack other than pblk carry its name as a prefix (appnvm_..., pageftl_host_...). Needs
    /dev/fuse and fio (and root for --ext4).
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..bench.suite import run
    run(quick=quick, ext4=ext4, json_path=json_path, volatile=volatile, modes=_with_ftl(modes, ftl, side),
        echo=click.echo)


@bench_group.command("bus")
@click.option("--mib", default=64, show_default=True, help="vblk line transfer size.")
@click.option("--reads", default=20000, show_default=True, help="Single-address reads to time.")
@click.option("--fill-mib", default=256, show_default=True, help="Data written for the RSS figure.")
@click.option("--repeat", default=3, show_default=True, help="Runs per figure; the best counts.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures here.")
def bench_bus(mib, reads, fill_mib, repeat, json_path):
    """vblk line write/read vs a numpy copy, 4 KiB commands/s through the bus, RSS."""
    from ..bench.bus import run
    out = run(mib=mib, reads=reads, fill_mib=fill_mib, repeat=repeat, echo=click.echo)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, indent=2)


@bench_group.command("fuse")
@click.option("--region-mib", default=256, show_default=True, help="fio region on each volume.")
@click.option("--runtime", default=10.0, show_default=True, help="Seconds per fio job.")
@click.option("--repeat", default=2, show_default=True, help="Runs per job and side; the best counts.")
@click.option("--volatile", is_flag=True, help="Our volume's media in RAM instead of a disk file.")
@click.option("--full", is_flag=True, help="Also fill ~3 GiB and time remounts of the full disk file.")
@click.option("--modes", default="pblk,appnvm", show_default=True, callback=_modes,
              help=_MODES_HELP + " Mounted beside the null file system; pblk always runs.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures here.")
@ftl_options
def bench_fuse(region_mib, runtime, repeat, volatile, full, modes, json_path, ftl, side):
    """fio on our FUSE volume vs a null FUSE file system, mounted in the same run, and the
    time from `ox mount` to a usable volume (fresh, and with ~3 GiB on it with --full).

    Jobs: 1 MiB sequential write and read, 4 KiB random write and read, QD1, O_DIRECT.
    Needs root, /dev/fuse and fio.
    """
    from ..bench.fuse import run
    out = run(region_mib=region_mib, runtime=runtime, repeat=repeat, full=full, volatile=volatile,
              modes=_with_ftl(modes, ftl, side), echo=click.echo)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, indent=2, default=str)


def register(main):
    main.add_command(bench_group)
