"""Open-Channel SSD 2.0 stacks mounted for real: fio with verification over twice the
capacity (GC must run) and a remount that finds every byte, for pblk on 2.0 and for a
plug-in FTL on ChunkMedia; ext4 through `ox up --spec 2.0`; 1.2 and 2.0 media refusing
each other's stacks with one line, the disk byte-identical."""
import os
import signal
import subprocess

import pytest

from .conftest import SMALL_GEOMETRY, fio, read_stats, sha256, wait_exit


def _churn_and_remount(ox, mnt, flags):
    ox.mount(mnt, *flags, "--geometry", SMALL_GEOMETRY)
    vol = str(mnt / "volume")
    size = (mnt / "volume").stat().st_size
    common = [f"--filename={vol}", "--bs=4k", f"--size={size}", "--direct=1", "--ioengine=psync",
              "--verify=crc32c", "--verify_fatal=1", "--randseed=11"]
    doc = fio("--name=churn", "--rw=randwrite", f"--io_size={2 * size}", "--do_verify=1",
              "--norandommap", "--randrepeat=1", *common)
    assert doc["jobs"][0]["write"]["io_bytes"] == 2 * size
    stats = read_stats(mnt)
    assert stats["fuse"]["errors"] == 0
    before = sha256(vol)
    ox.umount(mnt)
    ox.mount(mnt, *flags)
    assert sha256(str(mnt / "volume")) == before             # every byte, read back from media
    ox.umount(mnt)
    return stats


def test_plugin_ftl_on_2_0_fio_verify_twice_its_capacity_and_remount(ox, mnt, tmp_path):
    flags = ["--ftl", "oxftl.template:PageFtl", "--spec", "2.0", "--disk", tmp_path / "ox.disk"]
    s = _churn_and_remount(ox, mnt, flags)
    assert s["ftl_stats"]["gc_runs"] > 0 and s["write_amplification"] > 1
    info = ox.run("dev", "info", "--disk", tmp_path / "ox.disk").stdout
    assert "Open-Channel SSD 2.0" in info


def test_pblk_on_2_0_fio_verify_twice_its_capacity_and_remount(ox, mnt, tmp_path):
    s = _churn_and_remount(ox, mnt, ["--spec", "2.0", "--disk", tmp_path / "ox.disk"])
    assert s["mode"] == "pblk+2.0" and s["counters"]["gc_runs"] > 0 and s["write_amplification"] > 1
    assert s["counters"]["ring_reads"] > 0                     # fio read back what the device still cached


@pytest.mark.usefixtures("needs_root")
def test_ext4_on_pblk_2_0_through_ox_up_keeps_files_across_a_remount_and_a_kill(ox, tmp_path):
    up = tmp_path / "up"
    disk = tmp_path / "ox.disk"
    out = ox.run("up", up, "--spec", "2.0", "--disk", disk, "--geometry", SMALL_GEOMETRY).stdout
    assert "formatted and mounted" in out and "pblk+2.0" in out
    subprocess.run(f"head -c 6000000 /dev/urandom > {up}/big && echo hello > {up}/small && sync",
                   shell=True, check=True)
    want = sha256(up / "big")
    ox.umount(up)
    out = ox.run("up", up, "--disk", disk).stdout               # what the disk holds: pblk on 2.0
    assert "formatted" not in out and "pblk+2.0" in out
    assert (up / "small").read_text() == "hello\n" and sha256(up / "big") == want
    pid = int(out.split("(pid ")[1].split(")")[0])
    synced = os.urandom(3 << 20)
    with open(up / "synced.bin", "wb") as f:
        f.write(synced)
        f.flush()
        os.fsync(f.fileno())
    dfd = os.open(up, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    os.kill(pid, signal.SIGKILL)                                # the write buffer is gone with it
    assert wait_exit(pid)
    ox.umount(up)
    ox.run("up", up, "--disk", disk)                            # recovery pads the open line, ext4 replays
    assert (up / "synced.bin").read_bytes() == synced and sha256(up / "big") == want
    ox.umount(up)
    raw = tmp_path / "raw"
    raw.mkdir()
    ox.mount(raw, "--disk", disk)
    fsck = subprocess.run(["e2fsck", "-fn", str(raw / "volume")], capture_output=True, text=True, timeout=300)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    ox.umount(raw)


def test_1_2_and_2_0_media_refuse_each_other_s_stacks_in_one_line_byte_identical(ox, mnt, tmp_path):
    for spec, other in (("1.2", "2.0"), ("2.0", "1.2")):
        disk = tmp_path / f"{spec}.disk"
        ox.mount(mnt, "--spec", spec, "--disk", disk, "--geometry", SMALL_GEOMETRY)
        ox.umount(mnt)
        before = sha256(disk)
        for args in (["mount", mnt, "--spec", other], ["up", tmp_path / "up", "--spec", other]):
            cp = ox.run(*args, "--disk", disk, check=False)
            assert cp.returncode == 1 and cp.stderr.count("\n") == 1, cp.stderr
            assert f"written through interface {spec}, not {other}" in cp.stderr
        assert sha256(disk) == before
