"""The Operations handlers called directly, without a mount (s3ql's t3_fs_api style); they
are synchronous, as they run inside the session's dispatch on the Trio thread."""
import errno
import json
import os
import stat

import numpy as np
import pytest

from oxhost.blockdev import BlockDeviceError, MediaError, NoSpace, ReadOnly
from oxhost.fuse import lowlevel as ll
from oxhost.fuse.fs import ROOT_INO, STATS_INO, VOLUME_INO, VolumeFs


def errno_of(fn, *args) -> int:
    with pytest.raises(ll.FUSEError) as ei:
        fn(*args)
    return ei.value.errno


def vol_open(fs, flags=os.O_RDWR) -> int:
    return fs.open(VOLUME_INO, flags).fh


@pytest.fixture
def fs(memdev):
    return VolumeFs(memdev, {"mode": "test", "geometry": {"nchannels": 1}}, uid=1234, gid=567)


def test_fs_lookup_finds_volume_and_stats(fs):
    assert fs.lookup(ROOT_INO, b"volume").ino == VOLUME_INO
    assert fs.lookup(ROOT_INO, b"stats").ino == STATS_INO
    assert errno_of(fs.lookup, ROOT_INO, b"other") == errno.ENOENT
    assert errno_of(fs.getattr, 99) == errno.ENOENT


def test_fs_volume_is_owner_only_file_of_device_size(fs, memdev):
    a = fs.getattr(VOLUME_INO).attr
    assert a.st_size == memdev.size
    assert stat.S_ISREG(a.st_mode) and stat.S_IMODE(a.st_mode) == 0o600
    assert (a.st_uid, a.st_gid) == (1234, 567)
    assert stat.S_IMODE(fs.getattr(STATS_INO).attr.st_mode) == 0o400
    assert stat.S_IMODE(fs.getattr(ROOT_INO).attr.st_mode) == 0o700


def test_fs_allow_other_opens_modes(memdev):
    fs = VolumeFs(memdev, allow_other=True)
    assert stat.S_IMODE(fs.getattr(VOLUME_INO).attr.st_mode) == 0o666
    assert stat.S_IMODE(fs.getattr(ROOT_INO).attr.st_mode) == 0o755


def test_fs_readdir_lists_volume_and_stats_from_an_offset(fs):
    fh = fs.opendir(ROOT_INO).fh
    assert [(n, e.ino, o) for n, e, o in fs.readdir(ROOT_INO, fh, 0)] == \
        [(b"volume", VOLUME_INO, 1), (b"stats", STATS_INO, 2)]
    assert [n for n, _, _ in fs.readdir(ROOT_INO, fh, 1)] == [b"stats"]
    assert errno_of(fs.opendir, VOLUME_INO) == errno.ENOTDIR


def test_fs_write_read_roundtrip_unaligned(fs, memdev):
    fh = vol_open(fs)
    payload = bytes(range(256)) * 40                       # 10240 bytes
    assert fs.write(VOLUME_INO, fh, 5000, np.frombuffer(payload, np.uint8)) == len(payload)
    assert bytes(fs.read(VOLUME_INO, fh, 5000, len(payload))) == payload
    assert memdev.data[5000:5000 + len(payload)].tobytes() == payload
    assert not memdev.data[:5000].any()
    fs.release(VOLUME_INO, fh)


def test_fs_read_past_end_is_short(fs, memdev):
    fh = vol_open(fs, os.O_RDONLY)
    assert len(fs.read(VOLUME_INO, fh, memdev.size - 100, 4096)) == 100
    assert len(fs.read(VOLUME_INO, fh, memdev.size, 4096)) == 0


def test_fs_write_beyond_size_is_refused(fs, memdev):
    fh = vol_open(fs, os.O_WRONLY)
    assert fs.write(VOLUME_INO, fh, memdev.size - 10, b"x" * 100) == 10      # short write
    assert errno_of(fs.write, VOLUME_INO, fh, memdev.size, b"x") == errno.ENOSPC
    assert errno_of(fs.write, VOLUME_INO, fh, memdev.size + 4096, b"x") == errno.EFBIG


def test_fs_volume_cannot_be_truncated(fs, memdev):
    attr = ll.Stat()
    attr.st_size = memdev.size
    assert fs.setattr(VOLUME_INO, attr, ll.SET_ATTR_SIZE).attr.st_size == memdev.size
    attr.st_size = 0
    assert errno_of(fs.setattr, VOLUME_INO, attr, ll.SET_ATTR_SIZE) == errno.EPERM
    attr.st_size = memdev.size + 1
    assert errno_of(fs.setattr, VOLUME_INO, attr, ll.SET_ATTR_SIZE) == errno.EFBIG
    assert errno_of(fs.open, VOLUME_INO, os.O_WRONLY | os.O_TRUNC) == errno.EPERM


def test_fs_chmod_and_times_are_kept(fs):
    attr = ll.Stat()
    attr.st_mode = stat.S_IFREG | 0o640
    attr.st_mtim.tv_sec = 123
    a = fs.setattr(VOLUME_INO, attr, ll.SET_ATTR_MODE | ll.SET_ATTR_MTIME).attr
    assert stat.S_IMODE(a.st_mode) == 0o640 and stat.S_ISREG(a.st_mode)
    assert ll.stat_times_ns(fs.getattr(VOLUME_INO).attr)[1] == 123_000_000_000


def test_fs_fsync_flushes_the_device(fs, memdev):
    fh = vol_open(fs)
    fs.flush(VOLUME_INO, fh)                      # close(2) alone does not flush
    assert memdev.flushes == 0
    fs.fsync(VOLUME_INO, fh, False)
    fs.fsync(VOLUME_INO, fh, True)
    assert memdev.flushes == 2


def test_fs_stats_is_fresh_json_on_every_open(fs):
    fi = fs.open(STATS_INO, os.O_RDONLY)
    assert fi.direct_io
    doc = json.loads(bytes(fs.read(STATS_INO, fi.fh, 0, 1 << 20)))
    assert doc["mode"] == "test" and doc["geometry"] == {"nchannels": 1}
    assert doc["write_amplification"] == 1.5 and doc["fuse"]["writes"] == 0
    fs.write(VOLUME_INO, vol_open(fs), 0, b"a" * 4096)
    assert json.loads(bytes(fs.read(STATS_INO, fi.fh, 0, 1 << 20)))["fuse"]["writes"] == 0   # snapshot
    fh2 = fs.open(STATS_INO, os.O_RDONLY).fh
    doc2 = json.loads(bytes(fs.read(STATS_INO, fh2, 0, 1 << 20)))
    assert doc2["fuse"]["writes"] == 1 and doc2["fuse"]["write_bytes"] == 4096
    assert doc2["user_writes"] == 1


def test_fs_stats_is_read_only(fs):
    assert errno_of(fs.open, STATS_INO, os.O_WRONLY) == errno.EACCES
    assert errno_of(fs.open, STATS_INO, os.O_RDWR) == errno.EACCES
    fh = fs.open(STATS_INO, os.O_RDONLY).fh
    assert errno_of(fs.write, STATS_INO, fh, 0, b"x") == errno.EBADF
    assert errno_of(fs.fallocate, STATS_INO, fh, 0, 0, 4096) == errno.EBADF


def test_fs_namespace_is_fixed(fs):
    assert errno_of(fs.create, ROOT_INO, b"new", 0o644, os.O_RDWR) == errno.EPERM
    assert errno_of(fs.unlink, ROOT_INO, b"volume") == errno.EPERM
    assert errno_of(fs.mkdir, ROOT_INO, b"d", 0o755) == errno.EPERM
    assert errno_of(fs.rename, ROOT_INO, b"volume", ROOT_INO, b"v2", 0) == errno.EPERM


@pytest.mark.parametrize("exc, code", [
    (RuntimeError("device bug"), errno.EIO),
    (BlockDeviceError("misaligned"), errno.EINVAL),
    (OSError(errno.ENOMEM, "no memory"), errno.ENOMEM),
    (NoSpace("full"), errno.ENOSPC),
    (ReadOnly("spares used up"), errno.EROFS),
    (MediaError("unreadable"), errno.EIO),
])
def test_fs_device_errors_become_fuse_errors(fs, memdev, exc, code):
    fh = vol_open(fs)
    memdev.fail_with = exc
    assert errno_of(fs.read, VOLUME_INO, fh, 0, 4096) == code
    assert errno_of(fs.write, VOLUME_INO, fh, 0, b"x" * 4096) == code
    assert errno_of(fs.fsync, VOLUME_INO, fh, False) == code
    assert fs.errors == 3


def test_fs_stats_survive_a_failing_stats_call(fs, memdev):
    memdev.stats = lambda: 1 / 0
    doc = json.loads(fs.stats_bytes())
    assert "ZeroDivisionError" in doc["stats_error"] and doc["mode"] == "test"


def test_fs_statfs_reports_capacity(fs, memdev):
    s = fs.statfs(ROOT_INO)
    assert s.f_blocks * s.f_frsize == memdev.size


def test_fs_read_returns_numpy_without_copy(fs):
    data = fs.read(VOLUME_INO, vol_open(fs, os.O_RDONLY), 0, 8192)
    assert isinstance(data, np.ndarray) and data.flags.c_contiguous
