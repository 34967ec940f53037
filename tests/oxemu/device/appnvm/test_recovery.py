"""AppNVM map recovery at start (SPEC 6): from the checkpoint after a clean stop, from the
checkpoint plus the OOB of newer units after an unclean one, from the OOB alone when no
checkpoint is usable. Writes acknowledged before a completed FLUSH always survive."""
import numpy as np
import pytest

from oxemu import Faults, Geometry, StoreError
from oxemu.device import PowerLost
from oxemu.device.appnvm.blocks import BState
from oxhost.driver import DriverError
from oxhost.lightnvm import Addr, Device

from .conftest import Nvme, check_map, stamp


def _disk(tmp_path):
    return str(tmp_path / "ox.disk")


def _fill(n, version=1, count=None):
    count = n.nlbas if count is None else count
    for s in range(0, count, 256):
        k = min(256, count - s)
        assert n.write(s, stamp(np.arange(s, s + k), version)) == 0


def test_clean_stop_recovers_from_the_checkpoint_alone(appnvm_machine, tmp_path):
    m = appnvm_machine(volt=0, disk=_disk(tmp_path))
    n = Nvme(m)
    _fill(n)
    n.write_stamped(np.arange(100, 120), 2)
    assert n.dsm([(500, 40)]) == 0
    n.shutdown()
    m.close()
    m = appnvm_machine(volt=0, disk=_disk(tmp_path))
    rec = m.device.mode.recovery.stats
    assert rec["clean"] and rec["units_replayed"] == 0 and rec["trims_replayed"] == 0
    assert rec["blocks_scanned"] <= 8                       # the metadata and the open blocks
    n = Nvme(m)
    want = np.ones(n.nlbas, dtype=np.int64)
    want[100:120] = 2
    want[500:540] = 0
    assert (n.read_versions() == want).all()
    check_map(n.ops)
    assert n.ops.stats()["host_sectors_written"] == n.nlbas + 20      # counters carry over


def test_unclean_stop_keeps_every_write_acknowledged_before_a_flush(appnvm_machine, tmp_path):
    m = appnvm_machine(volt=0, disk=_disk(tmp_path))
    n = Nvme(m)
    _fill(n)
    n.shutdown()                                            # a clean checkpoint as the base
    n = Nvme(m)
    rng = np.random.default_rng(4)
    lbas = rng.choice(n.nlbas, 600, replace=False)
    n.write_stamped(lbas[:500], 2)
    assert n.dsm([(10, 5)]) == 0
    assert n.flush() == 0
    n.write_stamped(lbas[500:], 3)                          # after the flush: may be lost
    m.close()                                               # no FLUSH, no shutdown: power gone
    m = appnvm_machine(volt=0, disk=_disk(tmp_path))
    rec = m.device.mode.recovery.stats
    assert not rec["clean"] and rec["units_replayed"] > 0 and rec["trims_replayed"] == 1
    n = Nvme(m)
    got = n.read_versions()
    want = np.ones(n.nlbas, dtype=np.int64)
    want[lbas[:500]] = 2
    want[10:15] = 0
    late = lbas[500:]
    assert (got[late] == 3).sum() >= 90                     # only the buffered tail is lost
    for lba in late.tolist():
        assert got[lba] in (want[lba], 3)
    rest = np.setdiff1d(np.arange(n.nlbas), late)
    assert (got[rest] == want[rest]).all()
    check_map(n.ops)


def test_deallocate_after_the_checkpoint_survives_an_unclean_stop(appnvm_machine, tmp_path):
    m = appnvm_machine(volt=0, disk=_disk(tmp_path))
    n = Nvme(m)
    _fill(n, count=2048)
    assert n.flush() == 0
    m.device.mode.ckpt.write()
    n.write_stamped(np.arange(0, 64), 2)                    # newer than the checkpoint
    assert n.dsm([(0, 32), (1000, 24)]) == 0
    assert n.flush() == 0
    m.close()
    m = appnvm_machine(volt=0, disk=_disk(tmp_path))
    assert m.device.mode.recovery.stats["trims_replayed"] == 2          # one record per range
    got = Nvme(m).read_versions(0, 2048)
    want = np.ones(2048, dtype=np.int64)
    want[32:64] = 2
    want[0:32] = 0
    want[1000:1024] = 0
    assert (got == want).all()


def test_a_corrupt_checkpoint_falls_back_to_the_oob_of_every_block(appnvm_machine, tmp_path):
    m = appnvm_machine(volt=0, disk=_disk(tmp_path))
    n = Nvme(m)
    _fill(n)
    rng = np.random.default_rng(9)
    lbas = rng.choice(n.nlbas, 3000)
    for i, lba in enumerate(lbas.tolist()):
        assert n.write(lba, stamp(lba, i + 2)) == 0
    assert n.flush() == 0
    want = n.read_versions()
    ops = m.device.mode
    assert ops.stats()["checkpoints"] >= 2 and ops.stats()["gc_victims"] > 0
    store = m.device.volt.store
    for b in np.flatnonzero(ops.blocks.state == BState.META).tolist():
        ch, lun, blk = ops.addr.chlunblk(b)
        store.data[ch, lun, blk] ^= 0x5A                      # every checkpoint fails its CRC
    m.close()
    m = appnvm_machine(volt=0, disk=_disk(tmp_path))
    rec = m.device.mode.recovery.stats
    assert rec["checkpoint_seq"] == 0 and rec["units_replayed"] > 0
    n = Nvme(m)
    assert (n.read_versions() == want).all()
    check_map(n.ops)


@pytest.mark.parametrize("cut", [150, 1200, 4321])
def test_power_cut_mid_stream_loses_nothing_flushed(appnvm_machine, tmp_path, cut):
    faults = Faults()
    m = appnvm_machine(volt=0, disk=_disk(tmp_path), faults=faults)
    n = Nvme(m)
    _fill(n)
    assert n.flush() == 0
    faults.power_cut_after = m.device.volt._ops + cut
    cap = n.nlbas
    flushed = np.ones(cap, dtype=np.int64)
    latest = flushed.copy()
    rng = np.random.default_rng(cut)
    with pytest.raises(DriverError):
        for i in range(2, 10 ** 6):
            lba = int(rng.integers(0, cap - 4))
            k = 4 if i % 7 == 0 else 1
            n.write(lba, stamp(np.arange(lba, lba + k), i))       # raises once the power is gone
            latest[lba:lba + k] = i
            if i % 64 == 0:
                assert n.flush() == 0
                flushed[:] = latest
    m.close()
    m = appnvm_machine(volt=0, disk=_disk(tmp_path))
    n = Nvme(m)
    got = n.read_versions()
    assert (got >= flushed).all(), "a flushed write was lost"
    assert (got <= latest + 1).all() and (got > 0).all()          # never garbage, never zeros
    check_map(n.ops)


def test_power_cut_during_recovery_then_a_clean_start(appnvm_machine, tmp_path):
    m = appnvm_machine(volt=0, disk=_disk(tmp_path))
    n = Nvme(m)
    _fill(n, count=1024)
    assert n.flush() == 0
    m.close()
    try:                                                    # the device never gets ready
        cut = appnvm_machine(volt=0, disk=_disk(tmp_path), faults=Faults(power_cut_after=10))
        assert not cut.device.volt.powered
        cut.close()
    except PowerLost:
        pass
    m = appnvm_machine(volt=0, disk=_disk(tmp_path))
    assert (Nvme(m).read_versions(0, 1024) == 1).all()


def test_controller_reset_programs_the_buffer_and_checkpoints(appnvm_machine):
    m = appnvm_machine()
    n = Nvme(m)
    assert n.write(0, stamp([0, 1, 2], 1)) == 0
    ckpts = m.device.mode.stats()["checkpoints"]
    n = Nvme(m)                                              # bring-up resets the controller
    assert m.device.mode.wbuf.n == 0
    assert m.device.mode.stats()["checkpoints"] == ckpts + 1
    assert n.read_versions(0, 3).tolist() == [1, 1, 1]


def test_a_disk_written_in_open_channel_mode_is_refused_and_left_alone(make_machine, tmp_path):
    disk = _disk(tmp_path)
    geo = Geometry.small(nblocks=16)
    m = make_machine(lnvm=1, volt=0, disk=disk, geometry=geo)
    dev = Device.open(m)
    addrs = [Addr(0, 0, pl=pl, blk=3, pg=0, sec=s) for pl in range(2) for s in range(4)]
    dev.addr_erase([Addr(0, 0, pl=pl, blk=3) for pl in range(2)])
    data = np.arange(8 * 4096, dtype=np.uint32).view(np.uint8)[:8 * 4096]
    dev.addr_write(addrs, data)
    dev.close()
    m.close()
    with pytest.raises(StoreError, match="open-channel"):
        make_machine(lnvm=0, volt=0, disk=disk, geometry=geo)
    m = make_machine(lnvm=1, volt=0, disk=disk, geometry=geo)
    got, _ = Device.open(m).addr_read(addrs)
    assert (got == data).all()


def test_recovery_of_the_default_geometry_reads_little_after_a_clean_stop(appnvm_machine, tmp_path):
    """A clean start reads page 0 of every plane of every block (SPEC 8: what each block
    really is, on every plane) and the metadata; nothing of the data blocks beyond that."""
    m = appnvm_machine(volt=0, disk=_disk(tmp_path), geometry=Geometry())
    n = Nvme(m)
    for s in range(0, 8192, 256):
        assert n.write(s * 97, stamp(np.arange(s * 97, s * 97 + 256), 1)) == 0
    n.shutdown()
    m.close()
    m = appnvm_machine(volt=0, disk=_disk(tmp_path), geometry=Geometry())
    rec = m.device.mode.recovery.stats
    assert rec["clean"] and rec["pages_read"] < 2 * 1024 + 2 * 128 * 4
    assert (Nvme(m).read_versions(97 * 256, 256) == 1).all()
