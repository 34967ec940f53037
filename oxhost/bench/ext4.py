"""ext4 copy figures of `ox bench --ext4`: one big file and a tree of small files copied onto
ext4 on our volume (`ox up`, a loop mount of the FUSE volume) and onto ext4 on a loop
device over the store file system (oxhost.bench.fusefs: the same FUSE shape, memory
behind it), each copy followed by a sync of its file system, ours and the baseline
interleaved, best of `ext4_repeat`. Rates: MiB/s for the big file, files/s for the tree;
ratio = ours / store, so 0.5 means the copy takes twice as long on our volume.

The sources are staged in memory first (/dev/shm when it has room): the big file is
random bytes; the tree is the running Python's standard library (~50,000 files) for a full
run, or a generated tree of small files for --quick. Needs root (loop mounts) and mkfs.ext4.
"""
import os
import shutil
import subprocess
import sysconfig
import time

import numpy as np

from .. import tools
from ..fuse.upper import MKFS_CMD
from .fuse import VOLUME_BYTES, _ox, _pid, _start_reference, _stop_reference, _wait_gone
from .modes import mount_args, prefix, slug


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    cp = subprocess.run(tools.command(cmd), capture_output=True, text=True, check=False,
                        stdin=subprocess.DEVNULL, **kw)
    if cp.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: {(cp.stderr or cp.stdout).strip()[-300:]}")
    return cp


def _stage(plan: dict, base: str) -> tuple[str, str, int, int]:
    """(big file, tree, its bytes, its files) staged in memory."""
    shm = "/dev/shm"
    need = (plan["ext4_big_mib"] << 20) + (1 << 30)
    root = shm if os.path.isdir(shm) and shutil.disk_usage(shm).free > 2 * need else base
    stage = os.path.join(root, f"ox-bench-ext4-{os.getpid()}")
    os.makedirs(stage, exist_ok=True)
    big = os.path.join(stage, "big.bin")
    rng = np.random.default_rng(10)
    with open(big, "wb") as f:
        for _ in range(plan["ext4_big_mib"]):
            f.write(rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes())
    tree = os.path.join(stage, "tree")
    if plan["ext4_files"] is None:
        shutil.copytree(sysconfig.get_paths()["stdlib"], tree, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"), ignore_dangling_symlinks=True)
    else:                                  # a generated tree: 100 files a directory, 0-16 KiB
        sizes = rng.integers(0, 16 << 10, plan["ext4_files"])
        blob = rng.integers(0, 256, 16 << 10, dtype=np.uint8).tobytes()
        for i, n in enumerate(sizes.tolist()):
            d = os.path.join(tree, f"d{i // 1000}", f"e{i // 100 % 10}")
            if i % 100 == 0:
                os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{i}.py"), "wb") as f:
                f.write(blob[:n])
    nfiles, nbytes = 0, 0
    for dirpath, _, files in os.walk(tree):
        for name in files:
            nfiles += 1
            nbytes += os.lstat(os.path.join(dirpath, name)).st_size
    return big, tree, nbytes, nfiles


def _copy(src: str, dst: str, fs_dir: str) -> float:
    """Seconds to copy src to dst and sync the file system at fs_dir."""
    t = time.perf_counter()
    _run(["cp", "-a", src, dst])
    _run(["sync", "-f", fs_dir])
    return time.perf_counter() - t


def figures(plan: dict, base: str, modes, echo) -> dict:
    if os.geteuid() != 0:
        raise RuntimeError("the ext4 figures need root (loop mounts)")
    for tool in ("mkfs.ext4", "fio", "fusermount3"):
        tools.find(tool)
    big, tree, tree_bytes, nfiles = _stage(plan, base)
    big_mib = os.path.getsize(big) >> 20
    echo(f"  sources: {big_mib} MiB file, {nfiles} files ({tree_bytes >> 20} MiB)")
    env = dict(os.environ, OX_STATE_DIR=os.path.join(base, "state"))
    ups, store_proc, store_fuse, store_dir = [], None, None, None
    try:
        for mode in modes:                     # ext4 on our volume: `ox up`
            d = os.path.join(base, f"up-{slug(mode)}")
            _, cp = _ox(env, "up", d, *mount_args(mode), "--disk", os.path.join(base, f"{slug(mode)}.disk"))
            ups.append((mode, d, _pid(cp)))
        store_fuse = os.path.join(base, "store")   # ext4 on a loop device over the store FS
        store_dir = os.path.join(base, "store-ext4")
        os.mkdir(store_fuse)
        os.mkdir(store_dir)
        store_proc = _start_reference("lowlevel", "store", store_fuse, VOLUME_BYTES)
        vol = os.path.join(store_fuse, "volume")
        _run([*MKFS_CMD, vol])
        _run(["mount", "-t", "ext4", "-o", "loop", vol, store_dir])
        sides = [(mode, d) for mode, d, _ in ups] + [("store", store_dir)]
        best: dict = {}
        for r in range(plan["ext4_repeat"]):
            for what, src in (("big", big), ("tree", tree)):
                for side, d in sides:
                    if r:                      # the volume holds ~3.2 GiB: one copy at a time
                        _run(["rm", "-rf", os.path.join(d, f"{what}{r - 1}")])
                        _run(["sync", "-f", d])
                    s = _copy(src, os.path.join(d, f"{what}{r}"), d)
                    best[(what, side)] = min(best.get((what, side), float("inf")), s)
                    echo(f"  {what:4} onto {slug(side) if side != 'store' else side:6} {s:6.2f} s")
    finally:
        if store_dir is not None:
            subprocess.run(tools.command(["umount", store_dir]), capture_output=True, check=False)
        if store_proc is not None:
            _stop_reference(store_proc, store_fuse)
        for _, d, pid in ups:
            _ox(env, "umount", d, check=False)
            _wait_gone(pid)
        shutil.rmtree(os.path.dirname(big), ignore_errors=True)
    out = {}
    for mode in modes:
        for what, unit, amount in (("big", "MiB/s", big_mib), ("tree", "files/s", nfiles)):
            ours, store = amount / best[(what, mode)], amount / best[(what, "store")]
            out[f"{prefix(mode)}ext4_copy_{what}"] = dict(
                ours=ours, store=store, null=None, ratio=ours / store, goal=0.5, unit=unit,
                seconds=best[(what, mode)], store_seconds=best[(what, "store")],
                note=f"cp -a + sync of {'one file' if what == 'big' else f'{nfiles} files'}; "
                     "ratio 0.5 = twice the store's time")
    return out
