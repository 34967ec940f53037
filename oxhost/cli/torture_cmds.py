"""`ox torture`: a power-cut campaign as a product (SPEC 8, 10)."""
import json
import os

import click

from .common import config_options, load_config, parse_geometry

QUICK_CUTS = 40
QUICK_EXT4_ROUNDS = 3


@click.command("torture")
@click.option("--mode", type=click.Choice(["pblk", "appnvm", "both"]), default=None,
              help="Which built-in stack to torture (default both, unless --stack or --ftl names others).")
@click.option("--stack", "stacks", multiple=True, metavar="MODE",
              help="A stack to torture, as `ox compare --stack` takes it: pblk, appnvm, FILE.py:Class@host, "
                   "FILE.py:Class@device, +2.0 / +zns for a host-side stack (repeatable).")
@click.option("--ftl", default=None, metavar="FILE.py:CLASS",
              help="Torture your own FTL (a subclass of oxftl.Ftl; docs/ftl-api.md) on --side.")
@click.option("--side", type=click.Choice(["host", "device", "both"]), default="host", show_default=True,
              help="Where --ftl runs: in the host over open-channel, in the device, or both.")
@click.option("--spec", type=click.Choice(["1.2", "2.0", "zns"]), default="1.2", show_default=True,
              help="The interface a host-side --ftl speaks.")
@click.option("--cuts", type=click.IntRange(min=1), default=None,
              help="Power cuts per mode (default 1000; 40 with --quick). Each round's workload goes on "
                   "until its cut; a run that makes fewer cuts than asked is incomplete.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Everything (workload, cut points, faults) follows from it: a run replays exactly.")
@click.option("--faults", default="", metavar="LIST",
              help="Media faults mixed into every round, comma-separated: program (program failures), "
                   "erase (erase failures: grown bad blocks), read (transient read errors), "
                   "bad (factory bad blocks). Program and erase failures retire blocks: the campaign "
                   "injects at most about half the volume's spare blocks' worth of them, spread over "
                   "the rounds, so the device stays writable; the summary counts the blocks retired.")
@click.option("--no-fault-budget", is_flag=True, hidden=True,
              help="Lab: let the fault rates retire blocks without a budget (the device wears out).")
@click.option("--allow-read-only", is_flag=True,
              help="A device that goes read-only early (and the cuts it then cannot make) is the point "
                   "of the run: report it, but exit 0.")
@click.option("--until-round", type=click.IntRange(min=1), default=None, metavar="R",
              help="Replay: run only the first R rounds of the campaign the other options describe "
                   "(the command a violation prints).")
@click.option("--exhaustive", type=click.IntRange(min=1), default=None, metavar="N",
              help="Instead of random cuts: one fixed seeded workload, cut at each of its first N media "
                   "operations in turn -- operation k is the k-th erase, program or read of a plane page "
                   "after the stack opened an aged snapshot (filled, overwritten until GC ran, stopped "
                   "cleanly; the workload restarts the stack every 500 operations). N rounds, each from a "
                   "copy of the snapshot, every sector checked after each recovery; prints the kinds of "
                   "operation the cuts fell on. Fewer operations than N: incomplete.")
@click.option("--from-op", type=click.IntRange(min=1), default=None, metavar="K",
              help="With --exhaustive: start at operation K (replay: --exhaustive K --from-op K).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --exhaustive: worker processes sharing the rounds.")
@click.option("--geometry", default=None, metavar="CHxLUNxBLKxPG",
              help="Media geometry (default 2x2x16x16: small, so GC and line turnover come fast).")
@click.option("--no-discard", is_flag=True, help="No discards in the workload.")
@click.option("--ext4", is_flag=True,
              help="Add rounds with ext4 on the mounted volume (root, FUSE and e2fsprogs needed): "
                   "cut, journal replay, e2fsck -fn clean, every fsync'd file intact.")
@click.option("--ext4-rounds", type=click.IntRange(min=1), default=None,
              help="ext4 rounds per mode (default 20; 3 with --quick).")
@click.option("--quick", is_flag=True, help="A short campaign (40 cuts per mode), for CI: under a minute.")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False),
              help="Write the report as JSON (per mode: cuts, violations, sectors verified, blocks "
                   "retired, recovery times; with --exhaustive: operations covered and their kinds).")
@click.option("--dir", "workdir", default=None, type=click.Path(file_okay=False),
              help="Where the disk files live (default: a temporary directory, in /dev/shm when there is one).")
@click.option("--keep", is_flag=True, help="Keep the disk files afterwards.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@config_options
def torture(mode, stacks, ftl, side, spec, cuts, seed, faults, no_fault_budget, allow_read_only, until_round, exhaustive, from_op, jobs,
            geometry, no_discard, ext4, ext4_rounds, quick, json_path, workdir, keep, no_progress,
            config_path, sets):
    """Pull the plug on a stack again and again, and check that nothing is lost.

    Each round opens the stack on the same small disk file (recovery), reads back every
    sector of the volume and checks it against an oracle, then runs a seeded workload of
    self-describing sectors (LBA, generation, checksum) -- writes, overwrites, discards
    and flushes at random points -- until the power is cut at the N-th media operation:
    at a random point, inside recovery, or right where a line or block is opened or closed,
    GC moves data or metadata is written. The page being programmed at the cut is torn
    (it reads back as an uncorrectable ECC error).

    A violation is a sector acknowledged by a flush that reads back older, as zeros, as
    garbage or not at all, a stack that stops making room (wedges), or a block retired
    without an injected fault. After the last round the whole volume is overwritten once
    more: free space must not leak.

    Prints one summary line per mode (cuts made of those asked, targeted and in recovery;
    blocks retired by injected faults; whether the device stayed writable; sectors
    verified; violations; slowest recovery) and, for each violation, the command that
    replays it. Exits 1 when any violation was found, and when a campaign is incomplete:
    fewer cuts than asked, or a device that went read-only before the last tenth of the
    rounds (unless --allow-read-only). With --exhaustive, when an operation was not
    covered.
    """
    import logging

    from ..torture import FAULT_MIXES, Config, default_geometry, run, run_exhaustive

    if logging.getLogger().getEffectiveLevel() >= logging.WARNING:
        # every round pulls the plug: the warnings of cuts and recoveries are expected here
        # (-v shows them); errors still print, and violations are reported below
        for name in ("oxemu", "oxhost"):
            logging.getLogger(name).setLevel(logging.ERROR)

    if exhaustive is not None:
        for flag, given in (("--cuts", cuts is not None), ("--until-round", until_round is not None),
                            ("--ext4", ext4), ("--quick", quick), ("--allow-read-only", allow_read_only)):
            if given:
                raise click.UsageError(f"{flag} does not apply to --exhaustive")
        if from_op is not None and from_op > exhaustive:
            raise click.BadParameter(f"operation {from_op} is beyond --exhaustive {exhaustive}",
                                     param_hint="--from-op")
    else:
        for flag, given in (("--from-op", from_op is not None), ("--jobs", jobs != 1)):
            if given:
                raise click.UsageError(f"{flag} needs --exhaustive")
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
    modes = _modes(mode, stacks, ftl, side, spec)
    cfg = Config(modes=modes, cuts=cuts or (QUICK_CUTS if quick else 1000), seed=seed, geometry=geo,
                 faults=mixes, discard=not no_discard, workdir=workdir, keep=keep,
                 ox_config=ox_config, config_args=config_args, allow_read_only=allow_read_only,
                 fault_budget=not no_fault_budget, until_round=until_round)
    if exhaustive is not None:
        report = run_exhaustive(cfg, exhaustive, first=from_op or 1, jobs=jobs, progress=not no_progress,
                                echo=click.echo)
    else:
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
    incomplete = [m for m in modes if report[m]["problems"] and not report[m].get("accepted")]
    if bad:
        click.echo(f"ox: torture found {bad} violation(s)", err=True)
    if incomplete:
        click.echo(f"ox: torture incomplete ({', '.join(incomplete)}): "
                   + "; ".join(f"{m}: {p}" for m in incomplete for p in report[m]["problems"]), err=True)
    if bad or incomplete:
        raise SystemExit(1)


def _modes(mode, stacks, ftl, side, spec) -> tuple:
    """The stack modes to torture, each checked (and a plug-in FTL loaded) before anything runs."""
    from oxftl import FtlLoadError

    from ..stack import StackError, normalize_mode
    from .common import resolve_mode
    try:
        out = [normalize_mode(m) for m in stacks]
        if ftl is not None:
            out += [resolve_mode(None, ftl, s, spec) for s in (("host", "device") if side == "both" else (side,))]
        if mode is not None or not out:
            out = [*(("pblk", "appnvm") if mode in (None, "both") else (mode,)), *out]
    except (StackError, FtlLoadError) as e:
        raise click.BadParameter(str(e), param_hint="--stack/--ftl") from None
    if len(set(out)) != len(out):
        raise click.BadParameter("a stack is named twice", param_hint="--stack/--ftl")
    return tuple(out)


def register(main):
    main.add_command(torture)
