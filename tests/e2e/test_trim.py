"""TRIM reaches the FTL (issue "TRIM is silently lost"): fstrim on the ext4 of `ox up`,
blkdiscard and blkdiscard -z on a loop device over a raw `ox mount` volume, and ext4's
lazy inode-table zeroing, in both modes, counted by the FTL and read back as zeros."""
import os
import subprocess
import time

import numpy as np
import pytest

from tests.conftest import require_tools

from .conftest import ROOT_ONLY, SMALL_GEOMETRY, read_stats

pytestmark = ROOT_ONLY
MODES = ["pblk", "appnvm"]
S = 4096


def discarded(stats: dict) -> int:
    """pblk's discarded-sector counter, or the sectors AppNVM was told to deallocate."""
    if "counters" in stats:
        return stats["counters"]["discarded_sectors"]
    return stats["discarded_sectors"]                  # AppNVM: the device's own count


def run(*cmd, timeout=60) -> str:
    cp = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=timeout,
                        check=False)
    assert cp.returncode == 0, f"{' '.join(map(str, cmd))}: {cp.stdout}{cp.stderr}"
    return cp.stdout


class KernelLog:
    """The kernel log lines that appear during a test, when dmesg is readable here."""

    def __init__(self):
        cp = subprocess.run(["dmesg"], capture_output=True, text=True, check=False)
        self.ok = cp.returncode == 0
        self.start = len(cp.stdout.splitlines()) if self.ok else 0

    def new_errors(self, device: str) -> list[str]:
        if not self.ok:
            return []
        lines = subprocess.run(["dmesg"], capture_output=True, text=True,
                               check=False).stdout.splitlines()[self.start:]
        name = os.path.basename(device)
        return [ln for ln in lines if name in ln and ("error" in ln.lower() or "WRITE_ZEROES" in ln)]


@pytest.mark.parametrize("mode", MODES)
def test_e2e_fstrim_on_ox_up_reaches_the_ftl(ox, tmp_path, mode):
    require_tools("fstrim")
    up = tmp_path / "data"
    ox.run("up", up, "--disk", tmp_path / "ox.disk", "--geometry", SMALL_GEOMETRY, "--mode", mode)
    (private,) = ox.state.glob("up-*")
    blob = np.random.default_rng(3).integers(0, 256, 16 << 20, dtype=np.uint8).tobytes()
    (up / "blob").write_bytes(blob)
    os.sync()
    before = read_stats(private)
    (up / "blob").unlink()
    os.sync()
    out = run("fstrim", "-v", up)
    assert "trimmed" in out
    after = read_stats(private)
    assert discarded(after) - discarded(before) >= len(blob) // S, (before, after)
    # the deleted file is no longer valid in the FTL: GC, which moves valid sectors only,
    # will move none of it (ext4's own metadata writes of the unlink are the slack)
    assert after["valid_sectors"] <= before["valid_sectors"] - len(blob) // S + 256, (before, after)
    assert after["fuse"]["discards"] > before["fuse"]["discards"]
    assert after["fuse"]["errors"] == 0
    ox.umount(up)


@pytest.mark.parametrize("mode", MODES)
def test_e2e_blkdiscard_on_a_loop_device_reads_back_zeros(ox, mnt, tmp_path, mode):
    require_tools("blkdiscard", "losetup")
    ox.mount(mnt, "--disk", tmp_path / "ox.disk", "--geometry", SMALL_GEOMETRY, "--mode", mode)
    vol = mnt / "volume"
    data = np.random.default_rng(5).integers(0, 256, 8 << 20, dtype=np.uint8)
    with open(vol, "r+b") as f:
        f.write(data.tobytes())
        os.fsync(f.fileno())
    klog = KernelLog()
    loop = run("losetup", "-f", "--show", "--direct-io=on", vol).strip()
    try:
        before = discarded(read_stats(mnt))
        run("blkdiscard", "-o", 1 << 20, "-l", 2 << 20, loop)             # discard
        mid = discarded(read_stats(mnt))
        run("blkdiscard", "-z", "-o", (4 << 20) + 512, "-l", 3 * S, loop)  # unaligned zeroout
        after = discarded(read_stats(mnt))
        fd = os.open(loop, os.O_RDONLY | os.O_DIRECT)
        try:
            import mmap
            buf = mmap.mmap(-1, len(data))
            assert os.preadv(fd, [buf], 0) == len(data)
            got = np.frombuffer(buf, np.uint8).copy()
            buf.close()
        finally:
            os.close(fd)
    finally:
        run("losetup", "-d", loop)
    want = data.copy()
    want[1 << 20:3 << 20] = 0
    want[(4 << 20) + 512:(4 << 20) + 512 + 3 * S] = 0
    assert np.array_equal(got, want)
    with open(vol, "rb") as f:                      # and through the FUSE file itself
        assert np.array_equal(np.frombuffer(f.read(len(data)), np.uint8), want)
    assert mid - before == (2 << 20) // S
    assert after - mid == 2                         # the 2 whole sectors inside; edges written
    assert klog.new_errors(loop) == []
    assert read_stats(mnt)["fuse"]["errors"] == 0
    ox.umount(mnt)


@pytest.mark.parametrize("mode", MODES)
def test_e2e_ext4_lazy_init_zeroes_through_the_loop_device_cleanly(ox, mnt, tmp_path, mode):
    """mkfs.ext4 discards the fresh volume; then a format that leaves the inode tables to
    ext4 (nodiscard, lazy_itable_init): at mount (init_itable=0) ext4 zeroes them with
    WRITE_ZEROES through the loop device, which once failed with kernel errors. Now they
    are served (no zero pages written), the kernel logs nothing, fsck is clean."""
    require_tools("mkfs.ext4", "e2fsck", "losetup")
    ox.mount(mnt, "--disk", tmp_path / "ox.disk", "--geometry", SMALL_GEOMETRY, "--mode", mode)
    vol = mnt / "volume"
    run("mkfs.ext4", "-F", "-q", vol, timeout=120)
    stats = read_stats(mnt)
    assert discarded(stats) >= stats["size"] // S - 1              # mkfs discarded it all
    run("mkfs.ext4", "-F", "-q", "-N", "8192", "-E", "nodiscard,lazy_itable_init=1", vol,
        timeout=120)
    formatted = read_stats(mnt)["fuse"]
    klog = KernelLog()
    ext = tmp_path / "ext"
    ext.mkdir()
    loop = run("losetup", "-f", "--show", vol).strip()
    try:
        run("mount", "-o", "init_itable=0", loop, ext)
        try:
            (ext / "f").write_bytes(os.urandom(1 << 20))
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:      # ext4lazyinit works right after mount
                zeroed = read_stats(mnt)["fuse"]
                if zeroed["discard_bytes"] + zeroed["zero_bytes"] > \
                        formatted["discard_bytes"] + formatted["zero_bytes"]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail(f"ext4 zeroed no inode table through the volume: {zeroed}")
            os.sync()
        finally:
            run("umount", ext)
    finally:
        subprocess.run(["losetup", "-d", loop], capture_output=True, check=False)
    assert klog.new_errors(loop) == []
    fsck = subprocess.run(["e2fsck", "-fn", vol], capture_output=True, text=True, timeout=120,
                          check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert read_stats(mnt)["fuse"]["errors"] == 0
    ox.umount(mnt)
