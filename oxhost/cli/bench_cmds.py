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


def register(main):
    main.add_command(bench_group)
