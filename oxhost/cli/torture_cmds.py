"""`ox torture`: a power-cut campaign as a product (SPEC 8, 10)."""
import json
import os

import click

from .common import config_options, load_config, parse_geometry

QUICK_CUTS = 40
QUICK_EXT4_ROUNDS = 3


@click.command("torture")
@click.option("--mode", type=click.Choice(["pblk", "appnvm", "both"]), default="both", show_default=True,
              help="Which stack to torture.")
@click.option("--cuts", type=click.IntRange(min=1), default=None,
              help="Power cuts per mode (default 1000; 40 with --quick). A round whose workload "
                   "ends before its cut stops cleanly (checked too) and does not count.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Everything (workload, cut points, faults) follows from it: a run replays exactly.")
@click.option("--faults", default="", metavar="LIST",
              help="Media faults mixed into every round, comma-separated: program (program failures), "
                   "erase (erase failures: grown bad blocks), read (transient read errors), "
                   "bad (factory bad blocks).")
@click.option("--geometry", default=None, metavar="CHxLUNxBLKxPG",
              help="Media geometry (default 2x2x16x16: small, so GC and line turnover come fast).")
@click.option("--no-discard", is_flag=True, help="No discards in the workload.")
@click.option("--ext4", is_flag=True,
              help="Add rounds with ext4 on the mounted volume (root, FUSE and e2fsprogs needed): "
                   "cut, journal replay, e2fsck -fn clean, every fsync'd file intact.")
@click.option("--ext4-rounds", type=click.IntRange(min=1), default=None,
              help="ext4 rounds per mode (default 20; 3 with --quick).")
@click.option("--quick", is_flag=True, help="A short campaign (40 cuts per mode), for CI: under two minutes.")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False),
              help="Write the report as JSON (per mode: cuts, violations, sectors verified, recovery times).")
@click.option("--dir", "workdir", default=None, type=click.Path(file_okay=False),
              help="Where the disk files live (default: a temporary directory).")
@click.option("--keep", is_flag=True, help="Keep the disk files afterwards.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@config_options
def torture(mode, cuts, seed, faults, geometry, no_discard, ext4, ext4_rounds, quick, json_path,
            workdir, keep, no_progress, config_path, sets):
    """Pull the plug on a stack again and again, and check that nothing is lost.

    Each round opens the stack on the same small disk file (recovery), reads back every
    sector of the volume and checks it against an oracle, then runs a seeded workload of
    self-describing sectors (LBA, generation, checksum) -- writes, overwrites, discards
    and flushes at random points -- until the power is cut at the N-th media operation:
    at a random point, inside recovery, or right where a line or block is opened or closed,
    GC moves data or metadata is written. The page being programmed at the cut is torn
    (it reads back as an uncorrectable ECC error).

    A violation is a sector acknowledged by a flush that reads back older, as zeros, as
    garbage or not at all, or a stack that stops making room (wedges). After the last
    round the whole volume is overwritten once more: free space must not leak.

    Prints one summary line per mode (cuts, sectors verified, violations, slowest
    recovery) and, for each violation, the command that replays it. Exits 1 when any
    violation was found.
    """
    import logging

    from ..torture import FAULT_MIXES, Config, default_geometry, run

    if logging.getLogger().getEffectiveLevel() >= logging.WARNING:
        # every round pulls the plug: the warnings of cuts and recoveries are expected here
        # (-v shows them); errors still print, and violations are reported below
        for name in ("oxemu", "oxhost"):
            logging.getLogger(name).setLevel(logging.ERROR)

    mixes = tuple(f.strip() for f in faults.split(",") if f.strip())
    unknown = [f for f in mixes if f not in FAULT_MIXES]
    if unknown:
        raise click.BadParameter(f"unknown fault mix {', '.join(unknown)} (choose from "
                                 f"{', '.join(FAULT_MIXES)})", param_hint="--faults")
    ox_config = load_config(config_path, sets)
    geo = parse_geometry(geometry)
    if ox_config.is_set("geometry"):
        if geo is not None and geo != ox_config.to_geometry():
            raise click.BadParameter(f"{geo.describe()} differs from the configuration's geometry "
                                     f"{ox_config.to_geometry().describe()}", param_hint="--geometry")
        geo = ox_config.to_geometry()
    geo = geo or default_geometry()
    config_args = ((("--config", os.path.abspath(config_path)) if config_path else ())
                   + tuple(a for item in sets for a in ("--set", item)))
    modes = ("pblk", "appnvm") if mode == "both" else (mode,)
    cfg = Config(modes=modes, cuts=cuts or (QUICK_CUTS if quick else 1000), seed=seed, geometry=geo,
                 faults=mixes, discard=not no_discard, workdir=workdir, keep=keep,
                 ox_config=ox_config, config_args=config_args)
    report = run(cfg, progress=not no_progress, echo=click.echo)
    if ext4:
        from ..torture.ext4 import run_ext4
        rounds = ext4_rounds or (QUICK_EXT4_ROUNDS if quick else 20)
        report["ext4"] = run_ext4(cfg, rounds, progress=not no_progress, echo=click.echo)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
    bad = sum(len(report[m]["violations"]) for m in modes)
    bad += sum(len(v["violations"]) for v in report.get("ext4", {}).values())
    if bad:
        click.echo(f"ox: torture found {bad} violation(s)", err=True)
        raise SystemExit(1)


def register(main):
    main.add_command(torture)
