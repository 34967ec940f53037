"""The Pblk block device through the real bus: read/write/flush/discard, stats, misuse."""
import json

import numpy as np
import pytest

from oxhost.lightnvm import Addr, NvmError
from oxhost.pblk import Pblk, PblkError

from .conftest import SECTOR, stamp


def test_random_writes_read_back(pblk):
    n = pblk.size // SECTOR
    rng = np.random.default_rng(7)
    shadow = np.zeros((n, SECTOR), np.uint8)
    for i in range(600):
        lba = int(rng.integers(0, n - 64))
        k = int(rng.choice([1, 1, 2, 8, 33, 64]))
        d = stamp(lba, k, tag=i)
        pblk.write_sectors(lba, d)
        shadow[lba:lba + k] = d.reshape(k, SECTOR)
        if i % 97 == 0:
            lba = int(rng.integers(0, n - 64))
            assert (pblk.read_sectors(lba, 64) == shadow[lba:lba + 64].reshape(-1)).all()
    assert (pblk.read_sectors(0, n) == shadow.reshape(-1)).all()
    pblk.flush()
    assert (pblk.read_sectors(0, n) == shadow.reshape(-1)).all()


def test_unmapped_reads_return_zeros_without_device_io(pblk):
    cmds = pblk.dev.driver.stats["commands"]
    assert not pblk.read_sectors(100, 50).any()
    assert not pblk.read_sectors(7, 1).any()
    assert pblk.dev.driver.stats["commands"] == cmds


def test_mixed_read_of_media_buffer_and_unmapped_sectors(pblk):
    pblk.write_sectors(0, stamp(0, 16))
    pblk.flush()
    pblk.write_sectors(20, stamp(20, 2))             # buffered
    out = pblk.read_sectors(0, 24).reshape(24, SECTOR)
    assert (out[:16].reshape(-1) == stamp(0, 16)).all()
    assert not out[16:20].any()
    assert (out[20:22].reshape(-1) == stamp(20, 2)).all()
    assert not out[22:].any()


def test_discard_reads_zeros_and_drops_valid_counts(pblk):
    pblk.write_sectors(0, stamp(0, 64))
    pblk.flush()
    line = int(pblk.l2p.map[0]) // pblk.lg.sec_per_line
    before = int(pblk.l2p.vsc[line])
    pblk.discard_sectors(8, 16)
    assert not pblk.read_sectors(8, 16).any()
    assert (pblk.read_sectors(0, 8) == stamp(0, 8)).all()
    assert int(pblk.l2p.vsc[line]) == before - 16
    pblk.write_sectors(40, stamp(40, 4))             # discard of buffered sectors too
    pblk.discard(40 * SECTOR, 4 * SECTOR)
    assert not pblk.read_sectors(40, 4).any()
    pblk.flush()
    assert not pblk.read_sectors(40, 4).any()


def test_flush_pads_the_open_write_unit_and_puts_it_on_media(pblk):
    pblk.write_sectors(0, stamp(0, 3))
    pblk.flush()
    st = pblk.stats()
    assert st["pad_sectors"] == 5 and st["user_sectors"] == 3
    assert st["write_buffer"]["buffered"] == 0
    assert (pblk.l2p.map[:3] >= 0).all()
    assert (pblk.read_sectors(0, 3) == stamp(0, 3)).all()
    pblk.flush()                                    # nothing buffered: nothing padded
    assert pblk.stats()["pad_sectors"] == 5


def test_byte_granular_helpers_read_modify_write(pblk):
    pblk.write(100, b"hello")
    pblk.write(SECTOR - 2, b"abcd")                 # straddles sectors 0 and 1
    assert bytes(pblk.read(100, 5)) == b"hello"
    assert bytes(pblk.read(SECTOR - 2, 4)) == b"abcd"
    assert not pblk.read(0, 100).any()


def test_misuse_is_refused(pblk):
    n = pblk.size // SECTOR
    with pytest.raises(PblkError):
        pblk.write_sectors(0, np.zeros(100, np.uint8))
    with pytest.raises(PblkError):
        pblk.write_sectors(n - 1, np.zeros(2 * SECTOR, np.uint8))
    with pytest.raises(PblkError):
        pblk.read_sectors(-1, 1)
    with pytest.raises(PblkError):
        pblk.discard_sectors(n, 1)


def test_closed_pblk_refuses_io_and_leaves_the_device_open(pblk):
    pblk.write_sectors(0, stamp(0, 1))
    pblk.close()
    pblk.close()                                    # idempotent
    with pytest.raises(PblkError):
        pblk.read_sectors(0, 1)
    with pytest.raises(PblkError):
        pblk.flush()
    p2 = Pblk(pblk.dev)                             # same device, new instance: data is there
    assert (p2.read_sectors(0, 1) == stamp(0, 1)).all()


def test_stats_are_json_and_count_what_happened(pblk):
    pblk.write_sectors(0, stamp(0, 700))
    pblk.flush()
    st = json.loads(json.dumps(pblk.stats()))
    assert st["user_sectors"] == 700 and st["gc_sectors"] == 0
    assert st["write_amplification"] == pytest.approx((700 + st["pad_sectors"]) / 700, abs=1e-4)
    assert st["open_lines"] == 1 and st["closed_lines"] == 1
    assert st["free_lines"] + st["open_lines"] + st["closed_lines"] + st["bad_lines"] == 16
    assert st["device"]["commands"] > 0
    assert st["bad_blocks"] == {"factory": 0, "grown": 0}
    assert st["valid_sectors"] == 700


def test_background_drains_whole_units_and_reports_when_idle(pblk):
    pblk.write_sectors(0, stamp(0, 20))
    assert pblk.background() is False               # 16 written, 4 left: less than a unit
    assert pblk.rb.count == 4
    assert pblk.background() is False


def test_lun_subrange_touches_only_its_luns(make_pblk):
    p = make_pblk(lun_begin=1, lun_end=2)           # global LUNs 1, 2 = (ch0, lun1), (ch1, lun0)
    assert p.lg.luns == [(0, 1), (1, 0)]
    assert p.size == (2 * 16 * 80 // 100) * 128 * SECTOR
    p.write_sectors(0, stamp(0, 600))
    p.flush()
    assert (p.read_sectors(0, 600) == stamp(0, 600)).all()
    for ch, lun in [(0, 0), (1, 1)]:
        with pytest.raises(NvmError) as e:
            p.dev.addr_read([Addr(ch, lun, 0, blk, 0, 0) for blk in range(16)])
        assert e.value.status == 0x42FF and e.value.failed == (1 << 16) - 1


def test_two_targets_on_disjoint_lun_ranges_keep_apart(make_pblk):
    a = make_pblk(lun_begin=0, lun_end=1)
    b = Pblk(a.dev, 2, 3)
    a.write_sectors(0, stamp(0, 300, tag=1))
    b.write_sectors(0, stamp(0, 300, tag=2))
    a.close()
    b.close()
    a2, b2 = Pblk(a.dev, 0, 1), Pblk(a.dev, 2, 3)
    assert (a2.read_sectors(0, 300) == stamp(0, 300, tag=1)).all()
    assert (b2.read_sectors(0, 300) == stamp(0, 300, tag=2)).all()
