"""`ox bench`: the mounted volume's figures against their baselines, in one run (issue 10).

Bus figures (in process): vblk line write and read against a numpy copy of the same bytes,
fresh media against fresh memory and rewritten media against warm memory; single-address
4 KiB reads through the bus; RSS per MiB written.

FUSE figures: fio (QD1, psync, O_DIRECT) on our volume in each stack mode (pblk and AppNVM
by default; any mode of oxhost.stack, plug-in FTLs too: oxhost.bench.modes) -- `ox mount`,
media in a fresh disk file as users run it (or in RAM: --volatile) -- and on two reference file systems of the same
binding and serving shape (oxhost.bench.fusefs): `store`, which copies writes into
anonymous memory and serves reads from it (the least work a real store can do: the
baseline of every ratio), and `null`, which stores nothing. Every job runs on every side
in turn, round after round, and each side keeps its best run: the machine may be shared,
and interleaving makes a slow moment cost every side alike. Plus the deep-queue figure:
mixed-size random writes with verify at libaio iodepth 16 against the same at psync QD1.

ext4 figures (--ext4): copying one big file and a tree of small files, then sync, onto
`ox up` (ext4 on the volume) against the same copy onto ext4 on a loop device over the
store file system (oxhost.bench.ext4).

The JSON has one entry per figure: {ours, store, null, ratio, goal, unit}; ratio = ours /
store (for the bus figures `store` is the numpy copy and `null` is null; for commands per
second the ratio is against the goal's absolute figure; for the deep-queue figure it is
QD16 over QD1). `_run` records how the run was made.
"""
import json
import os
import shutil
import sys
import tempfile
import time

from .. import tools
from . import bus as bus_bench
from .fuse import VOLUME_BYTES, _mount_usable, _ox, _start_reference, _stop_reference, _wait_gone, fio
from .modes import DEFAULT as MODES
from ..stack import mode_name
from .modes import mount_args, prefix, slug

# name, fio arguments (QD1 psync O_DIRECT on the first `region` bytes), timed?, goal
FUSE_JOBS = (
    ("fuse_seq_write_1m", ["--rw=write", "--bs=1m"], False, 0.5),
    ("fuse_seq_read_1m", ["--rw=read", "--bs=1m"], False, 0.5),
    ("fuse_rand_write_4k", ["--rw=randwrite", "--bs=4k"], True, 0.8),
    ("fuse_rand_read_4k", ["--rw=randread", "--bs=4k"], True, 0.8),
)
DEEP_JOB = ["--rw=randwrite", "--bsrange=4k-128k", "--verify=crc32c"]
READ4K_GOAL = 40_000

PLANS = {
    # bus MiB, 4 KiB reads, fill MiB, FUSE region MiB, timed-job seconds, rounds, deep region MiB
    "quick": dict(bus_mib=32, reads=10000, fill_mib=128, region_mib=128, runtime=1.5, repeat=2,
                  deep_mib=32, ext4_big_mib=256, ext4_files=5000, ext4_repeat=1),
    "full": dict(bus_mib=64, reads=20000, fill_mib=256, region_mib=256, runtime=5.0, repeat=3,
                 deep_mib=128, ext4_big_mib=1024, ext4_files=None, ext4_repeat=2),
}


def figure(ours, store, null=None, goal=None, unit="MiB/s", ratio=None, **extra) -> dict:
    if ratio is None:
        ratio = ours / store if store else None
    return dict(ours=ours, store=store, null=null, ratio=ratio, goal=goal, unit=unit, **extra)


# ---------------------------------------------------------------------- the parts
def bus_figures(plan: dict, echo) -> dict:
    b = bus_bench.run(mib=plan["bus_mib"], reads=plan["reads"], fill_mib=plan["fill_mib"],
                      repeat=plan["repeat"] + 1, echo=echo)
    return {
        "bus_line_write": figure(b["vblk_write_mib_s"], b["numpy_copy_warm_mib_s"], goal=0.5,
                                 note="rewritten media vs numpy copy to warm memory"),
        "bus_line_write_fresh": figure(b["vblk_write_first_mib_s"], b["numpy_copy_fresh_mib_s"], goal=0.5,
                                       note="fresh media vs numpy copy to fresh memory"),
        "bus_line_read": figure(b["vblk_read_mib_s"], b["numpy_copy_warm_mib_s"], goal=0.5),
        "bus_read_4k_cmds": figure(b["read4k_cmds_per_s"], None, goal=READ4K_GOAL, unit="commands/s",
                                   ratio=b["read4k_cmds_per_s"] / READ4K_GOAL,
                                   note="ratio against the goal's 40,000 commands/s"),
        "rss_per_mib_written": figure(b["rss_growth_per_mib_written"], None, goal=1.07, unit="MiB/MiB",
                                      ratio=b["rss_growth_per_mib_written"] / 1.07,
                                      note="ratio against the goal: at most 1.0"),
    }


def fuse_figures(plan: dict, base: str, modes, echo, volatile: bool = False) -> dict:
    region, runtime, repeat = plan["region_mib"] << 20, plan["runtime"], plan["repeat"]
    env = dict(os.environ, OX_STATE_DIR=os.path.join(base, "state"))
    sides, mounted, refs = [], [], []
    try:
        for mode in modes:
            mnt = os.path.join(base, slug(mode))
            os.mkdir(mnt)
            media = ["--volatile"] if volatile else ["--disk", os.path.join(base, f"{slug(mode)}.disk")]
            _, pid = _mount_usable(env, mnt, *mount_args(mode), *media)
            mounted.append((mnt, pid))
            sides.append((mode, mnt))
        for kind in ("store", "null"):
            mnt = os.path.join(base, kind)
            os.mkdir(mnt)
            refs.append((_start_reference("lowlevel", kind, mnt, VOLUME_BYTES), mnt))
            sides.append((kind, mnt))
        best: dict = {}
        for r in range(repeat):                  # every job on every side, round after round
            for name, args, timed, _ in FUSE_JOBS:
                for side, mnt in sides:
                    got = fio(os.path.join(mnt, "volume"), name, args, region, runtime if timed else 0)
                    key = (name, side)
                    if key not in best or got["iops"] > best[key]["iops"]:
                        best[key] = got
            echo(f"  FUSE round {r + 1}/{repeat} done")
        deep: dict = {}
        for r in range(repeat):
            for side, mnt in sides:
                if side == "null":
                    continue                     # verify needs the data back
                for engine in (("psync", 1), ("libaio", 16)):
                    got = fio(os.path.join(mnt, "volume"), "deep_queue", DEEP_JOB, plan["deep_mib"] << 20,
                              engine=engine)
                    key = (side, engine[1])
                    if key not in deep or got["mib_s"] > deep[key]["mib_s"]:
                        deep[key] = got
    finally:
        for mnt, pid in mounted:
            _ox(env, "umount", mnt, check=False)
            _wait_gone(pid)
        for proc, mnt in refs:
            _stop_reference(proc, mnt)
    out = {}
    for mode in modes:
        for name, _, timed, goal in FUSE_JOBS:
            unit = "IOPS" if timed else "MiB/s"
            val = (lambda side: best[(name, side)]["iops" if timed else "mib_s"])
            out[prefix(mode) + name] = figure(val(mode), val("store"), val("null"), goal=goal, unit=unit)
        q1, q16 = deep[(mode, 1)]["mib_s"], deep[(mode, 16)]["mib_s"]
        out[prefix(mode) + "fuse_deep_queue"] = figure(
            q16, None, goal=1.0, ratio=q16 / q1 if q1 else None, qd1=q1,
            store_qd1=deep[("store", 1)]["mib_s"], store_qd16=deep[("store", 16)]["mib_s"],
            note="mixed-size (4-128 KiB) random writes with verify: libaio iodepth 16 over psync QD1")
    return out


# ---------------------------------------------------------------------- the run
def run(quick: bool = False, ext4: bool = False, json_path: str | None = None, modes=MODES,
        workdir: str | None = None, echo=print, parts=("bus", "fuse"), volatile: bool = False) -> dict:
    """Run the benchmark; returns {figure: entry} (and `_run`), prints the table, writes
    the JSON when asked."""
    for tool in ("fio", "fusermount3"):
        if "fuse" in parts:
            tools.find(tool)
    plan = PLANS["quick" if quick else "full"]
    t0 = time.monotonic()
    out: dict = {}
    base = tempfile.mkdtemp(prefix="ox-bench-", dir=workdir)
    try:
        if "bus" in parts:
            echo("bus figures (in process) ...")
            out.update(bus_figures(plan, echo))
        if "fuse" in parts:
            echo(f"FUSE figures: {', '.join(map(mode_name, modes))} on {'volatile' if volatile else 'disk'} media, store and "
                 f"null file systems, best of {plan['repeat']} interleaved rounds ...")
            out.update(fuse_figures(plan, _subdir(base, "fuse"), modes, echo, volatile))
        if ext4:
            from . import ext4 as ext4_bench
            echo("ext4 copy figures ...")
            out.update(ext4_bench.figures(plan, _subdir(base, "ext4"), modes, echo))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    out["_run"] = dict(plan="quick" if quick else "full", **plan, modes=list(modes), ext4=ext4,
                       media="volatile" if volatile else "fresh disk file",
                       seconds=round(time.monotonic() - t0, 1), python=sys.version.split()[0],
                       best_of="each figure is the best of `repeat` runs, baselines interleaved with ours")
    print_table(out, echo)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, indent=2)
    return out


def _subdir(base: str, name: str) -> str:
    path = os.path.join(base, name)
    os.mkdir(path)
    return path


def print_table(out: dict, echo) -> None:
    w = max([28] + [len(k) + 1 for k in out if not k.startswith("_")])
    echo("")
    echo(f"{'figure':<{w}}{'ours':>12}{'store':>12}{'null':>12}  {'unit':<11}{'ratio':>7}  {'goal':>8}  met")
    for key, f in out.items():
        if key.startswith("_"):
            continue

        def num(v):
            return "-" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}")
        goal = f.get("goal")
        ratio = f.get("ratio")
        if key == "rss_per_mib_written":
            met = f["ours"] <= goal
            goal_s = f"<= {goal}"
        elif key == "bus_read_4k_cmds":
            met = f["ours"] >= goal
            goal_s = f">= {goal // 1000}k"
        else:
            met = ratio is not None and goal is not None and ratio >= goal
            goal_s = f">= {goal}" if goal is not None else "-"
        echo(f"{key:<{w}}{num(f['ours']):>12}{num(f['store']):>12}{num(f['null']):>12}  {f['unit']:<11}"
             f"{num(ratio):>7}  {goal_s:>8}  {'yes' if met else 'NO'}")
    r = out.get("_run", {})
    echo(f"({r.get('plan')} run, {r.get('seconds')} s; each figure the best of {r.get('repeat')} runs, "
         f"baselines interleaved with ours)")
