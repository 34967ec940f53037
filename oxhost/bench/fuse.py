"""FUSE benchmark (issue 4): the same fio jobs on our volume (`ox mount`, the whole stack
under it) and on a null FUSE file system of the same pyfuse3/Trio shape that stores
nothing, in the same run, so the ratio isolates what our stack costs per request. Also the
time from `ox mount` to a usable volume, fresh and with ~3 GB on the disk file.

    python -m oxhost.bench.fuse [--region-mib 256] [--runtime 10] [--full]
"""
import argparse
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pyfuse3
import trio

VOLUME_BYTES = 3_435_134_976
OX = [sys.executable, "-m", "oxhost.cli"]

# name, fio arguments; every job QD1 (psync), O_DIRECT, on the first `region` bytes
JOBS = (
    ("seq-write 1M", ["--rw=write", "--bs=1m"]),
    ("seq-read 1M", ["--rw=read", "--bs=1m"]),
    ("rand-write 4K", ["--rw=randwrite", "--bs=4k"]),
    ("rand-read 4K", ["--rw=randread", "--bs=4k"]),
)


# ---------------------------------------------------------------------- null file system
class NullFs(pyfuse3.Operations):
    """A root with one `volume` file of `size` bytes: reads return zeros, writes are
    accepted and dropped, fsync does nothing. The floor our VolumeFs is measured against."""

    VOLUME = pyfuse3.ROOT_INODE + 1

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.zeros = bytes(4 << 20)
        self.uid, self.gid = os.getuid(), os.getgid()

    def _attr(self, ino):
        a = pyfuse3.EntryAttributes()
        a.st_ino = ino
        a.st_uid, a.st_gid = self.uid, self.gid
        a.attr_timeout = a.entry_timeout = 300.0
        if ino == pyfuse3.ROOT_INODE:
            a.st_mode, a.st_nlink = stat.S_IFDIR | 0o700, 2
        else:
            a.st_mode, a.st_nlink, a.st_size = stat.S_IFREG | 0o600, 1, self.size
        return a

    async def getattr(self, inode, ctx=None):
        if inode not in (pyfuse3.ROOT_INODE, self.VOLUME):
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attr(inode)

    async def lookup(self, parent_inode, name, ctx=None):
        if parent_inode != pyfuse3.ROOT_INODE or name != b"volume":
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attr(self.VOLUME)

    async def opendir(self, inode, ctx):
        return inode

    async def readdir(self, fh, start_id, token):
        if start_id == 0:
            pyfuse3.readdir_reply(token, b"volume", self._attr(self.VOLUME), 1)

    async def open(self, inode, flags, ctx):
        return pyfuse3.FileInfo(fh=inode, keep_cache=True)

    async def read(self, fh, off, size):
        size = max(0, min(size, self.size - off))
        return memoryview(self.zeros)[:size]

    async def write(self, fh, off, buf):
        return len(buf)

    async def fsync(self, fh, datasync):
        pass

    async def flush(self, fh):
        pass

    async def release(self, fh):
        pass


def serve_null(mountpoint: str, size: int) -> None:
    """Serve NullFs until unmounted; prints `ready` once mounted (for the benchmark)."""
    async def main():
        opts = set(pyfuse3.default_options) | {"fsname=oxnull", "subtype=oxnull", "noatime"}
        pyfuse3.init(NullFs(size), mountpoint, opts)
        try:
            async with trio.open_nursery() as n:
                n.start_soon(pyfuse3.main, 1, 1)      # one worker, as `ox mount` runs
                await trio.to_thread.run_sync(os.stat, os.path.join(mountpoint, "volume"))
                print("ready", flush=True)
        finally:
            pyfuse3.close(unmount=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    trio.run(main)


# ---------------------------------------------------------------------- helpers
def _fio(path: str, name: str, args: list, region: int, runtime: float) -> dict:
    cmd = ["fio", "--output-format=json", "--fallocate=none", "--verify_state_save=0",
           "--name=" + name.replace(" ", "_"),
           f"--filename={path}", f"--size={region}", "--direct=1", "--ioengine=psync",
           "--iodepth=1", "--randrepeat=0", *args]
    if runtime:
        cmd += [f"--runtime={runtime}", "--time_based"]
    cp = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if cp.returncode:
        raise RuntimeError(f"fio {name} on {path} failed: {cp.stderr.strip() or cp.stdout[-500:]}")
    job = json.loads(cp.stdout[cp.stdout.index("{"):])["jobs"][0]
    side = job["write"] if "write" in name else job["read"]
    return {"mib_s": side["bw_bytes"] / 2**20, "iops": side["iops"],
            "lat_us": side["clat_ns"]["mean"] / 1000, "bytes": side["io_bytes"]}


def _ox(env, *args, check=True) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    cp = subprocess.run([*OX, *map(str, args)], env=env, capture_output=True, text=True,
                        check=False)
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
    ~`full_gib` GiB through a disk-backed volume and times remounts of it. Each extra mode
    in `modes` (e.g. "appnvm") is mounted beside the pblk volume and runs the same jobs,
    reported as side "ours-MODE"."""
    for tool in ("fio", "fusermount3"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} not found (scripts/install.sh installs it)")
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
        null_proc = subprocess.Popen([sys.executable, "-m", "oxhost.bench.fuse", "--serve-null",
                                      null, "--size", str(VOLUME_BYTES)],
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        if null_proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the null FUSE file system did not start")

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
            mnt = os.path.join(base, f"ours-{mode}")
            os.mkdir(mnt)
            extra = ["--volatile"] if volatile else ["--disk", os.path.join(base, f"{mode}.disk")]
            _, xpid = _mount_usable(env, mnt, "--mode", mode, *extra)
            extra_mounts.append((mnt, xpid))
            sides.append((f"ours-{mode}", mnt))
        sides.append(("null", null))
        for name, args in JOBS:
            r = {}
            for _ in range(max(1, repeat)):      # alternate sides; keep each side's best run
                for side, mnt in sides:
                    seq = name.startswith("seq")
                    got = _fio(os.path.join(mnt, "volume"), name, args, region,
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
            _fio(os.path.join(ours, "volume"), "fill-write", ["--rw=write", "--bs=1m"],
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
            subprocess.run(["fusermount3", "-u", null], capture_output=True, check=False)
            try:
                null_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                null_proc.kill()
                subprocess.run(["fusermount3", "-uz", null], capture_output=True, check=False)
            null_proc.stdout.close()
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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--region-mib", type=int, default=256)
    p.add_argument("--runtime", type=float, default=10.0, help="seconds per random job")
    p.add_argument("--repeat", type=int, default=2, help="runs per job and side (best kept)")
    p.add_argument("--volatile", action="store_true", help="our media in RAM, not a disk file")
    p.add_argument("--full", action="store_true", help="also time mounts of a ~3 GiB disk")
    p.add_argument("--full-gib", type=float, default=3.0)
    p.add_argument("--modes", default="pblk", help="comma-separated: pblk plus e.g. appnvm")
    p.add_argument("--json", help="write the figures here too")
    p.add_argument("--serve-null", metavar="MOUNTPOINT", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=VOLUME_BYTES, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.serve_null:
        serve_null(a.serve_null, a.size)
        return
    out = run(region_mib=a.region_mib, runtime=a.runtime, repeat=a.repeat, full=a.full,
              full_gib=a.full_gib, volatile=a.volatile, modes=a.modes.split(","))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
