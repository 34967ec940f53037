"""`ox compare`: any stacks -- pblk, AppNVM, plug-in FTLs in the host or in the device -- on
the same media, and one FTL on both sides of the bus (placement)."""
import os

import click

from .common import ConfigUsageError, config_options, load_config


def _qds(ctx, param, value):
    if value is None:
        return None
    try:
        qds = tuple(int(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of queue depths") from None
    if not qds or any(not 1 <= q <= 64 for q in qds):
        raise click.BadParameter("queue depths must be between 1 and 64")
    return tuple(sorted(set(qds)))


@click.command("compare")
@click.option("--quick", is_flag=True, help="A reduced run (2x2x32x32 geometry, fewer requests; each fio job "
              "capped at 5,000 requests; fresh devices unless --precondition says otherwise) in under a minute.")
@click.option("--out", "outdir", default="compare-report", show_default=True,
              type=click.Path(file_okay=False), help="Directory for report.md, report.html, results.json and PNGs.")
@click.option("--stack", "stacks", multiple=True, metavar="MODE",
              help="A stack to run (repeatable; default: pblk and appnvm): pblk, appnvm, or a plug-in FTL "
                   "as FILE.py:Class@host (over open-channel, where pblk sits) or FILE.py:Class@device (inside "
                   "the device, where AppNVM sits; package.module:Class too); a host-side stack may add its "
                   "interface, e.g. pblk+2.0. Reports name it short: pblk, appnvm, Class@host.")
@click.option("--ftl", "ftls", multiple=True, metavar="FILE.py:CLASS",
              help="Run your own FTL (a subclass of oxftl.Ftl; repeatable) on --side: on both sides (the "
                   "default) it adds FTL@host and FTL@device and the placement section -- the same FTL on "
                   "both sides of the bus, side by side (docs/ftl-api.md). Without --stack, only these run.")
@click.option("--side", type=click.Choice(["host", "device", "both"]), default="both", show_default=True,
              help="Where each --ftl runs.")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True,
              help="Seed of every workload's random stream: the same config and seed give the same modeled figures.")
@click.option("--qd", "qds", default=None, metavar="LIST", callback=_qds,
              help="Queue depths of the built-in workloads' QD curves, e.g. 1,4,32 (default: 1-64 in powers "
                   "of two for random reads; 1,4,32 with --quick).")
@click.option("--fio-job", "fio_jobs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Run the jobs of a fio job file instead of the built-in set (repeatable): stonewall "
                   "groups in order, runtimes in virtual time, sizes beyond the device scaled to it; "
                   "docs/fio-jobs.md lists the options taken, ignored and refused.")
@click.option("--max-requests", type=click.IntRange(min=1), default=None, metavar="N",
              help="Cap every fio job at N requests and say in the report which jobs it cut short "
                   "(default: 5000 with --quick, no cap otherwise).")
@click.option("--trace", "traces", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Replay a block trace (blkparse text, fio iolog v2/v3, MSR Cambridge CSV) instead of "
                   "the built-in set (repeatable).")
@click.option("--trace-format", type=click.Choice(["blkparse", "iolog", "msr"]), default=None,
              help="Format of --trace files (default: detected from the first line).")
@click.option("--replay", type=click.Choice(["timed", "afap"]), default="timed", show_default=True,
              help="timed: issue trace requests at their recorded times; afap: as fast as possible.")
@click.option("--iodepth", type=click.IntRange(1, 64), default=32, show_default=True,
              help="Trace replay: requests in flight at most.")
@click.option("--sweep", "sweeps", multiple=True, metavar="KEY=V1,V2,...",
              help="Run the sustained overwrite (or the --fio-job / --trace workload) at every point of "
                   "the grid of swept keys and plot steady-state WA against them, e.g. "
                   "--sweep ftl.gc_policy=greedy,cost-benefit --sweep ftl.op=0.07,0.2,0.28 (repeatable).")
@click.option("--precondition", type=click.Choice(["none", "fill", "steady"]), default=None,
              help="Before any figure (SNIA PTS): none -- fresh devices (the default with --quick); fill -- "
                   "twice the capacity in 128 KiB sequential writes, then one round of the workload; steady -- "
                   "the same, then rounds until five in a row stay within 20 %% of their average with a "
                   "fitted slope within 10 %% (the default of the full run); the report puts the "
                   "fresh-out-of-box figures beside them.")
@click.option("--max-rounds", type=click.IntRange(min=1), default=None, metavar="N",
              help="Round limit of --precondition steady (default 25, PTS's); the report says when a "
                   "workload hit it before the window held.")
@click.option("--tenants", "tenant_specs", multiple=True, metavar="'NAME OPTION=VALUE ...'",
              help="A tenant: a fio job named NAME with fio's options (repeatable; the tenants run at once), "
                   "e.g. --tenants 'reader rw=randread bs=4k iodepth=1 number_ios=2000' --tenants "
                   "'writer rw=randwrite bs=64k iodepth=8 number_ios=2000'. Each tenant's throughput, "
                   "p50/p99/p99.9, WA share and GC-induced stalls, alone and together, and Jain's fairness "
                   "index; a fio job file's jobs that run at once are tenants too.")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="A sweep's runs (each stack at each point) on N processes of this machine at once (default: "
                   "one per core, fewer when the memory available holds fewer runs; 1: one after the other in "
                   "this process). The figures are the same whatever N.")
@click.option("--cluster", default=None, metavar="ADDRESS",
              help="Run a sweep's runs on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786) "
                   "instead; every worker must have this version of ox installed (docs/sweeps.md).")
@click.option("--cache", "cache_dir", default=None, type=click.Path(file_okay=False), metavar="DIR",
              help="Keep each finished run of a sweep in DIR (default: OUT/cache) and take the runs it holds "
                   "from there: a stopped sweep started again, or one grown by a value, runs only what it lacks.")
@click.option("--no-cache", is_flag=True, help="Compute every run of a sweep, and keep none.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@config_options
def compare(quick, outdir, stacks, ftls, side, seed, qds, fio_jobs, max_requests, traces, trace_format, replay,
            iodepth, sweeps, precondition, max_rounds, tenant_specs, workers, cluster, cache_dir, no_cache,
            no_progress, config_path, sets):
    """Run the same workloads on several stacks: host pblk and the device's AppNVM FTL by
    default, plug-in FTLs on either side of the bus with --stack / --ftl.

    The built-in set -- sequential 1 MiB write; random 4 KiB write, read and 70/30 mix at
    several queue depths; a sustained random overwrite of 2x capacity; 4 KiB reads beside
    a GC-heavy overwrite -- runs each workload at each queue depth with the NAND timing
    model on, so throughput and latency are modeled in virtual time and reproducible; host
    CPU time is measured. The full run measures in SNIA PTS steady state, --quick on fresh
    devices (--precondition; docs/compare.md). One configuration (--config / --set; see
    oxhost/config.py) sets the geometry, NAND timing, over-provisioning, both FTLs' GC
    policy and thresholds, buffers, wear levelling and the host cost model, and is printed
    in the report (plug-in FTLs choose their own over-provisioning and GC). Writes
    report.md (tables, one line per figure), report.html (the same, plots inline: one file
    to share), results.json and PNG plots. The full run uses the 8x4x32x128 geometry and
    takes about 25 minutes for two stacks in steady state.

    Every stack is measured the same way: modeled time, bus bytes and NVMe commands from
    the emulated machine, write amplification from the media's program counter, host CPU
    measured. With one FTL on both sides (--ftl FILE.py:Class, or both --stack
    FILE.py:Class@host and @device) the report gets the placement section: throughput,
    p99.9, host CPU, bus bytes and commands per GiB, host against device. Each stack is
    opened once before the run starts, so a stack that cannot be built is refused first.

    A --fio-job run prints each job's estimated request count and the run's expected
    wall time before it starts (and says so when that is over an hour); its progress bar
    counts requests against that estimate.
    """
    from ..compare import Plan, run_compare
    from ..compare.cluster import ClusterError
    from ..compare.runner import probe
    from ..compare.workloads import Workload
    from ..config import ConfigError
    from ..stack import mode_name
    _sweep_options(sweeps, workers, cluster, cache_dir, no_cache)
    cfg = load_config(config_path, sets)
    chosen = _stacks(stacks, ftls, side)
    try:
        plan = Plan.quick(cfg, qds) if quick else Plan.full(cfg, qds)
    except ConfigError as e:
        raise ConfigUsageError(str(e)) from None
    if precondition is not None or max_rounds is not None:
        pre = precondition or plan.precondition
        if max_rounds is not None and pre != "steady":
            raise click.BadParameter(f"limits the rounds of --precondition steady, not {pre}"
                                     + (" (the --quick default)" if precondition is None else ""),
                                     param_hint="--max-rounds")
        plan = plan.with_precondition(pre, max_rounds)
    sizes = {}
    for m in chosen:                    # each stack opened once: refused before any work is spent
        try:
            sizes[m] = probe(plan.config, [m])[m]["capacity_bytes"]
        except ConfigError as e:
            raise ConfigUsageError(str(e)) from None
        except Exception as e:          # noqa: BLE001 - the stack's own error (an FTL's open() too), one line
            raise click.ClickException(f"stack {mode_name(m)}: {e}") from None
    if max_requests is not None and not (fio_jobs or tenant_specs):
        raise click.BadParameter("caps the requests of fio jobs: give --fio-job or --tenants too",
                                 param_hint="--max-requests")
    if fio_jobs or traces or tenant_specs:
        from ..compare.fiojob import FioJobError, load_fio_job, parse_fio_job
        from ..compare.runner import QUICK_JOB_REQUESTS
        from ..compare.traces import TraceError, load_trace
        size = min(sizes.values())                      # the smallest stack holds every request
        wls = []
        try:
            cap = max_requests or (QUICK_JOB_REQUESTS if quick else 0)
            for path in fio_jobs:
                fio = load_fio_job(path, device_bytes=size)
                specs = fio.jobs
                name = _name(path, wls)
                groups = len(fio.phases)
                wls.append(Workload(name, f"fio job file {os.path.basename(path)}"
                                    + (f" ({groups} stonewall groups in order)" if groups > 1 else "") + ": "
                                    + "; ".join(s.describe() for s in specs[:4])
                                    + (" ..." if len(specs) > 4 else ""),
                                    kind="fio", fio_jobs=specs, qds=(max(s.iodepth for s in specs),),
                                    max_requests=cap, notes=fio.notes()))
            for path in traces:
                tr = load_trace(path, trace_format).fit(size)
                if not len(tr):
                    raise TraceError("no requests to replay", source=path)
                name = _name(path, wls)
                summ = tr.summary()
                wls.append(Workload(name, f"{tr.fmt} trace {os.path.basename(path)} replayed {replay}: "
                                    f"{summ['requests']} requests ({summ['reads']} reads, {summ['writes']} "
                                    f"writes, {summ['trims']} trims, {summ['flushes']} flushes) over "
                                    f"{summ['duration_s']:.3f} s", kind="trace", trace=tr, replay=replay,
                                    qds=(iodepth,)))
            if tenant_specs:
                text = tenant_job(tenant_specs)
                try:
                    fio = parse_fio_job(text, device_bytes=size, source="--tenants")
                except FioJobError as e:                    # name the tenant, not a line of the made-up file
                    head = [ln[1:-1] for ln in text.splitlines()[:e.line or 1] if ln.startswith("[")]
                    raise click.BadParameter(f"tenant {head[-1] if head else '?'}: "
                                             + (f"{e.option}: " if e.option else "") + e.message,
                                             param_hint="--tenants") from None
                wls.append(Workload("tenants", f"{len(fio.jobs)} tenants at once: "
                                    + "; ".join(s.describe() for s in fio.jobs[:4])
                                    + (" ..." if len(fio.jobs) > 4 else ""),
                                    kind="fio", fio_jobs=fio.jobs, qds=(max(s.iodepth for s in fio.jobs),),
                                    max_requests=max_requests or (QUICK_JOB_REQUESTS if quick else 0),
                                    notes=fio.notes()))
        except (FioJobError, TraceError, OSError, UnicodeDecodeError) as e:
            raise click.BadParameter(str(e), param_hint="--fio-job" if fio_jobs else "--trace") from None
        plan = plan.with_workloads(wls)
    how = {}
    if sweeps:
        how = dict(workers=workers or _default_workers(plan, cluster), cluster=cluster,
                   cache=None if no_cache else (cache_dir or os.path.join(outdir, "cache")))
    try:
        run_compare(plan, outdir, stacks=chosen, progress=not no_progress, echo=click.echo, seed=seed,
                    sweeps=sweeps, **how)
    except ConfigError as e:
        raise ConfigUsageError(str(e)) from None
    except ClusterError as e:
        raise click.ClickException(f"--cluster: {e}") from None


def _sweep_options(sweeps, workers, cluster, cache_dir, no_cache) -> None:
    """The options that say where and how a sweep runs: refused without --sweep, and where
    they contradict each other."""
    given = [o for o, v in (("--workers", workers), ("--cluster", cluster), ("--cache", cache_dir),
                            ("--no-cache", no_cache)) if v]
    if given and not sweeps:
        raise click.BadParameter("says how a sweep's runs are run: give --sweep too", param_hint=given[0])
    if workers and cluster:
        raise click.BadParameter("counts processes of this machine; with --cluster the cluster's workers run "
                                 "the sweep", param_hint="--workers")
    if cache_dir and no_cache:
        raise click.BadParameter("and --no-cache contradict each other", param_hint="--cache")
    if cluster is not None:
        from ..compare.cluster import ClusterError, check_address
        try:
            check_address(cluster)
        except ClusterError as e:
            raise click.BadParameter(str(e), param_hint="--cluster") from None


def _default_workers(plan, cluster) -> int:
    """One process per core, fewer when memory holds fewer runs (a note says so)."""
    from ..compare.cluster import default_workers
    if cluster:
        return 1
    geo = plan.geometry
    n, note = default_workers(geo.total_pages * (geo.page_nbytes + geo.oob_nbytes) + (256 << 20))
    if note:
        click.echo(f"note: --workers {n}: {note}", err=True)
    return n


def _stacks(stacks, ftls, side) -> list[str]:
    """The stack modes to run, checked and in order, each once: --stack values (default pblk
    and appnvm unless --ftl is given), then each --ftl FTL on its side(s)."""
    from oxftl import FtlLoadError

    from ..compare.stacks import DEFAULT, placement_modes
    from ..stack import StackError, normalize_mode
    out = []
    on_side = placement_modes if side == "both" else (lambda v: [normalize_mode(f"{v}@{side}")])
    for opt, values, fn in (("--stack", stacks or (() if ftls else DEFAULT), lambda v: [normalize_mode(v)]),
                            ("--ftl", ftls, on_side)):
        for v in values:
            try:
                out += fn(v)
            except (StackError, FtlLoadError) as e:
                raise click.BadParameter(str(e), param_hint=opt) from None
    return list(dict.fromkeys(out))


def tenant_job(specs) -> str:
    """--tenants values as a fio job file, one section per tenant and no stonewall, so
    they run at once: 'NAME OPTION=VALUE ...' (words as a shell splits them; an option
    without '=' is a flag, as in a job file)."""
    import re
    import shlex
    out, names = [], set()
    for spec in specs:
        try:
            words = shlex.split(spec)
        except ValueError as e:
            raise click.BadParameter(f"{spec!r}: {e}", param_hint="--tenants") from None
        if not words or "=" in words[0] or not re.fullmatch(r"[\w.-]+", words[0]):
            raise click.BadParameter(f"{spec!r}: start with the tenant's name (letters, digits, . _ -), then "
                                     "fio options as OPTION=VALUE", param_hint="--tenants")
        name = words[0]
        if name in names or name.lower() == "global":
            raise click.BadParameter(f"tenant name {name!r} given twice" if name in names else
                                     "'global' is not a tenant name", param_hint="--tenants")
        names.add(name)
        bad = [w for w in words[1:] if w.lower().startswith(("stonewall", "wait_for_previous", "new_group"))]
        if bad:
            raise click.BadParameter(f"{name}: {bad[0]}: tenants run at once (use a fio job file for groups "
                                     "that run one after another)", param_hint="--tenants")
        out += [f"[{name}]"] + words[1:]
    return "\n".join(out) + "\n"


def _name(path: str, taken: list) -> str:
    base = os.path.basename(path).split(".")[0] or "workload"
    name, i = base, 2
    while any(w.name == name for w in taken):
        name, i = f"{base}-{i}", i + 1
    return name


def register(main):
    main.add_command(compare)
