"""Fault injection seen from the host: factory bad blocks, program and erase failures,
read errors and a power cut -- all as NVMe statuses or a driver error, never a crash."""
import os

import numpy as np
import pytest

from oxemu import Faults, Geometry, Machine
from oxhost.driver import ControllerFatal, DriverError
from oxhost.lightnvm import Addr, BlockState, Device, NvmError, buf_diff

from tests.helpers import block_planes, page_addrs, stamp_sectors


def test_faults_factory_bad_blocks_show_in_the_bbt(open_dev):
    bad = {(0, 1, 3, 1), (0, 1, 5, 0), (1, 0, 0, 0)}
    dev = open_dev(faults=Faults(factory_bad=bad))
    t = dev.bbt_get(Addr(0, 1))
    assert t.tfact == 2 and t.tgrown == 0
    assert t.state(3, 1) == BlockState.BAD and t.state(5, 0) == BlockState.BAD
    assert np.count_nonzero(t.blks) == 2
    assert dev.bbt_get(Addr(1, 0)).state(0, 0) == BlockState.BAD
    assert not dev.bbt_get(Addr(1, 1)).blks.any()


def test_faults_factory_bad_rate_is_seeded_and_reported_in_tfact(make_machine):
    counts = []
    for _ in range(2):
        dev = Device.open(make_machine(geometry=Geometry.small(nblocks=32), faults=Faults(seed=7, factory_bad_rate=0.1)))
        tables = [dev.bbt_get(Addr(ch, lun)) for ch in range(2) for lun in range(2)]
        assert all(t.tfact == np.count_nonzero(t.blks == BlockState.BAD) for t in tables)
        counts.append([t.blks.tolist() for t in tables])
    total = sum(np.count_nonzero(np.array(t)) for t in counts[0])
    assert counts[0] == counts[1]                        # same seed, same bad blocks
    assert 0.02 * 256 < total < 0.25 * 256


def test_faults_factory_bad_blocks_are_only_set_on_new_media(tmp_path):
    path = str(tmp_path / "ox.disk")
    with Machine(volt=0, disk=path, geometry=Geometry.small(), faults=Faults(factory_bad={(0, 0, 2, 0)})) as m:
        dev = Device.open(m)
        dev.bbt_mark([Addr(0, 0, pl=0, blk=2)], BlockState.FREE)     # the host repaired it
    with Machine(volt=0, disk=path, geometry=Geometry.small(), faults=Faults(factory_bad={(0, 0, 2, 0)})) as m:
        assert not Device.open(m).bbt_get(Addr(0, 0)).blks.any()


def test_faults_program_failure_is_0x40FF_with_the_failed_pages_bitmap(open_dev):
    dev = open_dev(faults=Faults(program_fail={(0, 0, 2, 1)}))
    for blk in (1, 2):
        dev.addr_erase(block_planes(0, 0, blk, 2))
    for blk in (1, 2):
        p = page_addrs(0, 0, blk, 0, 2)
        dev.addr_write(p, stamp_sectors(p))
    addrs = page_addrs(0, 0, 1, 1, 2) + page_addrs(0, 0, 2, 1, 2)    # page 1 of blocks 1 and 2
    data = stamp_sectors(addrs, 3)
    with pytest.raises(NvmError) as ei:
        dev.addr_write(addrs, data)
    assert ei.value.status == 0x40FF
    assert ei.value.failed == 0xFF00                     # both planes of block 2's page
    got, _ = dev.addr_read(addrs[:8])
    assert buf_diff(got, data[:8 * 4096]) == 0           # block 1's page went down fine


def test_faults_erase_failure_marks_the_block_grown_bad(open_dev):
    dev = open_dev(faults=Faults(erase_fail={(1, 1, 4)}))
    with pytest.raises(NvmError) as ei:
        dev.addr_erase(block_planes(1, 1, 4, 2) + block_planes(1, 1, 5, 2))
    assert ei.value.status == 0x40FF
    assert ei.value.failed == 0b0011                     # block 4, both planes; block 5 fine
    t = dev.bbt_get(Addr(1, 1))
    assert t.state(4, 0) == t.state(4, 1) == BlockState.GRWN_BAD
    assert t.tgrown == 2 and t.tfact == 0 and t.state(5, 0) == BlockState.FREE
    p = page_addrs(1, 1, 4, 0, 2)
    with pytest.raises(NvmError) as ei:                  # a grown-bad block takes no writes
        dev.addr_write(p, stamp_sectors(p))
    assert ei.value.status == 0x40FF


def test_faults_read_errors_complete_with_0x4281(open_dev):
    dev = open_dev(faults=Faults(seed=3, read_error_rate=1.0))
    dev.addr_erase(block_planes(0, 0, 1, 2))
    p = page_addrs(0, 0, 1, 0, 2)
    dev.addr_write(p, stamp_sectors(p))
    with pytest.raises(NvmError) as ei:
        dev.addr_read(p)
    assert ei.value.status == 0x4281 and ei.value.failed == 0xFF


def test_faults_read_error_rate_is_a_fraction_of_reads(open_dev):
    dev = open_dev(faults=Faults(seed=5, read_error_rate=0.3))
    dev.addr_erase(block_planes(0, 0, 1, 2))
    p = page_addrs(0, 0, 1, 0, 2)
    dev.addr_write(p, stamp_sectors(p))
    fails = 0
    for _ in range(100):
        try:
            dev.addr_read(p[:1])
        except NvmError as e:
            assert e.status == 0x4281
            fails += 1
    assert 10 < fails < 60


def test_faults_power_cut_stops_the_device_and_the_driver_reports_it_quickly(open_dev):
    dev = open_dev(faults=Faults(power_cut_after=6), driver_kw=dict(timeout=3600.0))   # CFS, not a timeout
    for blk in (1, 2):
        dev.addr_erase(block_planes(0, 0, blk, 2))       # 4 media operations
    p = page_addrs(0, 0, 1, 0, 2)
    dev.addr_write(p, stamp_sectors(p))                  # 2 more: the last before the cut
    with pytest.raises(ControllerFatal):
        dev.addr_read(p)
    with pytest.raises(DriverError):                     # still dead, still no crash
        dev.addr_erase(block_planes(0, 0, 3, 2))
    dev.close()                                          # shutdown of a dead device: no raise


def test_faults_power_cut_keeps_what_reached_the_disk_file_and_tears_the_interrupted_page(tmp_path):
    """The cut interrupts page 1's plane-0 program: that page is consumed and torn (ECC
    until erased); plane 1's program never ran, so its page is still empty."""
    path = str(tmp_path / "ox.disk")
    p0, p1 = page_addrs(1, 0, 2, 0, 2), page_addrs(1, 0, 2, 1, 2)
    data = stamp_sectors(p0, 9)
    m = Machine(volt=0, disk=path, geometry=Geometry.small(), faults=Faults(power_cut_after=4))
    try:
        dev = Device.open(m, timeout=0.5)
        dev.addr_erase(block_planes(1, 0, 2, 2))
        dev.addr_write(p0, data)
        with pytest.raises(DriverError):
            dev.addr_write(p1, stamp_sectors(p1))
    finally:
        m.close()
    with Machine(volt=0, disk=path, geometry=Geometry.small()) as m:
        dev = Device.open(m)
        assert buf_diff(dev.addr_read(p0)[0], data) == 0
        with pytest.raises(NvmError) as ei:
            dev.addr_read(p1)
        assert ei.value.status == 0x4281 and ei.value.failed == 0xFF
        assert ei.value.statuses.tolist() == [0x4281] * 4 + [0x42FF] * 4


def test_failed_program_reads_back_as_ecc_until_the_block_is_erased(make_machine):
    """A page whose program failed holds no stale data from the last cycle: it reads 0x4281."""
    m = make_machine()
    dev = Device.open(m)
    blk = block_planes(0, 0, 1, 2)
    p0, p1 = page_addrs(0, 0, 1, 0, 2), page_addrs(0, 0, 1, 1, 2)
    dev.addr_erase(blk)
    dev.addr_write(p0, stamp_sectors(p0))
    dev.addr_write(p1, stamp_sectors(p1))            # first cycle: page 1 holds data
    dev.addr_erase(blk)
    m.device.volt.faults.program_fail.add((0, 0, 1, 1))
    dev.addr_write(p0, stamp_sectors(p0))
    with pytest.raises(NvmError) as w:
        dev.addr_write(p1, stamp_sectors(p1))
    assert w.value.status == 0x40FF
    with pytest.raises(NvmError) as r:
        dev.addr_read(p1, with_meta=True)
    assert r.value.status == 0x4281 and r.value.failed == 0xFF
    assert not r.value.data.any() and not r.value.meta.any()
    m.device.volt.faults.program_fail.clear()
    dev.addr_erase(blk)                              # erase makes the page usable again
    dev.addr_write(p0, stamp_sectors(p0))
    dev.addr_write(p1, stamp_sectors(p1))
    data, _ = dev.addr_read(p1)
    assert buf_diff(data, stamp_sectors(p1)) == 0


def test_nvm_error_gives_each_address_of_a_long_call_its_status(dev):
    blk = block_planes(0, 1, 2, 2)
    dev.addr_erase(blk)
    p0 = page_addrs(0, 1, 2, 0, 2)
    dev.addr_write(p0, stamp_sectors(p0))
    addrs = p0 + [a for pg in range(1, 9) for a in page_addrs(0, 1, 2, pg, 2)]   # 72: two commands
    with pytest.raises(NvmError) as e:
        dev.addr_read(addrs)
    st = e.value.statuses
    assert st.tolist() == [0] * 8 + [0x42FF] * 64
    assert e.value.failed == (1 << 72) - 1 - 0xFF


# ---------------------------------------------------------------- torn pages at a power cut
def _volt(geo, cut):
    from oxemu.volt import Store, TimingMode, TimingModel, Volt
    return Volt(geo, Store(geo), TimingModel(geo.nchannels, geo.nluns, TimingMode.OFF),
                Faults(power_cut_after=cut))


def test_faults_power_cut_tears_the_program_it_interrupts_and_runs_nothing_after_it():
    from oxemu.volt import MediaStatus
    geo = Geometry.small()
    v = _volt(geo, cut=2 + 3)                   # two erases, then three of five programs
    assert v.erase_blocks([0, 0], [0, 0], [1, 1], [0, 1]).tolist() == [0, 0]
    data = np.full((5, geo.page_nbytes), 7, np.uint8)
    st = v.program_pages([0] * 5, [0] * 5, [1] * 5, [0, 1, 0, 1, 0], [0, 0, 1, 1, 2], data, None)
    assert st.tolist() == [0, 0, 0] + [MediaStatus.POWER_LOSS] * 2
    assert v.store.next_page[0, 0, 1].tolist() == [2, 2]   # plane 1's page 1 consumed (torn),
    assert v.store.page_state[0, 0, 1].sum() == v.store.page_state[0, 0, 1, 1, 1]   # plane 0's page 2 untouched
    assert v.store.page_state[0, 0, 1, 1, 1] != 0
    assert not v.store.data[0, 0, 1, 1, 1].any()
    assert v.counters["torn_pages"] == 1 and v.counters["programs"] == 3
    assert v.read(0, 0, 1, 0, 0)[0] is MediaStatus.POWER_LOSS          # nothing after it


def test_faults_power_cut_does_not_tear_a_program_that_would_have_been_refused():
    geo = Geometry.small()
    v = _volt(geo, cut=1)
    v.erase(0, 0, 1, 0)
    data = np.zeros((1, geo.page_nbytes), np.uint8)
    v.program_pages([0], [0], [1], [0], [5], data, None)              # out of order: refused
    assert v.store.next_page[0, 0, 1, 0] == 0 and not v.store.page_state.any()
    assert v.counters["torn_pages"] == 0


def test_faults_power_cut_inside_a_dual_plane_erase_erases_the_planes_before_it_only(tmp_path):
    path = str(tmp_path / "ox.disk")
    geo = Geometry.small()
    with Machine(volt=0, disk=path, geometry=geo) as m:
        dev = Device.open(m)
        dev.addr_erase(block_planes(0, 1, 3, 2))
        p = page_addrs(0, 1, 3, 0, 2)
        dev.addr_write(p, stamp_sectors(p))
        dev.close()
    with Machine(volt=0, disk=path, geometry=geo, faults=Faults(power_cut_after=1)) as m:
        dev = Device.open(m, timeout=0.5)
        with pytest.raises(DriverError):
            dev.addr_erase(block_planes(0, 1, 3, 2))
    with Machine(volt=0, disk=path, geometry=geo) as m:
        dev = Device.open(m)
        with pytest.raises(NvmError) as ei:
            dev.addr_read(page_addrs(0, 1, 3, 0, 2))
        assert ei.value.statuses.tolist() == [0x42FF] * 4 + [0] * 4     # plane 0 erased, plane 1 not
        assert buf_diff(ei.value.data[4 * 4096:], stamp_sectors(page_addrs(0, 1, 3, 0, 2))[4 * 4096:]) == 0


def test_faults_torn_page_reads_0x4281_after_reopen_and_is_writable_again_after_erase(tmp_path):
    path = str(tmp_path / "ox.disk")
    geo = Geometry.small()
    p0, p1, p2 = (page_addrs(1, 1, 5, pg, 2) for pg in range(3))
    with Machine(volt=0, disk=path, geometry=geo, faults=Faults(power_cut_after=2 + 2 + 1)) as m:
        dev = Device.open(m, timeout=0.5)
        dev.addr_erase(block_planes(1, 1, 5, 2))
        dev.addr_write(p0, stamp_sectors(p0))
        with pytest.raises(DriverError):
            dev.addr_write(p1 + p2, stamp_sectors(p1 + p2))    # cut inside p1: plane 1 torn
    with Machine(volt=0, disk=path, geometry=geo) as m:
        dev = Device.open(m)
        assert buf_diff(dev.addr_read(p0)[0], stamp_sectors(p0)) == 0
        with pytest.raises(NvmError) as ei:
            dev.addr_read(p1[4:] + p1[:4] + p2)
        assert ei.value.statuses.tolist() == [0x4281] * 4 + [0] * 4 + [0x42FF] * 8
        with pytest.raises(NvmError) as ei:                  # the torn page is used up
            dev.addr_write(p1, stamp_sectors(p1))
        assert ei.value.status == 0x40FF
        dev.addr_erase(block_planes(1, 1, 5, 2))
        for p in (p0, p1):
            dev.addr_write(p, stamp_sectors(p, 4))
        assert buf_diff(dev.addr_read(p1)[0], stamp_sectors(p1, 4)) == 0
        dev.close()


def test_faults_failed_program_still_reads_0x4281_after_reopen(tmp_path):
    path = str(tmp_path / "ox.disk")
    geo = Geometry.small()
    p0, p1 = page_addrs(0, 0, 2, 0, 2), page_addrs(0, 0, 2, 1, 2)
    with Machine(volt=0, disk=path, geometry=geo, faults=Faults(program_fail={(0, 0, 2, 1)})) as m:
        dev = Device.open(m)
        dev.addr_erase(block_planes(0, 0, 2, 2))
        dev.addr_write(p0, stamp_sectors(p0))
        with pytest.raises(NvmError):
            dev.addr_write(p1, stamp_sectors(p1))
        dev.close()
    size = os.stat(path).st_blocks
    with Machine(volt=0, disk=path, geometry=geo) as m:
        dev = Device.open(m)
        with pytest.raises(NvmError) as ei:
            dev.addr_read(p0 + p1)
        assert ei.value.statuses.tolist() == [0] * 8 + [0x4281] * 8
        dev.close()
    assert os.stat(path).st_blocks == size


def test_faults_permanent_limit_caps_the_failures_the_rates_draw_but_not_the_named_ones(open_dev):
    faults = Faults(erase_fail_rate=1.0, program_fail_rate=1.0, permanent_limit=3, erase_fail={(1, 1, 6)})
    dev = open_dev(faults=faults)
    failed = 0
    for blk in range(1, 6):                              # 10 block-planes: only 3 may fail
        try:
            dev.addr_erase(block_planes(0, 0, blk, 2))
        except NvmError as e:
            failed += bin(e.failed).count("1")
    assert failed == 3 and faults.injected == dict(program=0, erase=3)
    p = page_addrs(0, 1, 1, 0, 2)
    dev.addr_erase(block_planes(0, 1, 1, 2))
    dev.addr_write(p, stamp_sectors(p))                  # the limit is spent: programs go down
    with pytest.raises(NvmError):                        # a named failure happens all the same
        dev.addr_erase(block_planes(1, 1, 6, 2))
    assert faults.permanent == 5


def test_faults_observer_hears_every_media_operation_with_its_kind_before_it_runs(open_dev):
    heard = []
    faults = Faults(power_cut_after=5)
    faults.observer = lambda op, first, count: heard.append((op, first, count))
    dev = open_dev(faults=faults)
    dev.addr_erase(block_planes(0, 0, 1, 2))
    p = page_addrs(0, 0, 1, 0, 2)
    dev.addr_write(p, stamp_sectors(p))
    dev.addr_read(p[:4])
    with pytest.raises(DriverError):                     # the 6th operation meets the cut
        dev.addr_read(p)
    ops = [op for op, first, count in heard for _ in range(count)]
    assert ops[:5] == ["erase", "erase", "program", "program", "read"] and ops[5] == "read"
    assert [first for _, first, _ in heard] == [0, 2, 4, 5][:len(heard)]
