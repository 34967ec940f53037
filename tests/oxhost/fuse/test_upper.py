"""What `ox up` decides from the volume's contents before it formats anything (real blkid
and mkfs.ext4 on plain files)."""
import subprocess

import pytest
import trio

from oxhost.fuse import MountError
from oxhost.fuse.upper import probe_type

from tests.conftest import require_tools


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
