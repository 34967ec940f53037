"""The Operations handlers called directly, without a mount (s3ql's t3_fs_api style)."""
import errno
import json
import os
import stat
import types

import numpy as np
import pyfuse3
import pytest
import trio

from oxhost.blockdev import BlockDeviceError, MediaError, NoSpace, ReadOnly
from oxhost.fuse.fs import ROOT_INO, STATS_INO, VOLUME_INO, VolumeFs


def run(fn, *args):
    return trio.run(fn, *args)


def fields(**kw):
    names = ("update_atime", "update_mtime", "update_ctime", "update_mode", "update_uid",
             "update_gid", "update_size")
    return types.SimpleNamespace(**{n: kw.get(n, False) for n in names})


def errno_of(fn, *args) -> int:
    with pytest.raises(pyfuse3.FUSEError) as ei:
        run(fn, *args)
    return ei.value.errno


@pytest.fixture
def fs(memdev):
    return VolumeFs(memdev, {"mode": "test", "geometry": {"nchannels": 1}}, uid=1234, gid=567)


def test_fs_lookup_finds_volume_and_stats(fs):
    assert run(fs.lookup, ROOT_INO, b"volume").st_ino == VOLUME_INO
    assert run(fs.lookup, ROOT_INO, b"stats").st_ino == STATS_INO
    assert errno_of(fs.lookup, ROOT_INO, b"other") == errno.ENOENT
    assert errno_of(fs.getattr, 99) == errno.ENOENT


def test_fs_volume_is_owner_only_file_of_device_size(fs, memdev):
    a = run(fs.getattr, VOLUME_INO)
    assert a.st_size == memdev.size
    assert stat.S_ISREG(a.st_mode) and stat.S_IMODE(a.st_mode) == 0o600
    assert (a.st_uid, a.st_gid) == (1234, 567)
    assert stat.S_IMODE(run(fs.getattr, STATS_INO).st_mode) == 0o400
    assert stat.S_IMODE(run(fs.getattr, ROOT_INO).st_mode) == 0o700


def test_fs_allow_other_opens_modes(memdev):
    fs = VolumeFs(memdev, allow_other=True)
    assert stat.S_IMODE(trio.run(fs.getattr, VOLUME_INO).st_mode) == 0o666
    assert stat.S_IMODE(trio.run(fs.getattr, ROOT_INO).st_mode) == 0o755


def test_fs_write_read_roundtrip_unaligned(fs, memdev):
    fh = run(fs.open, VOLUME_INO, os.O_RDWR, None).fh
    payload = bytes(range(256)) * 40                       # 10240 bytes
    assert run(fs.write, fh, 5000, payload) == len(payload)
    assert bytes(run(fs.read, fh, 5000, len(payload))) == payload
    assert memdev.data[5000:5000 + len(payload)].tobytes() == payload
    assert not memdev.data[:5000].any()
    run(fs.release, fh)


def test_fs_read_past_end_is_short(fs, memdev):
    fh = run(fs.open, VOLUME_INO, os.O_RDONLY, None).fh
    assert len(run(fs.read, fh, memdev.size - 100, 4096)) == 100
    assert len(run(fs.read, fh, memdev.size, 4096)) == 0


def test_fs_write_beyond_size_is_refused(fs, memdev):
    fh = run(fs.open, VOLUME_INO, os.O_WRONLY, None).fh
    assert run(fs.write, fh, memdev.size - 10, b"x" * 100) == 10      # short write
    assert errno_of(fs.write, fh, memdev.size, b"x") == errno.ENOSPC
    assert errno_of(fs.write, fh, memdev.size + 4096, b"x") == errno.EFBIG


def test_fs_volume_cannot_be_truncated(fs, memdev):
    attr = pyfuse3.EntryAttributes()
    attr.st_size = memdev.size
    same = run(fs.setattr, VOLUME_INO, attr, fields(update_size=True), None, None)
    assert same.st_size == memdev.size
    attr.st_size = 0
    assert errno_of(fs.setattr, VOLUME_INO, attr, fields(update_size=True), None, None) == errno.EPERM
    attr.st_size = memdev.size + 1
    assert errno_of(fs.setattr, VOLUME_INO, attr, fields(update_size=True), None, None) == errno.EFBIG
    assert errno_of(fs.open, VOLUME_INO, os.O_WRONLY | os.O_TRUNC, None) == errno.EPERM


def test_fs_chmod_and_times_are_kept(fs):
    attr = pyfuse3.EntryAttributes()
    attr.st_mode = stat.S_IFREG | 0o640
    attr.st_mtime_ns = 123_000_000_000
    a = run(fs.setattr, VOLUME_INO, attr, fields(update_mode=True, update_mtime=True), None, None)
    assert stat.S_IMODE(a.st_mode) == 0o640 and stat.S_ISREG(a.st_mode)
    assert run(fs.getattr, VOLUME_INO).st_mtime_ns == 123_000_000_000


def test_fs_fsync_flushes_the_device(fs, memdev):
    fh = run(fs.open, VOLUME_INO, os.O_RDWR, None).fh
    run(fs.flush, fh)                      # close(2) alone does not flush
    assert memdev.flushes == 0
    run(fs.fsync, fh, False)
    run(fs.fsync, fh, True)
    assert memdev.flushes == 2


def test_fs_stats_is_fresh_json_on_every_open(fs):
    fi = run(fs.open, STATS_INO, os.O_RDONLY, None)
    assert fi.direct_io
    doc = json.loads(bytes(run(fs.read, fi.fh, 0, 1 << 20)))
    assert doc["mode"] == "test" and doc["geometry"] == {"nchannels": 1}
    assert doc["write_amplification"] == 1.5 and doc["fuse"]["writes"] == 0
    vfh = run(fs.open, VOLUME_INO, os.O_RDWR, None).fh
    run(fs.write, vfh, 0, b"a" * 4096)
    assert json.loads(bytes(run(fs.read, fi.fh, 0, 1 << 20)))["fuse"]["writes"] == 0   # snapshot
    fh2 = run(fs.open, STATS_INO, os.O_RDONLY, None).fh
    doc2 = json.loads(bytes(run(fs.read, fh2, 0, 1 << 20)))
    assert doc2["fuse"]["writes"] == 1 and doc2["fuse"]["write_bytes"] == 4096
    assert doc2["user_writes"] == 1


def test_fs_stats_is_read_only(fs):
    assert errno_of(fs.open, STATS_INO, os.O_WRONLY, None) == errno.EACCES
    assert errno_of(fs.open, STATS_INO, os.O_RDWR, None) == errno.EACCES
    fh = run(fs.open, STATS_INO, os.O_RDONLY, None).fh
    assert errno_of(fs.write, fh, 0, b"x") == errno.EBADF


def test_fs_namespace_is_fixed(fs):
    assert errno_of(fs.create, ROOT_INO, b"new", 0o644, os.O_RDWR, None) == errno.EPERM
    assert errno_of(fs.unlink, ROOT_INO, b"volume", None) == errno.EPERM
    assert errno_of(fs.mkdir, ROOT_INO, b"d", 0o755, None) == errno.EPERM
    assert errno_of(fs.rename, ROOT_INO, b"volume", ROOT_INO, b"v2", 0, None) == errno.EPERM


@pytest.mark.parametrize("exc, code", [
    (RuntimeError("device bug"), errno.EIO),
    (BlockDeviceError("misaligned"), errno.EINVAL),
    (OSError(errno.ENOMEM, "no memory"), errno.ENOMEM),
    (NoSpace("full"), errno.ENOSPC),
    (ReadOnly("spares used up"), errno.EROFS),
    (MediaError("unreadable"), errno.EIO),
])
def test_fs_device_errors_become_fuse_errors(fs, memdev, exc, code):
    fh = run(fs.open, VOLUME_INO, os.O_RDWR, None).fh
    memdev.fail_with = exc
    assert errno_of(fs.read, fh, 0, 4096) == code
    assert errno_of(fs.write, fh, 0, b"x" * 4096) == code
    assert errno_of(fs.fsync, fh, False) == code
    assert fs.errors == 3


def test_fs_stats_survive_a_failing_stats_call(fs, memdev):
    memdev.stats = lambda: 1 / 0
    doc = json.loads(fs.stats_bytes())
    assert "ZeroDivisionError" in doc["stats_error"] and doc["mode"] == "test"


def test_fs_statfs_reports_capacity(fs, memdev):
    s = run(fs.statfs, None)
    assert s.f_blocks * s.f_frsize == memdev.size


def test_fs_read_returns_numpy_without_copy(fs):
    fh = run(fs.open, VOLUME_INO, os.O_RDONLY, None).fh
    data = run(fs.read, fh, 0, 8192)
    assert isinstance(data, np.ndarray) and data.flags.c_contiguous
