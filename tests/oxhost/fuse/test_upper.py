"""What `ox up` decides from the volume's contents before it formats anything (real blkid
and mkfs.ext4 on plain files), and how it mounts the ext4 (online discard)."""
import json
import os
import subprocess
import time

import pytest
import trio

from oxhost.fuse import MountError, Upper
from oxhost.fuse.upper import probe_type
from tests.conftest import require_tools

from .conftest import serve_while


def _fat_boot_sector() -> bytes:
    bs = bytearray(512)
    bs[0:3], bs[3:11] = b"\xeb\x3c\x90", b"MSDOS5.0"
    bs[11:13], bs[13], bs[14:16], bs[16] = (512).to_bytes(2, "little"), 1, (1).to_bytes(2, "little"), 2
    bs[17:19], bs[19:21], bs[21] = (224).to_bytes(2, "little"), (16384).to_bytes(2, "little"), 0xF8
    bs[22:24], bs[54:62], bs[510:512] = (12).to_bytes(2, "little"), b"FAT12   ", b"\x55\xaa"
    return bytes(bs)


def test_probe_type_reads_ext4_and_nothing(tmp_path):
    require_tools("blkid", "mkfs.ext4")
    img = tmp_path / "v.img"
    img.write_bytes(b"\0" * (8 << 20))
    assert trio.run(probe_type, str(img)) is None
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
    assert trio.run(probe_type, str(img)) == "ext4"


def test_probe_type_refuses_when_blkid_cannot_tell_rather_than_formatting(tmp_path):
    """A blkid failure other than 'nothing found' (here: two signatures) once let ox up
    run mkfs over the volume."""
    require_tools("blkid", "mkfs.ext4")
    img = tmp_path / "v.img"
    img.write_bytes(b"\0" * (8 << 20))
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
    with open(img, "r+b") as f:
        f.write(_fat_boot_sector())
    with pytest.raises(MountError, match="refusing to format"):
        trio.run(probe_type, str(img))


@pytest.mark.usefixtures("needs_fuse", "needs_root")
def test_upper_online_discard_trims_deleted_files_at_once(mountpoint, tmp_path):
    """Upper(discard=True) (what `ox up --discard` sets): ext4 mounted with -o discard
    trims a deleted file's blocks at its journal commit, down to pblk, without fstrim."""
    require_tools("mkfs.ext4", "blkid")
    from oxemu import Geometry
    from oxhost.fuse.mount import Server
    from oxhost.stack import open_stack

    stack = open_stack(volatile=True, geometry=Geometry.small(nblocks=16, npages=32))
    up = tmp_path / "up"
    up.mkdir()
    upper = Upper(dir=str(up), kind="loop", discard=True)
    server = Server(stack.blockdev, mountpoint, owns=stack, upper=upper, handle_signals=False)
    seen = {}

    def discarded() -> int:             # through the stats file: the serving thread answers
        with open(os.path.join(mountpoint, "stats")) as f:
            return json.load(f)["counters"]["discarded_sectors"]

    def work():
        with open("/proc/self/mountinfo") as f:
            seen["opts"] = [ln for ln in f if f" {up} " in ln]
        (up / "blob").write_bytes(b"\x77" * (8 << 20))
        os.sync()
        seen["before"] = discarded()
        (up / "blob").unlink()
        os.sync()
        # ext4 issues a commit's discards in the background: wait for them (up to 10 s)
        deadline = time.monotonic() + 10
        while True:
            seen["after"] = discarded()
            if seen["after"] - seen["before"] >= (8 << 20) // 4096 or time.monotonic() > deadline:
                break
            time.sleep(0.02)

    serve_while(server, work)
    assert len(seen["opts"]) == 1 and "discard" in seen["opts"][0].split(" - ")[1]
    assert seen["after"] - seen["before"] >= (8 << 20) // 4096
    assert not upper.mounted
