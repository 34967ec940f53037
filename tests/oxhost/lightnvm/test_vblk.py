"""liblightnvm test_vblk: virtual blocks striped over LUNs -- erase, write, read, pread, pad."""
import numpy as np
import pytest

from oxemu import Geometry
from oxhost.lightnvm import Addr, LightnvmError, NvmError, VBlk, buf_diff, buf_fill

from tests.helpers import page_addrs


@pytest.fixture
def line(dev):
    """Block 5 on every LUN of the small device, erased."""
    v = VBlk.alloc_line(dev, 0, dev.geo.nchannels - 1, 0, dev.geo.nluns - 1, 5)
    v.erase()
    return v


def test_vblk_alloc_line_covers_every_lun_across_channels_first(dev):
    v = VBlk.alloc_line(dev, 0, 1, 0, 1, 3)
    assert [(a.ch, a.lun, a.blk) for a in v.blks] == [(0, 0, 3), (1, 0, 3), (0, 1, 3), (1, 1, 3)]
    assert v.nbytes == 4 * dev.geo.block_nbytes


def test_vblk_write_then_read_returns_the_data(dev, line):
    buf = dev.buf_alloc(line.nbytes)
    buf_fill(buf, 11)
    line.write(buf)
    out = line.read(line.nbytes)
    assert buf_diff(out, buf) == 0


def test_vblk_stripes_page_units_over_its_blocks(dev, line):
    """The first 32 KiB land on page 0 of the first block, the next on the second block."""
    g = dev.geo
    unit = g.nplanes * g.nsectors * g.sector_nbytes
    buf = buf_fill(np.empty(2 * unit, np.uint8), 3)
    line.write(buf)
    first, second = line.blks[0], line.blks[1]
    got0, _ = dev.addr_read(page_addrs(first.ch, first.lun, first.blk, 0, g.nplanes))
    got1, _ = dev.addr_read(page_addrs(second.ch, second.lun, second.blk, 0, g.nplanes))
    assert buf_diff(got0, buf[:unit]) == 0 and buf_diff(got1, buf[unit:]) == 0


def test_vblk_read_before_write_fails_with_0x42FF(line):
    with pytest.raises(NvmError) as ei:
        line.read(4096)
    assert ei.value.status == 0x42FF
    assert ei.value.failed == 1
    assert not ei.value.data.any()


def test_vblk_random_pread_matches_what_was_written(dev, line):
    buf = buf_fill(np.empty(line.nbytes, np.uint8), 5)
    line.write(buf)
    sec = dev.geo.sector_nbytes
    nsec = line.nbytes // sec
    rng = np.random.default_rng(1)
    for _ in range(40):
        n = int(rng.integers(1, 300))
        s0 = int(rng.integers(0, nsec - n))
        got = line.pread(n * sec, s0 * sec)
        assert buf_diff(got, buf[s0 * sec:(s0 + n) * sec]) == 0, (s0, n)


def test_vblk_pread_past_what_was_written_fails_naming_the_empty_sectors(dev, line):
    g = dev.geo
    unit = g.nplanes * g.nsectors * g.sector_nbytes
    line.write(buf_fill(np.empty(unit, np.uint8), 9))      # page 0 of the first block only
    with pytest.raises(NvmError) as ei:
        line.pread(2 * unit, 0)
    assert ei.value.status == 0x42FF
    n = 2 * g.nplanes * g.nsectors
    assert ei.value.failed == ((1 << n) - 1) & ~((1 << (n // 2)) - 1)


def test_vblk_pad_programs_every_remaining_page_with_zeros(dev, line):
    g = dev.geo
    unit = g.nplanes * g.nsectors * g.sector_nbytes
    head = buf_fill(np.empty(3 * unit, np.uint8), 4)
    line.write(head)
    line.pad()
    assert line.pos_write == line.nbytes
    out = line.read(line.nbytes)
    assert buf_diff(out[:head.nbytes], head) == 0
    assert not out[head.nbytes:].any()


def test_vblk_rewrite_without_erase_fails_with_0x40FF_and_erase_makes_it_writable(dev, line):
    g = dev.geo
    unit = g.nplanes * g.nsectors * g.sector_nbytes
    buf = buf_fill(np.empty(unit, np.uint8), 2)
    line.pwrite(buf, 0)
    with pytest.raises(NvmError) as ei:
        line.pwrite(buf, 0)
    assert ei.value.status == 0x40FF
    line.erase()
    line.write(buf)
    assert buf_diff(line.read(unit), buf) == 0


def test_vblk_alloc_of_explicit_blocks(dev):
    v = VBlk.alloc(dev, [Addr(1, 0, blk=7), Addr(0, 1, blk=2)])
    v.erase()
    buf = buf_fill(np.empty(v.nbytes, np.uint8), 8)
    v.write(buf)
    assert buf_diff(v.pread(v.nbytes, 0), buf) == 0


def test_vblk_refuses_io_outside_itself_or_misaligned(dev, line):
    unit = dev.geo.nplanes * dev.geo.nsectors * dev.geo.sector_nbytes
    with pytest.raises(LightnvmError):
        line.pread(4096, line.nbytes)
    with pytest.raises(LightnvmError):
        line.pwrite(np.zeros(4096, np.uint8), 0)          # less than one page on every plane
    with pytest.raises(LightnvmError):
        line.pwrite(np.zeros(unit, np.uint8), line.nbytes)
    with pytest.raises(LightnvmError):
        line.pread(100, 0)


def test_vblk_alloc_line_outside_the_geometry_is_refused(dev):
    with pytest.raises(LightnvmError):
        VBlk.alloc_line(dev, 0, dev.geo.nchannels, 0, 0, 1)
    with pytest.raises(LightnvmError):
        VBlk.alloc_line(dev, 0, 0, 0, 0, dev.geo.nblocks)
    with pytest.raises(LightnvmError):
        VBlk(dev, [])


@pytest.mark.parametrize("nplanes", [1, 4])
def test_vblk_roundtrip_on_single_and_quad_plane_devices(open_dev, nplanes):
    dev = open_dev(geometry=Geometry.small(nplanes=nplanes))
    v = VBlk.alloc_line(dev, 0, 1, 0, 1, 3)
    v.erase()
    buf = buf_fill(np.empty(v.nbytes, np.uint8), nplanes)
    v.write(buf)
    assert buf_diff(v.read(v.nbytes), buf) == 0
