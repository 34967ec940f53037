"""fallocate on the volume (discard and write-zeroes from a loop device, fstrim, blkdiscard)
down to the FTL, on the real stack of both modes: the handler called directly, and once
through a real mount with the fallocate(1) tool."""
import errno
import json
import os
import subprocess

import numpy as np
import pytest

from oxemu import Geometry
from oxhost.fuse import lowlevel as ll
from oxhost.fuse.fs import STATS_INO, VOLUME_INO, VolumeFs
from oxhost.fuse.mount import Server
from oxhost.stack import open_stack
from tests.conftest import require_tools

from .conftest import serve_while

SMALL = Geometry.small(nblocks=16, npages=32)
S = 4096
PUNCH = ll.FALLOC_FL_PUNCH_HOLE | ll.FALLOC_FL_KEEP_SIZE
ZERO = ll.FALLOC_FL_ZERO_RANGE


def discarded(dev) -> int:
    """The FTL's discarded-sector counter: pblk's own, or the NVMe deallocates of AppNVM."""
    st = dev.stats()
    return st["counters"]["discarded_sectors"] if "counters" in st else st["discarded_sectors"]


def user_written(dev) -> int:
    """User sectors that reached the FTL (pblk counts them as its buffer drains: flush)."""
    dev.flush()
    st = dev.stats()
    return st["user_sectors"] if "user_sectors" in st else st["bytes_written"] // S


@pytest.fixture(params=["pblk", "appnvm"])
def stack(request):
    with open_stack(mode=request.param, volatile=True, geometry=SMALL) as st:
        yield st


@pytest.fixture
def fs(stack):
    return VolumeFs(stack.blockdev, {"mode": stack.mode})


def fill(fs, nbytes: int, seed: int = 7) -> tuple[int, np.ndarray]:
    data = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8)
    fh = fs.open(VOLUME_INO, os.O_RDWR).fh
    assert fs.write(VOLUME_INO, fh, 0, data) == nbytes
    fs.fsync(VOLUME_INO, fh, False)
    return fh, data


def errno_of(fn, *args) -> int:
    with pytest.raises(ll.FUSEError) as ei:
        fn(*args)
    return ei.value.errno


def test_fallocate_punch_hole_discards_whole_sectors_and_zeroes_the_edges(fs, stack):
    dev = stack.blockdev
    fh, data = fill(fs, 16 * S)
    before, written = discarded(dev), user_written(dev)
    off, length = 1000, 3 * S + 500                      # sectors 1 and 2 whole, 0 and 3 partial
    fs.fallocate(VOLUME_INO, fh, PUNCH, off, length)
    got = fs.read(VOLUME_INO, fh, 0, 16 * S)
    want = data.copy()
    want[off:off + length] = 0
    assert np.array_equal(got, want)
    assert discarded(dev) - before == 2
    assert user_written(dev) - written == 2             # only the two edge sectors rewritten
    doc = fs.stats_document()["fuse"]
    assert (doc["discards"], doc["discard_bytes"], doc["zeroes"]) == (1, length, 0)


@pytest.mark.parametrize("mode", [ZERO, ZERO | ll.FALLOC_FL_KEEP_SIZE, PUNCH])
def test_fallocate_zeroing_an_aligned_range_unmaps_without_writing_zero_pages(fs, stack, mode):
    """The loop driver's write-zeroes (ZERO_RANGE|KEEP_SIZE with NOUNMAP, PUNCH_HOLE
    without, on 6.18) costs the FTL no media writes at all."""
    dev = stack.blockdev
    fh, data = fill(fs, 256 * S)
    before, written = discarded(dev), user_written(dev)
    fs.fallocate(VOLUME_INO, fh, mode, 64 * S, 128 * S)
    assert discarded(dev) - before == 128
    assert user_written(dev) == written
    got = fs.read(VOLUME_INO, fh, 0, 256 * S)
    assert not got[64 * S:192 * S].any()
    assert np.array_equal(got[:64 * S], data[:64 * S])
    assert np.array_equal(got[192 * S:], data[192 * S:])
    fs.fsync(VOLUME_INO, fh, False)                     # and it survives a flush
    assert not fs.read(VOLUME_INO, fh, 64 * S, 128 * S).any()


def test_fallocate_inside_one_sector_writes_zeros_only(fs, stack):
    dev = stack.blockdev
    fh, data = fill(fs, 4 * S)
    before = discarded(dev)
    fs.fallocate(VOLUME_INO, fh, ZERO | ll.FALLOC_FL_KEEP_SIZE, S + 100, 200)
    want = data.copy()
    want[S + 100:S + 300] = 0
    assert np.array_equal(fs.read(VOLUME_INO, fh, 0, 4 * S), want)
    assert discarded(dev) == before


def test_fallocate_allocate_is_a_no_op_inside_the_volume_and_efbig_beyond(fs, stack):
    dev = stack.blockdev
    fh, data = fill(fs, 4 * S)
    before, written = discarded(dev), user_written(dev)
    fs.fallocate(VOLUME_INO, fh, 0, 0, fs.size)                      # posix_fallocate
    fs.fallocate(VOLUME_INO, fh, ll.FALLOC_FL_KEEP_SIZE, fs.size - S, 10 * S)
    assert (discarded(dev), user_written(dev)) == (before, written)
    assert np.array_equal(fs.read(VOLUME_INO, fh, 0, 4 * S), data)
    assert errno_of(fs.fallocate, VOLUME_INO, fh, 0, fs.size - S, 2 * S) == errno.EFBIG
    assert errno_of(fs.fallocate, VOLUME_INO, fh, ZERO, fs.size, S) == errno.EFBIG


def test_fallocate_keep_size_ranges_are_clipped_at_the_end_of_the_volume(fs, stack):
    fh = fs.open(VOLUME_INO, os.O_RDWR).fh
    tail = np.full(2 * S, 0xAB, np.uint8)
    fs.write(VOLUME_INO, fh, fs.size - 2 * S, tail)
    fs.fallocate(VOLUME_INO, fh, PUNCH, fs.size - S, 1 << 20)
    got = fs.read(VOLUME_INO, fh, fs.size - 2 * S, 2 * S)
    assert (got[:S] == 0xAB).all() and not got[S:].any()
    fs.fallocate(VOLUME_INO, fh, PUNCH, fs.size + S, S)             # wholly past the end


@pytest.mark.parametrize("mode", [ll.FALLOC_FL_PUNCH_HOLE, ll.FALLOC_FL_COLLAPSE_RANGE,
                                  ll.FALLOC_FL_INSERT_RANGE, ll.FALLOC_FL_UNSHARE_RANGE,
                                  ll.FALLOC_FL_COLLAPSE_RANGE | ll.FALLOC_FL_KEEP_SIZE])
def test_fallocate_other_modes_are_not_supported(fs, mode):
    fh = fs.open(VOLUME_INO, os.O_RDWR).fh
    assert errno_of(fs.fallocate, VOLUME_INO, fh, mode, 0, S) == errno.EOPNOTSUPP


def test_fallocate_refuses_empty_negative_ranges_and_the_stats_file(fs):
    fh = fs.open(VOLUME_INO, os.O_RDWR).fh
    assert errno_of(fs.fallocate, VOLUME_INO, fh, PUNCH, 0, 0) == errno.EINVAL
    assert errno_of(fs.fallocate, VOLUME_INO, fh, PUNCH, -S, S) == errno.EINVAL
    sfh = fs.open(STATS_INO, os.O_RDONLY).fh
    assert errno_of(fs.fallocate, STATS_INO, sfh, PUNCH, 0, S) == errno.EBADF


def test_blockdev_write_zeroes_writes_zeros_when_discard_cannot_promise_them(stack):
    dev = stack.blockdev
    dev.write(0, np.full(8 * S, 0x5A, np.uint8))
    dev.discard_zeroes = False                          # as a device without deallocate
    before, written = discarded(dev), user_written(dev)
    dev.write_zeroes(S, 6 * S)
    assert discarded(dev) == before and user_written(dev) - written == 6
    got = dev.read(0, 8 * S)
    assert (got[:S] == 0x5A).all() and not got[S:7 * S].any() and (got[7 * S:] == 0x5A).all()


def test_blockdev_write_zeroes_checks_the_range(stack):
    from oxhost.blockdev import BlockDeviceError
    dev = stack.blockdev
    with pytest.raises(BlockDeviceError):
        dev.write_zeroes(dev.size - S, 2 * S)
    dev.write_zeroes(dev.size, 0)


@pytest.mark.usefixtures("needs_fuse")
def test_fallocate_through_a_mount_reaches_the_ftl(stack, mountpoint):
    """fallocate(1) on the mounted volume: punch and zero-range are dispatched by the
    session (pyfuse3 answered ENOTSUP here) and land in the FTL's counters."""
    require_tools("fallocate")
    dev = stack.blockdev
    server = Server(dev, mountpoint, handle_signals=False, background=False)
    seen = {}

    def work():
        vol = os.path.join(mountpoint, "volume")
        with open(vol, "r+b") as f:
            f.write(b"\xee" * (64 * S))
            f.flush()
            os.fsync(f.fileno())
        with open(os.path.join(mountpoint, "stats")) as f:  # answered by the serving thread
            st = json.load(f)
        seen["before"] = st["counters"]["discarded_sectors"] if "counters" in st \
            else st["discarded_sectors"]
        for args in (["-p", "-o", str(8 * S), "-l", str(16 * S)],
                     ["-z", "-n", "-o", str(32 * S), "-l", str(8 * S)],
                     ["-o", "0", "-l", str(S)]):
            subprocess.run(["fallocate", *args, vol], check=True, capture_output=True)
        with open(vol, "rb") as f:
            seen["data"] = f.read(64 * S)
        seen["size"] = os.stat(vol).st_size

    serve_while(server, work)
    data = np.frombuffer(seen["data"], np.uint8)
    assert not data[8 * S:24 * S].any() and not data[32 * S:40 * S].any()
    assert (data[:8 * S] == 0xEE).all() and (data[24 * S:32 * S] == 0xEE).all()
    assert (data[40 * S:] == 0xEE).all()
    assert discarded(dev) - seen["before"] == 24
    assert seen["size"] == dev.size
    assert server.ops.discards == 1 and server.ops.zeroes == 1 and server.ops.errors == 0
