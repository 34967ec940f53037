"""The zoned host FTL on a ZNS device served for real: fio with verification over twice its
capacity (zones reset by GC), a remount that finds every byte, ext4 through `ox up`, and a
zoned disk refused by the open-channel stacks (and the other way) byte-identical."""
import subprocess

import pytest

from .conftest import SMALL_GEOMETRY, fio, read_stats, sha256


def test_zoned_mount_fio_verify_twice_its_capacity_and_remount(ox, mnt, tmp_path):
    disk = tmp_path / "ox.disk"
    ox.mount(mnt, "--mode", "zoned", "--disk", disk, "--geometry", SMALL_GEOMETRY)
    vol = str(mnt / "volume")
    size = (mnt / "volume").stat().st_size
    common = [f"--filename={vol}", "--bs=4k", f"--size={size}", "--direct=1", "--ioengine=psync",
              "--verify=crc32c", "--verify_fatal=1", "--randseed=11"]
    doc = fio("--name=churn", "--rw=randwrite", f"--io_size={2 * size}", "--do_verify=1", "--norandommap",
              "--randrepeat=1", *common)
    assert doc["jobs"][0]["write"]["io_bytes"] == 2 * size
    s = read_stats(mnt)
    assert s["fuse"]["errors"] == 0 and s["ftl"] == "zoned"
    assert s["ftl_stats"]["gc_runs"] > 0 and s["write_amplification"] > 1 and s["media"]["erases"] > 0
    fio("--name=fill", "--rw=write", "--bs=1m", common[0], f"--size={size}", "--direct=1", "--ioengine=psync",
        "--verify=crc32c", "--do_verify=1", "--verify_fatal=1")
    before = sha256(vol)
    ox.umount(mnt)
    ox.mount(mnt, "--disk", disk)                       # no flags: the disk says it holds the zoned FTL
    assert sha256(str(mnt / "volume")) == before
    ox.umount(mnt)


@pytest.mark.usefixtures("needs_root")
def test_zoned_ext4_through_ox_up_keeps_files(ox, tmp_path):
    up = tmp_path / "up"
    disk = tmp_path / "ox.disk"
    out = ox.run("up", up, "--mode", "zoned", "--disk", disk, "--geometry", SMALL_GEOMETRY).stdout
    assert "formatted and mounted" in out and "zoned" in out
    subprocess.run(f"head -c 5000000 /dev/urandom > {up}/big && echo hello > {up}/small && sync",
                   shell=True, check=True)
    want = sha256(up / "big")
    ox.umount(up)
    out = ox.run("up", up, "--disk", disk).stdout
    assert "formatted" not in out
    assert (up / "small").read_text() == "hello\n" and sha256(up / "big") == want
    ox.umount(up)


def test_zoned_and_open_channel_disks_refuse_each_other_in_one_line_untouched(ox, mnt, tmp_path):
    zdisk, pdisk = tmp_path / "z.disk", tmp_path / "p.disk"
    ox.run("zone", "append", "2", "--count", "3", "--disk", zdisk, "--create", "--geometry", SMALL_GEOMETRY)
    ox.run("format", "--disk", pdisk, "--mode", "pblk", "--yes", "--geometry", SMALL_GEOMETRY)
    zsum, psum = sha256(zdisk), sha256(pdisk)
    for args in (("mount", mnt, "--mode", "pblk", "--disk", zdisk), ("mount", mnt, "--mode", "appnvm", "--disk", zdisk),
                 ("dev", "info", "--disk", zdisk), ("mount", mnt, "--mode", "zoned", "--disk", pdisk),
                 ("zone", "report", "--disk", pdisk), ("zone", "append", "0", "--disk", pdisk)):
        cp = ox.run(*args, check=False)
        assert cp.returncode == 1 and cp.stderr.count("\n") == 1 and cp.stderr.startswith("ox: error: "), cp.stderr
    assert (sha256(zdisk), sha256(pdisk)) == (zsum, psum)
