"""`ox bench ...`: benchmarks that print figures (run on purpose, never in CI)."""
import json

import click


@click.group("bench")
def bench_group():
    """Benchmarks; each prints its figures (and --json writes them)."""


@bench_group.command("bus")
@click.option("--mib", default=64, show_default=True, help="vblk line transfer size.")
@click.option("--reads", default=20000, show_default=True, help="Single-address reads to time.")
@click.option("--fill-mib", default=256, show_default=True, help="Data written for the RSS figure.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures here.")
def bench_bus(mib, reads, fill_mib, json_path):
    """vblk line write/read vs a numpy copy, 4 KiB commands/s through the bus, RSS."""
    from ..bench.bus import run
    out = run(mib=mib, reads=reads, fill_mib=fill_mib, echo=click.echo)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, indent=2)


@bench_group.command("fuse")
@click.option("--region-mib", default=256, show_default=True, help="fio region on each volume.")
@click.option("--runtime", default=10.0, show_default=True, help="Seconds per fio job.")
@click.option("--repeat", default=2, show_default=True, help="Runs per job and side; the best counts.")
@click.option("--volatile", is_flag=True, help="Our volume's media in RAM instead of a disk file.")
@click.option("--full", is_flag=True, help="Also fill ~3 GiB and time remounts of the full disk file.")
@click.option("--modes", default="pblk,appnvm", show_default=True,
              help="Stacks to mount beside the null file system (pblk always runs).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures here.")
def bench_fuse(region_mib, runtime, repeat, volatile, full, modes, json_path):
    """fio on our FUSE volume vs a null FUSE file system, mounted in the same run.

    Jobs: 1 MiB sequential write and read, 4 KiB random write and read, QD1, O_DIRECT.
    Also the time from `ox mount` to a usable volume. Needs root, /dev/fuse and fio.
    """
    from ..bench.fuse import run
    out = run(region_mib=region_mib, runtime=runtime, repeat=repeat, full=full, volatile=volatile,
              modes=[m.strip() for m in modes.split(",") if m.strip()], echo=click.echo)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, indent=2, default=str)


def register(main):
    main.add_command(bench_group)
