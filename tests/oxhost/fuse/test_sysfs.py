"""`pblk/` next to the volume: pblk's sysfs files served by VolumeFs over a real pblk stack,
through the handlers and through a real FUSE mount; AppNVM mode has no such folder. And the
device bytes `stats` reports after I/O."""
import errno
import json
import os
import re
import stat
import subprocess

import pytest

from oxemu import Geometry
from oxhost.fuse import lowlevel as ll
from oxhost.fuse.fs import ROOT_INO, SYSFS_DIR_INO, VOLUME_INO, VolumeFs
from oxhost.fuse.mount import Server
from oxhost.stack import open_stack

from .conftest import serve_while

GEO = Geometry.small(nblocks=16, npages=32)         # 4 LUNs x 16 lines of 4 MiB
MIB = 1 << 20
FILES = ["errors", "gc_force", "gc_state", "lines", "lines_info", "padding_dist", "ppa_format",
         "rate_limiter", "write_amp_mileage", "write_amp_trip", "write_buffer", "write_luns"]


def errno_of(fn, *args) -> int:
    with pytest.raises(ll.FUSEError) as ei:
        fn(*args)
    return ei.value.errno


@pytest.fixture
def pblk_stack():
    st = open_stack(mode="pblk", volatile=True, geometry=GEO)
    yield st
    st.close()


@pytest.fixture
def appnvm_stack():
    st = open_stack(mode="appnvm", volatile=True, geometry=GEO)
    yield st
    st.close()


# ---------------------------------------------------------------------- the handlers
def _ino(fs, name: str) -> int:
    return fs.lookup(SYSFS_DIR_INO, name.encode()).ino


def _read(fs, name: str) -> bytes:
    ino = _ino(fs, name)
    fh = fs.open(ino, os.O_RDONLY).fh
    try:
        return bytes(fs.read(ino, fh, 0, 4096))
    finally:
        fs.release(ino, fh)


def test_sysfs_dir_lists_pblk_files_with_sysfs_modes_owner_only(pblk_stack):
    fs = VolumeFs(pblk_stack.blockdev, sysfs=pblk_stack.sysfs, uid=1234, gid=567)
    d = fs.lookup(ROOT_INO, b"pblk")
    assert d.ino == SYSFS_DIR_INO and stat.S_ISDIR(d.attr.st_mode) and stat.S_IMODE(d.attr.st_mode) == 0o700
    assert [n for n, _, _ in fs.readdir(ROOT_INO, fs.opendir(ROOT_INO).fh, 0)] == [b"volume", b"stats", b"pblk"]
    assert fs.getattr(ROOT_INO).attr.st_nlink == 3
    listed = fs.readdir(SYSFS_DIR_INO, fs.opendir(SYSFS_DIR_INO).fh, 0)
    assert sorted(n.decode() for n, _, _ in listed) == FILES
    assert fs.lookup(SYSFS_DIR_INO, b"..").ino == ROOT_INO
    modes = {n: stat.S_IMODE(fs.getattr(_ino(fs, n)).attr.st_mode) for n in ("lines", "write_amp_trip", "gc_force")}
    assert modes == {"lines": 0o400, "write_amp_trip": 0o600, "gc_force": 0o200}
    a = fs.getattr(_ino(fs, "lines")).attr
    assert a.st_size == 4096 and (a.st_uid, a.st_gid) == (1234, 567)         # a page, as sysfs says
    assert errno_of(fs.lookup, SYSFS_DIR_INO, b"stats") == errno.ENOENT
    assert errno_of(fs.lookup, _ino(fs, "lines"), b"x") == errno.ENOTDIR
    assert errno_of(fs.open, SYSFS_DIR_INO, os.O_RDONLY) == errno.EISDIR
    wide = VolumeFs(pblk_stack.blockdev, sysfs=pblk_stack.sysfs, allow_other=True)
    assert {n: stat.S_IMODE(wide.getattr(_ino(wide, n)).attr.st_mode) for n in modes} == \
        {"lines": 0o444, "write_amp_trip": 0o644, "gc_force": 0o200}


def test_sysfs_files_read_a_snapshot_taken_at_open(pblk_stack):
    fs = VolumeFs(pblk_stack.blockdev, sysfs=pblk_stack.sysfs)
    ino = _ino(fs, "write_amp_mileage")
    fh = fs.open(ino, os.O_RDONLY).fh
    vol = fs.open(VOLUME_INO, os.O_RDWR).fh
    fs.write(VOLUME_INO, vol, 0, b"v" * 8192)
    fs.fsync(VOLUME_INO, vol, False)
    assert bytes(fs.read(ino, fh, 0, 4096)) == b"user:0 gc:0 pad:0 WA:NaN\n"
    assert bytes(fs.read(ino, fh, 5, 4)) == b"0 gc"
    fs.release(ino, fh)
    assert _read(fs, "write_amp_mileage") == b"user:2 gc:0 pad:6 WA:4.00000\n"
    assert _read(fs, "gc_force") == b""


def test_sysfs_writes_reach_the_stores_and_read_only_files_refuse_them(pblk_stack):
    fs = VolumeFs(pblk_stack.blockdev, sysfs=pblk_stack.sysfs)
    vol = fs.open(VOLUME_INO, os.O_RDWR).fh
    fs.write(VOLUME_INO, vol, 0, b"v" * 4096)
    fs.fsync(VOLUME_INO, vol, False)
    trip = _ino(fs, "write_amp_trip")
    fh = fs.open(trip, os.O_WRONLY | os.O_TRUNC).fh            # what `echo 0 > write_amp_trip` does
    fs.setattr(trip, ll.Stat(), ll.SET_ATTR_SIZE)                # a kernel without atomic O_TRUNC
    assert fs.write(trip, fh, 0, b"0\n") == 2
    assert errno_of(fs.write, trip, fh, 0, b"5\n") == errno.EINVAL
    fs.release(trip, fh)
    assert _read(fs, "write_amp_trip") == b"user:0 gc:0 pad:0 WA:NaN\n"
    assert _read(fs, "write_amp_mileage") == b"user:1 gc:0 pad:7 WA:8.00000\n"
    lines = _ino(fs, "lines")
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC):
        assert errno_of(fs.open, lines, flags) == errno.EACCES
    assert errno_of(fs.setattr, lines, ll.Stat(), ll.SET_ATTR_SIZE) == errno.EACCES
    fh = fs.open(lines, os.O_RDONLY).fh
    assert errno_of(fs.write, lines, fh, 0, b"0\n") == errno.EBADF


def test_sysfs_dir_is_absent_without_a_pblk_stack(appnvm_stack):
    assert appnvm_stack.sysfs is None
    fs = VolumeFs(appnvm_stack.blockdev, sysfs=appnvm_stack.sysfs)
    assert errno_of(fs.lookup, ROOT_INO, b"pblk") == errno.ENOENT
    assert [n for n, _, _ in fs.readdir(ROOT_INO, ROOT_INO, 0)] == [b"volume", b"stats"]
    assert errno_of(fs.opendir, SYSFS_DIR_INO) == errno.ENOTDIR
    assert errno_of(fs.getattr, SYSFS_DIR_INO) == errno.ENOENT
    assert fs.getattr(ROOT_INO).attr.st_nlink == 2


# ---------------------------------------------------------------------- real mounts
def _serve(stack, mountpoint: str, body):
    """Mount `stack` at mountpoint, run body() in a worker thread, unmount."""
    server = Server(stack.blockdev, mountpoint, info=stack.info(), sysfs=stack.sysfs, handle_signals=False)
    return serve_while(server, body)


def _write_volume(path: str, chunks) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        for off, nbytes, byte in chunks:
            os.pwrite(fd, bytes([byte]) * nbytes, off)
        os.fsync(fd)
    finally:
        os.close(fd)


def _cat(path: str) -> str:
    with open(path) as f:
        return f.read()


@pytest.mark.usefixtures("needs_fuse")
def test_mount_pblk_folder_mirrors_pblk_sysfs(pblk_stack, mountpoint):
    d = os.path.join(mountpoint, "pblk")

    def body():
        seen = {"root": sorted(os.listdir(mountpoint)), "pblk": sorted(os.listdir(d))}
        # 12 MiB fill lines 0-2; the first 2 MiB written again leave line 0 half invalid
        _write_volume(os.path.join(mountpoint, "volume"),
                      [(i * MIB, MIB, 1 + i) for i in range(12)] + [(0, 2 * MIB, 0xEE)])
        # gc_force is write-only (0200): only root reads it, and gets nothing, as from pblk
        readable = FILES if os.geteuid() == 0 else [n for n in FILES if n != "gc_force"]
        seen["files"] = {n: _cat(os.path.join(d, n)) for n in readable}
        subprocess.run(["sh", "-c", f"echo 0 > {d}/write_amp_trip"], check=True)
        seen["trip"] = _cat(os.path.join(d, "write_amp_trip"))
        with pytest.raises(OSError) as ei:
            with open(os.path.join(d, "write_amp_trip"), "w") as f:
                f.write("3\n")
        seen["bad_value"] = ei.value.errno
        with pytest.raises(PermissionError):
            open(os.path.join(d, "lines"), "w")
        runs = json.loads(_cat(os.path.join(mountpoint, "stats")))["gc_runs"]
        subprocess.run(["sh", "-c", f"echo 1 > {d}/gc_force"], check=True)
        seen["stats"] = json.loads(_cat(os.path.join(mountpoint, "stats")))
        seen["gc_runs"] = (runs, seen["stats"]["gc_runs"])
        seen["gc_force_mode"] = stat.S_IMODE(os.stat(os.path.join(d, "gc_force")).st_mode)
        with open(os.path.join(mountpoint, "volume"), "rb") as f:
            seen["head"] = f.read(2 * MIB + 1)
        return seen

    seen = _serve(pblk_stack, mountpoint, body)
    assert seen["root"] == ["pblk", "stats", "volume"]
    assert seen["pblk"] == FILES
    f = seen["files"]
    user = 14 * MIB // 4096
    assert re.fullmatch(rf"user:{user} gc:0 pad:0 WA:1\.00000\n", f["write_amp_mileage"])
    assert f["write_amp_trip"] == f["write_amp_mileage"]
    assert re.fullmatch(r"line: nluns:4, nblks:4, nsecs:1024\nlines:d:3,l:-1-f:\d+,m:0/1,c:3,b:0,co:0\(d:3,l:0\)"
                        r"t:16\nGC: full:0, high:0, mid:1, low:0, empty:2, werr: 0, queue:0\n"
                        r"data \(3\) cur:\d+, left:\d+, vsc:\d+, s:\d+, map:\d+/1024 \(0\)\n", f["lines"])
    assert f["lines_info"].endswith("blk_line:4, sec_line:1024, sec_blk:256\n")
    assert f["gc_state"] == "gc_enabled=1, gc_active=0\n"
    assert f["errors"].startswith("read_failed=0, read_high_ecc=0, ")
    assert f["padding_dist"].startswith("0:100% 1:0% ")          # every fsync found whole units
    assert re.fullmatch(r"g:\(b:\d+\)blk:\d+/\d+,pg:\d+/\d+,lun:\d+/1,ch:\d+/1,pl:\d+/1,sec:0/2\n"
                        r"d:blk:.*\n", f["ppa_format"])
    assert re.fullmatch(r"u:\d+/\d+,gc:\d+/\d+\(\d\)\(stop:<\d+,full:>\d+,free:\d+/\d+/\d+\)-[01]\n",
                        f["rate_limiter"])
    assert re.fullmatch(r"2048\t\d+\t\d+\t\d+\t\d+\t0\tNULL - \d+/\d+/0 - 0\n", f["write_buffer"])
    assert f["write_luns"].count("pblk: pos:") == 4
    assert f.get("gc_force", "") == ""
    assert seen["trip"] == "user:0 gc:0 pad:0 WA:NaN\n"
    assert seen["bad_value"] == errno.EINVAL
    assert seen["gc_runs"][1] == seen["gc_runs"][0] + 1           # gc_force collected line 0
    assert seen["gc_force_mode"] == 0o200
    assert seen["head"] == b"\xee" * (2 * MIB) + b"\x03"
    dev = seen["stats"]["device"]
    assert dev["bytes_out"] >= 14 * MIB and dev["bytes_in"] > 0


@pytest.mark.usefixtures("needs_fuse")
def test_mount_appnvm_has_no_pblk_folder_and_stats_count_device_bytes(appnvm_stack, mountpoint):
    def body():
        _write_volume(os.path.join(mountpoint, "volume"), [(0, MIB, 0x5A)])
        with open(os.path.join(mountpoint, "volume"), "rb", buffering=0) as f:
            data = f.read(MIB)
        return sorted(os.listdir(mountpoint)), data, json.loads(_cat(os.path.join(mountpoint, "stats")))

    names, data, stats = _serve(appnvm_stack, mountpoint, body)
    assert names == ["stats", "volume"]
    assert data == b"\x5a" * MIB
    assert stats["driver"]["bytes_out"] >= MIB and stats["driver"]["bytes_in"] > 0
