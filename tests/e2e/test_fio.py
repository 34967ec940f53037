"""fio with verification through the FUSE volume (O_DIRECT): random 4 KiB writes and a
sequential pass, each read back and checked by fio itself."""
from .conftest import fio, read_stats

REGION = 64 << 20


def test_e2e_fio_randwrite_verify_direct(ox, mnt, tmp_path):
    ox.mount(mnt, "--disk", tmp_path / "ox.disk")
    vol = str(mnt / "volume")
    doc = fio("--name=randwrite", f"--filename={vol}", "--rw=randwrite", "--bs=4k",
              f"--size={REGION}", "--direct=1", "--ioengine=psync", "--verify=crc32c",
              "--do_verify=1", "--verify_fatal=1", "--randseed=1234")
    job = doc["jobs"][0]
    assert job["write"]["io_bytes"] == REGION
    assert job["read"]["io_bytes"] == REGION          # the verify pass read it all back
    s = read_stats(mnt)
    assert s["fuse"]["errors"] == 0 and s["user_sectors"] >= REGION // 4096
    ox.umount(mnt)


def test_e2e_fio_sequential_verify_direct_and_after_remount(ox, mnt, tmp_path):
    disk = tmp_path / "ox.disk"
    ox.mount(mnt, "--disk", disk)
    vol = str(mnt / "volume")
    common = [f"--filename={vol}", "--bs=1m", f"--size={REGION}", f"--offset={REGION * 3}",
              "--direct=1", "--ioengine=psync", "--verify=crc32c", "--verify_fatal=1"]
    fio("--name=seqwrite", "--rw=write", "--do_verify=1", *common)
    ox.umount(mnt)
    ox.mount(mnt, "--disk", disk)
    # Only verify: read the region back from media in a new process and check every block.
    doc = fio("--name=seqwrite", "--rw=write", "--verify_only", *common)
    assert doc["jobs"][0]["read"]["io_bytes"] == REGION
    assert read_stats(mnt)["fuse"]["errors"] == 0
    ox.umount(mnt)
