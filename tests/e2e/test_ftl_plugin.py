"""A plug-in FTL (the template `ox ftl new` writes) served for real on both sides of the bus:
fio with verification over twice its capacity (GC must run), ext4 through `ox up`, and a
remount that finds every byte."""
import subprocess

import pytest

from .conftest import SMALL_GEOMETRY, fio, read_stats, sha256


@pytest.fixture
def my_ftl(ox, tmp_path):
    """The user's own FTL file, made the way the docs say."""
    ox.run("ftl", "new", tmp_path / "my_ftl.py")
    return f"{tmp_path / 'my_ftl.py'}:PageFtl"


@pytest.mark.parametrize("side", ["host", "device"])
def test_plugin_ftl_mount_fio_verify_twice_its_capacity_and_remount(ox, mnt, tmp_path, my_ftl, side):
    disk = tmp_path / "ox.disk"
    flags = ["--ftl", my_ftl, "--side", side, "--disk", disk]
    ox.mount(mnt, *flags, "--geometry", SMALL_GEOMETRY)
    vol = str(mnt / "volume")
    size = (mnt / "volume").stat().st_size
    common = [f"--filename={vol}", "--bs=4k", f"--size={size}", "--direct=1", "--ioengine=psync",
              "--verify=crc32c", "--verify_fatal=1", "--randseed=7"]
    doc = fio("--name=churn", "--rw=randwrite", f"--io_size={2 * size}", "--do_verify=1",
              "--norandommap", "--randrepeat=1", *common)
    assert doc["jobs"][0]["write"]["io_bytes"] == 2 * size
    s = read_stats(mnt)
    assert s["fuse"]["errors"] == 0
    if side == "host":                 # the host sees the FTL; in the device only the namespace
        assert s["ftl_stats"]["gc_runs"] > 0 and s["write_amplification"] > 1
    fio("--name=fill", "--rw=write", "--bs=1m", *common[0:1], f"--size={size}", "--direct=1",
        "--ioengine=psync", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1")
    before = sha256(vol)
    ox.umount(mnt)
    ox.mount(mnt, *flags)
    assert sha256(str(mnt / "volume")) == before          # every byte, read back from media
    ox.umount(mnt)


@pytest.mark.usefixtures("needs_root")
@pytest.mark.parametrize("side", ["host", "device"])
def test_plugin_ftl_ext4_through_ox_up_keeps_files(ox, tmp_path, my_ftl, side):
    up = tmp_path / "up"
    flags = ["--ftl", my_ftl, "--side", side, "--disk", tmp_path / "ox.disk"]
    out = ox.run("up", up, *flags, "--geometry", SMALL_GEOMETRY).stdout
    assert "formatted and mounted" in out and "PageFtl@" + side in out
    subprocess.run(f"head -c 5000000 /dev/urandom > {up}/big && echo hello > {up}/small && sync",
                   shell=True, check=True)
    want = sha256(up / "big")
    ox.umount(up)
    out = ox.run("up", up, *flags).stdout
    assert "formatted" not in out
    assert (up / "small").read_text() == "hello\n" and sha256(up / "big") == want
    ox.umount(up)
    cp = ox.run("up", up, "--disk", tmp_path / "ox.disk", check=False)    # without --ftl: refused
    assert cp.returncode == 1 and cp.stderr.count("\n") == 1 and "FTL 'my_ftl'" in cp.stderr
