"""`ox compare`: device FTL (AppNVM) vs host FTL (pblk) on the same media."""
import click


@click.command("compare")
@click.option("--quick", is_flag=True, help="A reduced run (small geometry) in under a minute.")
@click.option("--out", "outdir", default="compare-report", show_default=True,
              type=click.Path(file_okay=False), help="Directory for report.md, results.json and PNGs.")
@click.option("--stacks", default="pblk,appnvm", show_default=True, help="Comma-separated stacks to run.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def compare(quick, outdir, stacks, no_progress):
    """Run the same workloads on host pblk and on the device's AppNVM FTL.

    Each workload (sequential write, random 4 KiB write and read, 70/30 mixed, and a
    sustained random overwrite of 2x capacity) runs on a fresh device with the NAND timing
    model on, so throughput and latency are modeled and reproducible; host CPU time is
    measured. Writes report.md (tables, one line per figure), results.json and PNG plots.
    The full run uses the 8x4x32x128 geometry and takes several minutes.
    """
    from ..compare import Plan, run_compare
    chosen = [s.strip() for s in stacks.split(",") if s.strip()]
    bad = [s for s in chosen if s not in ("pblk", "appnvm")]
    if bad or not chosen:
        raise click.BadParameter(f"unknown stack(s) {bad}; choose from pblk, appnvm", param_hint="--stacks")
    plan = Plan.quick() if quick else Plan.full()
    run_compare(plan, outdir, stacks=chosen, progress=not no_progress, echo=click.echo)


def register(main):
    main.add_command(compare)
