"""NvmeBlockDevice: the AppNVM namespace as a BlockDevice, over the real bus (SPEC 9)."""
import json

import numpy as np
import pytest

from oxemu import Geometry
from oxhost.blockdev import BlockDeviceError
from oxhost.lightnvm import Device
from oxhost.nvme import NotAppNvm, NvmeBlockDevice, NvmeIoError

GEO = Geometry.small(nblocks=16)
SECTOR = 4096


@pytest.fixture
def bdev(make_machine):
    bd = NvmeBlockDevice.open(make_machine(lnvm=0, geometry=GEO))
    yield bd
    bd.close()


def _pattern(nbytes, seed):
    return np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8)


def test_open_sizes_the_device_from_identify(make_machine):
    bd = NvmeBlockDevice.open(make_machine(lnvm=0, geometry=Geometry()))
    assert bd.size == 3_435_134_976
    assert bd.cmd_nbytes == 1 << 20
    bd.close()


def test_open_refuses_an_open_channel_namespace(make_machine):
    m = make_machine(lnvm=1, geometry=GEO)
    with pytest.raises(NotAppNvm, match="open-channel"):
        NvmeBlockDevice.open(m)
    Device.open(m).close()                      # the controller was left usable


def test_sector_io_roundtrip(bdev):
    data = _pattern(40 * SECTOR, 1)
    bdev.write_sectors(10, data)
    assert (bdev.read_sectors(10, 40) == data).all()
    assert not bdev.read_sectors(50, 3).any()


def test_byte_granular_io_on_top(bdev):
    data = _pattern(10_000, 2)
    assert bdev.write(4096 * 7 + 123, data) == data.size
    assert (bdev.read(4096 * 7 + 123, data.size) == data).all()
    assert (bdev.read(bdev.size - 10, 100).size == 10)


def test_large_io_is_split_at_mdts_and_batched(bdev):
    drv = bdev.driver
    data = _pattern(5 << 20, 3)
    c0, d0 = drv.stats["commands"], drv.stats["doorbells"]
    bdev.write_sectors(0, data)
    assert drv.stats["commands"] - c0 == 5                  # 1 MiB each
    assert drv.stats["doorbells"] - d0 <= 2                 # one doorbell for the batch (+ a CQ ring)
    assert (bdev.read_sectors(0, data.size // SECTOR) == data).all()
    data = _pattern(9 << 20 | 4096, 4)                       # more than a batch
    bdev.write_sectors(100, data)
    assert (bdev.read_sectors(100, data.size // SECTOR) == data).all()


def test_guest_ram_buffers_are_used_in_place(bdev):
    buf = bdev.buf_alloc(2 << 20)
    buf[:] = _pattern(buf.size, 5)
    z0 = bdev.counters["zero_copy"]
    bdev.write_sectors(0, buf)
    out = bdev.buf_alloc(2 << 20)
    got = bdev.read_sectors(0, 512, out=out)
    assert bdev.counters["zero_copy"] - z0 == 2
    assert got.ctypes.data == out.ctypes.data and (out == buf).all()
    bdev.buf_free(buf)
    bdev.buf_free(out)
    with pytest.raises(BlockDeviceError):
        bdev.buf_free(np.zeros(4096, np.uint8))


def test_discard_reads_back_zeros(bdev):
    bdev.write_sectors(0, _pattern(64 * SECTOR, 6))
    bdev.discard(5 * SECTOR + 100, 20 * SECTOR)             # whole sectors 6..24 only
    got = bdev.read_sectors(0, 64).reshape(64, SECTOR)
    zero = ~got.any(axis=1)
    assert np.flatnonzero(zero).tolist() == list(range(6, 25))
    bdev.discard_sectors(0, bdev.size // SECTOR)            # the whole device
    assert not bdev.read_sectors(0, 64).any()


def test_flush_and_close_make_data_durable(make_machine, tmp_path):
    disk = str(tmp_path / "ox.disk")
    m = make_machine(lnvm=0, volt=0, disk=disk, geometry=GEO)
    bd = NvmeBlockDevice.open(m)
    data = _pattern(300 * SECTOR + 0, 7)
    bd.write_sectors(1000, data)
    bd.write_sectors(5, data[:SECTOR * 3])                  # a partial unit: only the flush saves it
    bd.close()
    bd.close()                                              # idempotent
    m.close()
    bd = NvmeBlockDevice.open(make_machine(lnvm=0, volt=0, disk=disk, geometry=GEO))
    assert (bd.read_sectors(1000, 300) == data).all()
    assert (bd.read_sectors(5, 3) == data[:SECTOR * 3]).all()
    bd.close()


def test_stats_are_json_with_driver_counts_smart_and_the_device_ftl_in_pblk_terms(bdev):
    bdev.write_sectors(0, _pattern(1000 * SECTOR, 8))
    bdev.read_sectors(0, 1000)
    bdev.discard_sectors(0, 10)
    bdev.flush()
    st = bdev.stats()
    json.dumps(st)
    assert st["mode"] == "appnvm" and st["size"] == bdev.size
    host = st["host"]
    assert host["bytes_written"] == host["bytes_read"] == 1000 * SECTOR
    assert st["driver"]["commands"] >= 3 and host["flushes"] == 1
    # the device FTL's own figures, read over the bus (vendor log page 0xC1)
    assert st["host_sectors_written"] == 1000 and st["user_sectors"] == 1000
    assert st["write_amplification"] >= 1.0 and st["media_write_amplification"] >= st["write_amplification"]
    assert st["valid_sectors"] == 990 and st["discarded_sectors"] == 10
    assert st["capacity_sectors"] == bdev.nlbas and st["read_only"] is False
    smart = st["smart"]
    assert smart["data_units_written"] == -(-1000 * SECTOR // 512_000)
    assert smart["data_units_read"] == -(-1000 * SECTOR // 512_000)


def test_requests_outside_the_device_are_refused_on_the_host(bdev):
    n = bdev.size // SECTOR
    with pytest.raises(BlockDeviceError):
        bdev.read_sectors(n - 1, 2)
    with pytest.raises(BlockDeviceError):
        bdev.write_sectors(-1, np.zeros(SECTOR, np.uint8))
    with pytest.raises(BlockDeviceError):
        bdev.write_sectors(0, np.zeros(100, np.uint8))
    with pytest.raises(BlockDeviceError):
        bdev.discard_sectors(n, 1)


def test_device_statuses_surface_as_nvme_io_errors(bdev):
    bdev.nlbas += 10                                        # a host that believes it is bigger
    with pytest.raises(NvmeIoError) as ei:
        bdev.read_sectors(bdev.nlbas - 5, 5)
    assert ei.value.status == 0x4080                        # LBA out of range, do not retry


def test_closed_device_refuses_io(make_machine):
    bd = NvmeBlockDevice.open(make_machine(lnvm=0, geometry=GEO))
    bd.close()
    with pytest.raises(BlockDeviceError, match="closed"):
        bd.read_sectors(0, 1)


def test_small_guest_ram_gets_a_smaller_batch(make_machine):
    bd = NvmeBlockDevice.open(make_machine(lnvm=0, geometry=GEO, ram_mib=8))
    assert 1 <= bd.batch < 8
    data = _pattern(3 << 20, 9)
    bd.write_sectors(0, data)
    assert (bd.read_sectors(0, data.size // SECTOR) == data).all()
    bd.close()


def test_lifetime_counters_survive_a_remount(tmp_path):
    """SMART data units, host commands and power cycles live in the media label; the FTL's
    WA/GC/erase counts in its checkpoints: a remount continues them, as a drive's do."""
    from oxemu import Machine
    disk = str(tmp_path / "a.disk")
    with Machine(lnvm=0, volt=0, disk=disk, geometry=GEO) as m:
        bd = NvmeBlockDevice.open(m)
        bd.write_sectors(0, _pattern(bd.nlbas * SECTOR, 1))
        rng = np.random.default_rng(2)
        for lba in rng.integers(0, bd.nlbas, 3 * bd.nlbas):   # random overwrites: GC moves data
            bd.write_sectors(int(lba), _pattern(SECTOR, int(lba)))
        bd.discard_sectors(0, 64)
        first = bd.stats()
        bd.close()
    assert first["gc_runs"] > 0 and first["erases"] > 0
    with Machine(lnvm=0, volt=0, disk=disk, geometry=GEO) as m:
        bd = NvmeBlockDevice.open(m)
        bd.read_sectors(64, 8)
        again = bd.stats()
        bd.close()
    for k in ("user_sectors", "gc_sectors", "gc_runs", "erases", "discarded_sectors", "host_sectors_written"):
        assert again[k] >= first[k] > 0, k
    assert again["smart"]["data_units_written"] >= first["smart"]["data_units_written"] > 0
    assert again["smart"]["host_write_commands"] >= first["smart"]["host_write_commands"] > 0
    assert again["smart"]["power_cycles"] == first["smart"]["power_cycles"] + 1
