"""The Media contract on both sides: the same calls, the same answers, the NAND rules held,
misuse refused before anything reaches the device."""
import numpy as np
import pytest

from oxemu import Geometry, Machine
from oxemu.device.plugin import DeviceMedia
from oxftl import MediaUsageError, SectorStatus
from oxhost.ftl import ChunkMedia, HostMedia
from oxhost.lightnvm import Device
from oxhost.lightnvm2 import Device20

GEO = Geometry.small()


@pytest.fixture(params=["host", "host+2.0", "device"])
def media(request, make_machine):
    if request.param == "host":
        m = make_machine(lnvm=1, geometry=GEO)
        dev = Device.open(m)
        yield HostMedia(dev, 0, GEO.total_luns - 1)
        dev.close()
    elif request.param == "host+2.0":
        m = make_machine(lnvm=1, geometry=GEO, spec="2.0")
        dev = Device20.open(m)
        yield ChunkMedia(dev, 0, GEO.total_luns - 1)
        dev.close()
    else:
        m = make_machine(lnvm=1, geometry=GEO)           # the device's own VOLT, no host in between
        yield DeviceMedia(m.device.mode.core)


def _page(media, fill):
    g = media.geometry
    return np.full(g.page_nbytes, fill, np.uint8), np.full(g.sectors * g.oob_nbytes, fill, np.uint8)


def test_media_geometry_is_the_devices(media):
    g = media.geometry
    assert (g.units, g.blocks, g.pages, g.sectors, g.sector_nbytes, g.oob_nbytes) == \
        (GEO.total_luns, GEO.nblocks, GEO.npages, GEO.nplanes * GEO.nsectors, 4096, 16)
    assert g.unit_channels == tuple(u // GEO.nluns for u in range(GEO.total_luns))


def test_media_program_then_read_returns_data_and_oob_and_empty_after(media):
    g = media.geometry
    b = g.block(1, 3)
    assert media.erase([b]).all()
    data, oob = _page(media, 7)
    assert media.program([g.page(b, 0)], data, oob).all()
    secs = g.sector(g.page(b, 0)) + np.arange(g.sectors + 1)     # the page, and the next page's first
    got, goob, st = media.read(secs)
    assert (st[:-1] == SectorStatus.OK).all() and st[-1] == SectorStatus.EMPTY
    assert (got[:g.page_nbytes] == 7).all() and not got[g.page_nbytes:].any()
    assert (goob[:g.sectors * 16] == 7).all()
    assert media.counters["pages_programmed"] == 1 and media.counters["sectors_read"] == g.sectors + 1


def test_media_program_out_of_order_fails_and_writes_nothing(media):
    g = media.geometry
    b = g.block(0, 2)
    media.erase([b])
    data, oob = _page(media, 1)
    assert not media.program([g.page(b, 3)], data, oob)[0]           # page 0 is next, not 3
    _, _, st = media.read([g.sector(g.page(b, 3))])
    assert st[0] != SectorStatus.OK


def test_media_refuses_misuse_before_anything_is_sent(media):
    g = media.geometry
    with pytest.raises(MediaUsageError, match="block address outside"):
        media.erase([g.total_blocks])
    with pytest.raises(MediaUsageError, match="needs .* bytes of data"):
        media.program([0], np.zeros(10, np.uint8))
    with pytest.raises(MediaUsageError, match="sector address outside"):
        media.read([-1])
    assert media.counters["erases"] == 0


def test_media_marks_bad_blocks_for_good(media):
    g = media.geometry
    assert not media.bad_blocks().any()
    media.mark_bad([g.block(1, 1)])
    bad = media.bad_blocks()
    assert bad[g.block(1, 1)] and bad.sum() == 1
