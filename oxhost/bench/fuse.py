"""FUSE benchmark (issue 4): the same fio jobs on our volume (`ox mount`, the whole stack
under it) and on a null FUSE file system of the same binding and Trio shape that stores
nothing, in the same run, so the ratio isolates what our stack costs per request. Also the
time from `ox mount` to a usable volume, fresh and with ~3 GB on the disk file.

`--bindings` instead compares the FUSE bindings (TRIM issue): the null and store file
systems of oxhost.bench.fusefs on each installed binding, and our volume, with the same fio
jobs interleaved, best of N; `--baseline-tree DIR` adds the volume served by another source
tree (e.g. `git archive` of the commit before a change of binding).

    python -m oxhost.bench.fuse [--region-mib 256] [--runtime 10] [--full]
    python -m oxhost.bench.fuse --bindings [--runtime 3] [--repeat 3] [--baseline-tree DIR]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from oxhost import tools
from oxhost.fuse.registry import mounts

from .modes import mount_args, slug

VOLUME_BYTES = 3_435_134_976
OX = [sys.executable, "-m", "oxhost.cli"]

# name, fio arguments; every job QD1 (psync), O_DIRECT, on the first `region` bytes
JOBS = (
    ("seq-write 1M", ["--rw=write", "--bs=1m"]),
    ("seq-read 1M", ["--rw=read", "--bs=1m"]),
    ("rand-write 4K", ["--rw=randwrite", "--bs=4k"]),
    ("rand-read 4K", ["--rw=randread", "--bs=4k"]),
)


# ---------------------------------------------------------------------- reference file systems
def _wait_mounted(proc, mountpoint: str, timeout: float = 30.0) -> None:
    """Until `mountpoint` is a FUSE mount whose volume answers a stat."""
    end = time.monotonic() + timeout
    vol = os.path.join(mountpoint, "volume")
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the file system at {mountpoint} exited ({proc.returncode})")
        if any(m.mountpoint == mountpoint for m in mounts()):
            os.stat(vol)
            return
        time.sleep(0.02)
    raise RuntimeError(f"no file system mounted at {mountpoint} after {timeout:.0f} s")


def _start_reference(binding: str, kind: str, mountpoint: str, size: int) -> subprocess.Popen:
    """A reference file system (oxhost.bench.fusefs) served by a child process."""
    proc = subprocess.Popen([sys.executable, "-m", "oxhost.bench.fusefs", binding, kind,
                             mountpoint, "--size", str(size)], stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        _wait_mounted(proc, mountpoint)
    except BaseException:
        _stop_reference(proc, mountpoint)
        raise
    return proc


def _stop_reference(proc: subprocess.Popen, mountpoint: str) -> None:
    subprocess.run(tools.command(["fusermount3", "-u", mountpoint]), capture_output=True, check=False)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        subprocess.run(tools.command(["fusermount3", "-uz", mountpoint]), capture_output=True,
                       check=False)


# ---------------------------------------------------------------------- helpers
def fio(path: str, name: str, args: list, region: int, runtime: float = 0.0,
        engine=("psync", 1)) -> dict:
    """One fio job on `path` (O_DIRECT, no fallocate): bandwidth, IOPS, mean completion
    latency and bytes of its write side, or of its read side when it wrote nothing."""
    cmd = [tools.find("fio"), "--output-format=json", "--fallocate=none", "--verify_state_save=0",
           "--name=" + name.replace(" ", "_"),
           f"--filename={path}", f"--size={region}", "--direct=1", f"--ioengine={engine[0]}",
           f"--iodepth={engine[1]}", "--randrepeat=0", *args]
    if runtime:
        cmd += [f"--runtime={runtime}", "--time_based"]
    cp = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if cp.returncode:
        raise RuntimeError(f"fio {name} on {path} failed: {cp.stderr.strip() or cp.stdout[-500:]}")
    job = json.loads(cp.stdout[cp.stdout.index("{"):])["jobs"][0]
    side = job["write"] if job["write"]["io_bytes"] else job["read"]
    return {"mib_s": side["bw_bytes"] / 2**20, "iops": side["iops"],
            "lat_us": side["clat_ns"]["mean"] / 1000, "bytes": side["io_bytes"]}


def _ox(env, *args, check=True, cwd=None) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    cp = subprocess.run([*OX, *map(str, args)], env=env, capture_output=True, text=True,
                        check=False, cwd=cwd)
    dt = time.perf_counter() - t
    if check and cp.returncode:
        raise RuntimeError(f"ox {' '.join(map(str, args))}: {cp.stderr.strip()}")
    return dt, cp


def _pid(cp) -> int:
    import re
    return int(re.search(r"\(pid (\d+)\)", cp.stdout).group(1))


def _mount_usable(env, mnt, *args) -> tuple[float, int]:
    """Seconds from `ox mount` to the volume answering a read; the serving pid."""
    t = time.perf_counter()
    _, cp = _ox(env, "mount", mnt, *args)
    with open(os.path.join(mnt, "volume"), "rb") as f:
        f.read(4096)
    return time.perf_counter() - t, _pid(cp)


def _wait_gone(pid: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


# ---------------------------------------------------------------------- the benchmark
def run(region_mib: int = 256, runtime: float = 10.0, repeat: int = 2, full: bool = False,
        full_gib: float = 3.0, volatile: bool = False, workdir: str | None = None,
        keep: bool = False, modes=("pblk",), echo=print) -> dict:
    """Run the benchmark; returns the figures as a dict and prints a table with `echo`.
    Each job runs `repeat` times per side, alternating, and keeps the best (the machine may
    be shared). Our volume keeps its media in a fresh disk file, like `ox mount`, unless
    `volatile` (media in RAM: no page faults on a sparse file). `full` also fills
    ~`full_gib` GiB through a disk-backed volume and times remounts of it. Each extra stack
    mode in `modes` (e.g. "appnvm", "my_ftl.py:MyFtl@host") is mounted beside the pblk
    volume and runs the same jobs, reported as side "ours-NAME" (NAME: modes.slug)."""
    for tool in ("fio", "fusermount3"):
        tools.find(tool)
    region = region_mib << 20
    base = tempfile.mkdtemp(prefix="ox-bench-fuse-", dir=workdir)
    env = dict(os.environ, OX_STATE_DIR=os.path.join(base, "state"))
    ours, null = os.path.join(base, "ours"), os.path.join(base, "null")
    disk = os.path.join(base, "bench.disk")
    os.mkdir(ours)
    os.mkdir(null)
    out = {"region_mib": region_mib, "runtime_s": runtime, "repeat": repeat,
           "media": "volatile" if volatile else "disk", "jobs": {}, "mount_s": {}}
    null_proc = None
    ours_mounted = False
    extra_mounts = []
    try:
        null_proc = _start_reference("lowlevel", "null", null, VOLUME_BYTES)

        t, pid = _mount_usable(env, ours, "--volatile")
        out["mount_s"]["volatile"] = t
        _ox(env, "umount", ours)
        _wait_gone(pid)
        t, pid = _mount_usable(env, ours, "--disk", disk)
        ours_mounted = True
        out["mount_s"]["fresh_disk"] = t
        if volatile:
            _ox(env, "umount", ours)
            _wait_gone(pid)
            _, pid = _mount_usable(env, ours, "--volatile")

        sides = [("ours", ours)]
        for mode in modes:
            if mode == "pblk":
                continue
            mnt = os.path.join(base, f"ours-{slug(mode)}")
            os.mkdir(mnt)
            extra = ["--volatile"] if volatile else ["--disk", os.path.join(base, f"{slug(mode)}.disk")]
            _, xpid = _mount_usable(env, mnt, *mount_args(mode), *extra)
            extra_mounts.append((mnt, xpid))
            sides.append((f"ours-{slug(mode)}", mnt))
        sides.append(("null", null))
        for name, args in JOBS:
            r = {}
            for _ in range(max(1, repeat)):      # alternate sides; keep each side's best run
                for side, mnt in sides:
                    seq = name.startswith("seq")
                    got = fio(os.path.join(mnt, "volume"), name, args, region,
                               0 if seq else runtime)
                    if side not in r or got["iops"] > r[side]["iops"]:
                        r[side] = got
            for side, _ in sides[:-1]:
                key = "ratio" if side == "ours" else f"ratio-{side[5:]}"
                r[key] = r[side]["iops"] / r["null"]["iops"] if r["null"]["iops"] else 0.0
            out["jobs"][name] = r
        with open(os.path.join(ours, "stats")) as f:
            out["stats"] = json.load(f)

        if full:
            if volatile:
                _ox(env, "umount", ours)
                _wait_gone(pid)
                _, pid = _mount_usable(env, ours, "--disk", disk)
            nbytes = int(full_gib * 2**30) // 2**20 * 2**20
            t0 = time.perf_counter()
            fio(os.path.join(ours, "volume"), "fill-write", ["--rw=write", "--bs=1m"],
                 min(nbytes, VOLUME_BYTES // 2**20 * 2**20), 0)
            out["fill"] = {"bytes": nbytes, "seconds": time.perf_counter() - t0}
            _ox(env, "umount", ours)
            ours_mounted = False
            _wait_gone(pid)
            t, pid = _mount_usable(env, ours, "--disk", disk)
            ours_mounted = True
            out["mount_s"]["full_disk_clean"] = t
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid)
            _ox(env, "umount", ours)
            t, pid = _mount_usable(env, ours, "--disk", disk)
            out["mount_s"]["full_disk_after_kill9"] = t
    finally:
        for mnt, xpid in extra_mounts:
            _ox(env, "umount", mnt, check=False)
            _wait_gone(xpid)
        if ours_mounted:
            _ox(env, "umount", ours, check=False)
        if null_proc is not None:
            _stop_reference(null_proc, null)
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    _print(out, echo)
    return out


def _print(out: dict, echo) -> None:
    echo(f"FUSE benchmark: QD1, O_DIRECT, psync, region {out['region_mib']} MiB, random jobs "
         f"{out['runtime_s']:g} s, best of {out['repeat']} per side; our media: {out['media']}")
    echo(f"{'job':<14} {'ours MiB/s':>11} {'ours IOPS':>10} {'ours lat':>9} "
         f"{'null MiB/s':>11} {'null IOPS':>10} {'null lat':>9} {'ours/null':>9}")
    for name, r in out["jobs"].items():
        o, n = r["ours"], r["null"]
        echo(f"{name:<14} {o['mib_s']:>11.1f} {o['iops']:>10.0f} {o['lat_us']:>7.0f}us "
             f"{n['mib_s']:>11.1f} {n['iops']:>10.0f} {n['lat_us']:>7.0f}us {r['ratio']:>9.2f}")
    others = sorted({k for r in out["jobs"].values() for k in r if k.startswith("ours-")})
    for side in others:
        echo(f"{side} (same run, same null baseline):")
        for name, r in out["jobs"].items():
            o = r[side]
            echo(f"  {name:<12} {o['mib_s']:>11.1f} {o['iops']:>10.0f} {o['lat_us']:>7.0f}us "
                 f"{'':>33} {r['ratio-' + side[5:]]:>9.2f}")
    for k, v in out["mount_s"].items():
        echo(f"ox mount -> usable, {k.replace('_', ' ')}: {v:.2f} s")
    if "fill" in out:
        f = out["fill"]
        echo(f"fill: {f['bytes'] / 2**30:.2f} GiB in {f['seconds']:.1f} s "
             f"({f['bytes'] / 2**20 / f['seconds']:.0f} MiB/s)")
    s = out.get("stats", {})
    if s:
        echo(f"pblk after the jobs: WA {s.get('write_amplification')}, "
             f"GC runs {s.get('gc_runs')}, fuse errors {s.get('fuse', {}).get('errors')}")


# ---------------------------------------------------------------------- bindings
def run_bindings(region_mib: int = 256, runtime: float = 3.0, repeat: int = 3,
                 bindings=None, kinds=None, volume: bool = True,
                 baseline_tree: str | None = None, baseline_label: str = "baseline",
                 workdir: str | None = None, echo=print) -> dict:
    """The reference file systems on every installed binding, our volume (`ox mount
    --volatile`, pblk) on the binding it uses, and optionally the volume served by
    `baseline_tree`: each job `repeat` times, every side in turn each round (the machine
    may be shared), best kept. Every job is time-based (`runtime` s) over `region_mib`."""
    from . import fusefs
    for tool in ("fio", "fusermount3"):
        tools.find(tool)
    bindings = [b for b in (bindings or fusefs.BINDINGS)]
    missing = [b for b in bindings if not fusefs.available(b)]
    region = region_mib << 20
    base = tempfile.mkdtemp(prefix="ox-bench-bindings-", dir=workdir)
    env = dict(os.environ, OX_STATE_DIR=os.path.join(base, "state"))
    out = {"region_mib": region_mib, "runtime_s": runtime, "repeat": repeat,
           "missing": missing, "sides": [], "jobs": {}}
    refs, vols = [], []
    try:
        sides = []
        for b in bindings:
            if b in missing:
                continue
            for k in kinds or fusefs.KINDS:
                mnt = os.path.join(base, f"{k}-{b}")
                os.mkdir(mnt)
                refs.append((_start_reference(b, k, mnt, VOLUME_BYTES), mnt))
                sides.append((f"{k}/{b}", mnt))
        trees = []
        if volume:
            trees.append(("volume/lowlevel", None))
        if baseline_tree:
            trees.append((f"volume/{baseline_label}", os.path.abspath(baseline_tree)))
        for label, tree in trees:
            mnt = os.path.join(base, label.replace("/", "-"))
            os.mkdir(mnt)
            # `python -m` puts the working directory first on sys.path: run in the tree
            _, cp = _ox(env, "mount", mnt, "--volatile", "--mode", "pblk", cwd=tree)
            vols.append((tree, mnt, _pid(cp)))
            sides.append((label, mnt))
        out["sides"] = [label for label, _ in sides]
        for name, args in JOBS:
            r = {}
            for _ in range(max(1, repeat)):
                for side, mnt in sides:
                    got = fio(os.path.join(mnt, "volume"), name, args, region, runtime)
                    if side not in r or got["iops"] > r[side]["iops"]:
                        r[side] = got
            out["jobs"][name] = r
    finally:
        for tree, mnt, pid in vols:
            _ox(env, "umount", mnt, check=False, cwd=tree)
            _wait_gone(pid)
        for proc, mnt in refs:
            _stop_reference(proc, mnt)
        shutil.rmtree(base, ignore_errors=True)
    _print_bindings(out, echo)
    return out


def _print_bindings(out: dict, echo) -> None:
    echo(f"FUSE bindings: QD1, O_DIRECT, psync, region {out['region_mib']} MiB, every job "
         f"{out['runtime_s']:g} s, best of {out['repeat']}, sides interleaved")
    if out["missing"]:
        echo(f"not installed (skipped): {', '.join(out['missing'])}")
    names = list(out["jobs"])
    echo(f"{'side':<18}" + "".join(f"{n:>22}" for n in names))
    for side in out["sides"]:
        cells = []
        for n in names:
            g = out["jobs"][n][side]
            cells.append(f"{g['mib_s']:>9.0f} MiB/s" if n.startswith("seq")
                         else f"{g['iops']:>10.0f} IOPS")
        echo(f"{side:<18}" + "".join(f"{c:>22}" for c in cells))
    pairs = [(f"{k}/{b}", f"{k}/pyfuse3") for k in ("null", "store") for b in ("lowlevel", "mfusepy")]
    pairs += [("volume/lowlevel", s) for s in out["sides"]
              if s.startswith("volume/") and s != "volume/lowlevel"]
    for side, ref in pairs:
        if side in out["sides"] and ref in out["sides"] and side != ref:
            ratios = [out["jobs"][n][side]["iops"] / (out["jobs"][n][ref]["iops"] or 1) for n in names]
            echo(f"{side.split('/')[0] + ' ' + side.split('/')[1] + '/' + ref.split('/')[1]:<18}"
                 + "".join(f"{r:>21.2f}x" for r in ratios))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--region-mib", type=int, default=256)
    p.add_argument("--runtime", type=float, default=None,
                   help="seconds per random job (10; with --bindings every job, 3)")
    p.add_argument("--repeat", type=int, default=None,
                   help="runs per job and side, best kept (2; with --bindings 3)")
    p.add_argument("--volatile", action="store_true", help="our media in RAM, not a disk file")
    p.add_argument("--full", action="store_true", help="also time mounts of a ~3 GiB disk")
    p.add_argument("--full-gib", type=float, default=3.0)
    p.add_argument("--modes", default="pblk",
                   help="comma-separated stack modes: pblk plus e.g. appnvm, my_ftl.py:MyFtl@host")
    p.add_argument("--json", help="write the figures here too")
    p.add_argument("--bindings", action="store_true",
                   help="compare the FUSE bindings (null/store file systems, our volume)")
    p.add_argument("--baseline-tree", metavar="DIR",
                   help="with --bindings: also the volume served by this source tree")
    p.add_argument("--baseline-label", default="baseline",
                   help="with --baseline-tree: its name in the table (e.g. pyfuse3)")
    a = p.parse_args(argv)
    if a.bindings:
        out = run_bindings(region_mib=a.region_mib, runtime=a.runtime or 3.0,
                           repeat=a.repeat or 3,
                           baseline_tree=a.baseline_tree, baseline_label=a.baseline_label)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=2)
        return
    out = run(region_mib=a.region_mib, runtime=a.runtime or 10.0, repeat=a.repeat or 2, full=a.full,
              full_gib=a.full_gib, volatile=a.volatile, modes=a.modes.split(","))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
