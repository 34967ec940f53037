"""The ext4 rounds' own bookkeeping: a file is taken as written only when all of it was."""
import os

from oxhost.torture.ext4 import _differs, _write_all


def test_a_full_file_system_is_reported_not_taken_as_a_written_file():
    # ext4 answers a write that does not fit with a short count, then ENOSPC: the file must
    # not be recorded as fsync'd with the bytes that never reached it (that was a false
    # "corrupt file" violation once the torture volume filled up)
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        assert _write_all(fd, b"x" * 8192) is False
    finally:
        os.close(fd)


def test_write_all_writes_every_byte(tmp_path):
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        assert _write_all(fd, b"ab" * 70000) is True
    finally:
        os.close(fd)
    assert path.read_bytes() == b"ab" * 70000


def test_a_differing_file_is_described_by_its_blocks():
    want = bytes(8192) + b"\1" * 4096
    got = bytes(8192) + bytes(4096)
    assert _differs(want, got) == "1 of 3 4 KiB blocks differ (first at offset 8192, 1 of them zeros)"
    assert _differs(want, got[:4096]) == "4096 bytes, 12288 were fsync'd"
