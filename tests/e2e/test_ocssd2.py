"""Open-Channel SSD 2.0 stacks mounted for real: fio with verification over twice the
capacity (GC must run) and a remount that finds every byte, for pblk on 2.0 and for a
plug-in FTL on ChunkMedia; ext4 through `ox up --spec 2.0`; 1.2 and 2.0 media refusing
each other's stacks with one line, the disk byte-identical."""
import subprocess

import pytest

from .conftest import ROOT_ONLY, SMALL_GEOMETRY, fio, read_stats, sha256


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
