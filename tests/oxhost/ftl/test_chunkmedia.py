"""ChunkMedia: the FTL API's Media on Open-Channel SSD 2.0. What 2.0 adds -- the device's
write cache, resets of closed chunks only, device-owned bad blocks -- stays out of the
FTL's way, across restarts too."""
import numpy as np
import pytest

from oxemu import Faults, Geometry, Machine
from oxemu.wire import ChunkState
from oxftl import SectorStatus
from oxhost.ftl import ChunkMedia
from oxhost.lightnvm2 import Device20, NvmError

GEO = Geometry.small()


@pytest.fixture
def media(make_machine):
    dev = Device20.open(make_machine(geometry=GEO, spec="2.0"))
    yield ChunkMedia(dev, 0, GEO.total_luns - 1)
    dev.close()


def _page(g, fill):
    return np.full(g.page_nbytes, fill, np.uint8), np.full(g.sectors * g.oob_nbytes, fill, np.uint8)


def test_reads_the_device_holds_back_come_from_the_media_s_own_copy(media):
    g = media.geometry
    b = g.block(2, 5)
    for pg in range(2):
        assert media.program([g.page(b, pg)], *_page(g, 10 + pg)).all()
    with pytest.raises(NvmError) as ei:                          # the device's write cache
        media.dev.read(media._lbas(np.array([b]), np.arange(2)))
    assert ei.value.status == 0x4287
    data, oob, st = media.read(g.sector(g.page(b, 0)) + np.arange(2 * g.sectors))
    assert (st == SectorStatus.OK).all() and (data[:g.page_nbytes] == 10).all() and (data[g.page_nbytes:] == 11).all()
    assert (oob[:g.sectors * 16] == 10).all() and media.counters["pad_sectors"] == 0


def test_after_a_restart_the_held_back_sectors_are_padded_out_and_read(tmp_path):
    disk = str(tmp_path / "c.disk")
    with Machine(lnvm=1, volt=0, disk=disk, geometry=GEO, spec="2.0") as m:
        media = ChunkMedia(Device20.open(m), 0, GEO.total_luns - 1)
        g = media.geometry
        media.program([g.page(g.block(1, 3), 0)], *_page(g, 7))
    with Machine(lnvm=1, volt=0, disk=disk, geometry=GEO, spec="2.0") as m:
        media = ChunkMedia(Device20.open(m), 0, GEO.total_luns - 1)
        b = g.block(1, 3)
        data, oob, st = media.read(g.sector(g.page(b, 0)) + np.arange(g.sectors + 1))
        assert (st[:-1] == SectorStatus.OK).all() and (data[:g.page_nbytes] == 7).all()
        assert (oob[:g.sectors * 16] == 7).all()
        mw = media.dev.geo.mw_cunits
        assert media.counters["pad_sectors"] == mw and media.wp[b] == g.sectors + mw
        assert st[-1] == SectorStatus.OK and (oob[g.sectors * 16:] == 0xFF).all()   # filler: all-ones OOB


def test_erasing_a_free_chunk_sends_nothing_and_an_open_one_is_closed_then_reset(media):
    g = media.geometry
    sent = media.dev.driver.stats["commands"]
    assert media.erase([g.block(0, 1)]).all() and media.dev.driver.stats["commands"] == sent
    b = g.block(0, 2)
    media.program([g.page(b, 0)], *_page(g, 1))
    assert media.state[b] == ChunkState.OPEN
    assert media.erase([b]).all()
    assert media.state[b] == ChunkState.FREE and media.counters["pad_sectors"] == g.sectors_per_block - g.sectors
    assert media.program([g.page(b, 0)], *_page(g, 2)).all()


def test_a_failed_program_is_false_reads_unreadable_and_the_chunk_goes_offline_when_retired(make_machine):
    dev = Device20.open(make_machine(geometry=GEO, spec="2.0", faults=Faults(program_fail={(0, 1, 4, 1)})))
    media = ChunkMedia(dev, 0, GEO.total_luns - 1)
    g = media.geometry
    b = g.block(1, 4)                                              # unit 1 = (ch 0, lun 1)
    assert media.program([g.page(b, 0)], *_page(g, 3)).all()
    assert not media.program([g.page(b, 1)], *_page(g, 4))[0]
    for pg in range(2, 6):
        media.program([g.page(b, pg)], *_page(g, pg))
    _, _, st = media.read(g.sector(g.page(b, 1)) + np.arange(g.sectors))
    assert (st == SectorStatus.UNREADABLE).all()
    media.mark_bad([b])
    assert media.state[b] == ChunkState.OFFLINE and media.bad_blocks()[b]


def test_a_chunk_retired_without_a_failure_is_bad_for_the_session(media):
    g = media.geometry
    media.mark_bad([g.block(3, 0)])
    assert media.bad_blocks()[g.block(3, 0)] and not media.erase([g.block(3, 0)])[0]
    assert media.state[g.block(3, 0)] == ChunkState.FREE            # the device keeps no such mark
