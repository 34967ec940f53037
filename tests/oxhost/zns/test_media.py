"""ZoneMedia: the FTL API's Media over zones, through the bus -- a zone an erase block, a page
a write unit at the write pointer, the OOB the LBAs' metadata."""
import numpy as np
import pytest

from oxemu import Faults, Geometry, Machine, ZnsParams
from oxemu.wire import ZoneState
from oxftl import MediaUsageError, ReadOnly, SectorStatus
from oxhost.zns import ZonedDevice, ZoneMedia

GEO = Geometry.small(nblocks=4, npages=4)      # 8 zones of 64 LBAs, 48 writable: 6 pages of 8 sectors


@pytest.fixture
def zmedia(make_machine):
    made = []

    def make(units=2, **kw):
        kw.setdefault("geometry", GEO)
        d = ZonedDevice.open(make_machine(lnvm=0, spec="zns", **kw))
        made.append(d)
        return ZoneMedia(d, units=units)
    yield make
    for d in made:
        d.close()


def _page(media, fill):
    g = media.geometry
    return np.full(g.page_nbytes, fill, np.uint8), np.full(g.sectors * g.oob_nbytes, fill, np.uint8)


def test_zone_media_geometry_deals_zones_to_units(zmedia):
    m = zmedia(units=2)
    g = m.geometry
    assert (g.units, g.blocks, g.pages, g.sectors, g.sector_nbytes, g.oob_nbytes) == (2, 4, 6, 8, 4096, 16)
    assert m.zone_of([0, 1, 4, 5]).tolist() == [0, 2, 1, 3]            # unit 0: zones 0, 2, ...; unit 1: 1, 3, ...
    assert m.block_of([0, 2, 1, 3]).tolist() == [0, 1, 4, 5]


def test_zone_media_programs_at_the_write_pointer_and_reads_empty_past_it(zmedia):
    m = zmedia()
    g = m.geometry
    b = g.block(1, 2)                                                   # zone 5
    data, oob = _page(m, 7)
    assert m.program([g.page(b, 0)], data, oob).all()
    secs = g.sector(g.page(b, 0)) + np.arange(g.sectors + 1)
    got, goob, st = m.read(secs)
    assert (st[:-1] == SectorStatus.OK).all() and st[-1] == SectorStatus.EMPTY
    assert (got[:g.page_nbytes] == 7).all() and not got[g.page_nbytes:].any() and (goob[:128] == 7).all()
    assert not m.program([g.page(b, 2)], data, oob)[0]                  # page 1 is next, not 2
    assert m.dev.zone(5).written == 8                                   # nothing written
    assert m.erase([b]).all() and m.dev.zone(5).cond == ZoneState.EMPTY
    assert (m.read(secs)[2] == SectorStatus.EMPTY).all()


def test_zone_media_finishes_a_zone_whose_capacity_leaves_less_than_a_page(zmedia):
    m = zmedia(zns=ZnsParams(zone_capacity_bytes=20 * 4096))            # 2 pages and 4 LBAs
    g = m.geometry
    assert g.pages == 2
    data, oob = _page(m, 1)
    assert m.program([g.page(0, 0), g.page(0, 1)], np.tile(data, 2), np.tile(oob, 2)).all()
    assert m.dev.zone(0).cond == ZoneState.FULL                          # no resource held by the tail


def test_zone_media_finishes_the_least_recently_written_zone_for_room(zmedia):
    m = zmedia(units=1, zns=ZnsParams(max_open=2, max_active=2))
    g = m.geometry
    data, oob = _page(m, 3)
    for b in (0, 1, 2):                                                 # a third zone: over the limit
        assert m.program([g.page(b, 0)], data, oob).all()
    assert [m.dev.zone(z).cond for z in range(3)] == [ZoneState.FULL, ZoneState.IMPLICITLY_OPEN,
                                                      ZoneState.IMPLICITLY_OPEN]
    assert (m.read(g.sector(g.page(0, 0)) + np.arange(8))[0] == 3).all()     # its data kept


def test_zone_media_reads_a_sector_the_media_cannot_read_as_unreadable(zmedia, make_machine):
    faults = Faults()
    d = ZonedDevice.open(make_machine(lnvm=0, spec="zns", geometry=GEO, faults=faults))
    try:
        m = ZoneMedia(d, units=2)
        data, oob = _page(m, 9)
        assert m.program([0], data, oob).all()
        faults.read_error_rate = 1.0
        got, _, st = m.read(np.arange(8))
        assert (st == SectorStatus.UNREADABLE).all() and not got.any()
    finally:
        d.close()


def test_zone_media_mark_bad_takes_a_zone_out_of_use(zmedia):
    m = zmedia()
    data, oob = _page(m, 1)
    assert m.program([0], data, oob).all()
    m.mark_bad([0])
    assert m.bad_blocks()[0] and m.dev.zone(0).cond == ZoneState.FULL


def test_zone_media_refuses_misuse_unsent(zmedia):
    m = zmedia()
    g = m.geometry
    sent = m.dev.driver.stats["commands"]
    with pytest.raises(MediaUsageError):
        m.program([g.total_pages], *_page(m, 0))
    with pytest.raises(MediaUsageError):
        m.program([0], np.zeros(10, np.uint8))
    with pytest.raises(MediaUsageError):
        m.read([g.total_sectors])
    assert m.dev.driver.stats["commands"] == sent


def test_zone_media_on_write_protected_media_raises_read_only(tmp_path):
    disk = str(tmp_path / "z.disk")
    with Machine(lnvm=0, spec="zns", volt=0, disk=disk, geometry=GEO) as mach:
        d = ZonedDevice.open(mach)
        ZoneMedia(d).program([0], *_page(ZoneMedia(d), 1))
        d.close()
    with Machine(lnvm=0, spec="zns", volt=0, disk=disk, geometry=GEO, readonly=True) as mach:
        d = ZonedDevice.open(mach)
        try:
            m = ZoneMedia(d)
            with pytest.raises(ReadOnly):
                m.program([1], *_page(m, 2))
            with pytest.raises(ReadOnly):
                m.erase([0])
            assert (m.read(np.arange(8))[0] == 1).all()
        finally:
            d.close()
