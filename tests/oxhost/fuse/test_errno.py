"""Each class of block-device error reaches the FUSE edge as the errno a real disk gives,
through the real stacks (no doubles): EIO for media errors (never zeros), ENOSPC for a
full device, EROFS for media whose spares are used up, EINVAL for misuse."""
import errno
import os

import numpy as np
import pytest

from oxemu import Faults, Geometry
from oxemu.wire import Status
from oxhost.fuse import lowlevel as ll
from oxhost.fuse.fs import VOLUME_INO, VolumeFs
from oxhost.nvme.errors import NvmeMediaError, NvmeNoSpace, NvmeReadOnly, io_error
from oxhost.stack import open_stack

GEO = Geometry.small(nblocks=16, npages=32)


def errno_of(fn, *args) -> int:
    with pytest.raises(ll.FUSEError) as ei:
        fn(*args)
    return ei.value.errno


@pytest.fixture(params=["pblk", "appnvm"])
def stack(request):
    faults = Faults()
    st = open_stack(mode=request.param, volatile=True, geometry=GEO, faults=faults)
    st.faults = faults
    yield st
    st.close()


def test_fuse_unreadable_media_is_eio_never_zeros(stack):
    fs = VolumeFs(stack.blockdev)
    fh = fs.open(VOLUME_INO, os.O_RDWR).fh
    data = np.full(64 << 10, 0x5A, np.uint8)
    assert fs.write(VOLUME_INO, fh, 0, data) == data.nbytes
    stack.blockdev.flush()
    stack.faults.read_error_rate = 1.0                   # every media read fails from now on
    assert errno_of(fs.read, VOLUME_INO, fh, 0, 64 << 10) == errno.EIO
    assert errno_of(fs.read, VOLUME_INO, fh, 8192, 4096) == errno.EIO
    stack.faults.read_error_rate = 0.0
    assert bytes(fs.read(VOLUME_INO, fh, 0, 64 << 10)) == data.tobytes()


def test_fuse_misuse_of_the_volume_is_einval_or_the_file_errno(stack):
    fs = VolumeFs(stack.blockdev)
    fh = fs.open(VOLUME_INO, os.O_RDWR).fh
    assert errno_of(fs.write, VOLUME_INO, fh, stack.blockdev.size, b"x") == errno.ENOSPC
    assert errno_of(fs.write, VOLUME_INO, fh, stack.blockdev.size + 4096, b"x") == errno.EFBIG


def test_fuse_appnvm_read_only_media_refuses_writes_with_erofs_and_keeps_reads(tmp_path):
    """Erase failures eat the spares until the device goes read-only (SMART critical
    warning): writes are EROFS, every byte stays readable, and a restart still opens."""
    disk = str(tmp_path / "ro.disk")
    faults = Faults(seed=4, erase_fail_rate=0.04)
    st = open_stack(mode="appnvm", disk=disk, geometry=Geometry.small(nblocks=16), faults=faults)
    fs = VolumeFs(st.blockdev)
    fh = fs.open(VOLUME_INO, os.O_RDWR).fh
    n = st.blockdev.size
    written = {}
    code = None
    for rnd in range(60):
        for off in range(0, n, 1 << 20):
            buf = np.full(min(1 << 20, n - off), rnd % 251 + 1, np.uint8)
            try:
                fs.write(VOLUME_INO, fh, off, buf)
                written[off] = buf
            except ll.FUSEError as e:
                code = e.errno
                break
        if code is not None:
            break
    assert code == errno.EROFS
    assert st.blockdev.smart()["critical_warning"] & 0x08          # read-only media
    fs.fsync(VOLUME_INO, fh, False)
    for off, buf in list(written.items())[-8:]:
        assert bytes(fs.read(VOLUME_INO, fh, off, buf.nbytes)) == buf.tobytes()
    st.close()
    with open_stack(disk=disk) as st:                               # opens, still read-only
        fs = VolumeFs(st.blockdev)
        fh = fs.open(VOLUME_INO, os.O_RDWR).fh
        assert errno_of(fs.write, VOLUME_INO, fh, 0, b"\0" * 4096) == errno.EROFS
        off, buf = list(written.items())[-1]
        assert bytes(fs.read(VOLUME_INO, fh, off, buf.nbytes)) == buf.tobytes()


@pytest.mark.parametrize("status, cls, code", [
    (Status.UNRECOVERED_READ, NvmeMediaError, errno.EIO),
    (Status.WRITE_FAULT, NvmeMediaError, errno.EIO),
    (Status.CAP_EXCEEDED, NvmeNoSpace, errno.ENOSPC),
    (Status.NS_WRITE_PROTECTED | Status.DNR, NvmeReadOnly, errno.EROFS),
    (Status.INVALID_FIELD | Status.DNR, type(io_error(0x4002, "x")), errno.EINVAL),
])
def test_nvme_statuses_map_onto_block_device_error_classes(status, cls, code):
    e = io_error(status, "write of 8 sectors at 0")
    assert isinstance(e, cls) and e.errno == code
    assert f"(0x{status:04X})" in str(e)
