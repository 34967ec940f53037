"""Zone states and write pointers across power cuts and restarts: what was acknowledged is
there, the write pointer says exactly what is readable, open zones come back closed."""
import numpy as np
import pytest

from oxemu.wire import ZoneState
from oxhost.driver import DriverError

from .conftest import meta_of, stamp, versions

ZS, ZCAP = 64, 48
E, IO, EO, C, F = (ZoneState.EMPTY, ZoneState.IMPLICITLY_OPEN, ZoneState.EXPLICITLY_OPEN, ZoneState.CLOSED,
                   ZoneState.FULL)


def write(dev, z, n, version):
    lba = z * ZS + dev.zone(z).written
    lbas = np.arange(lba, lba + n)
    dev.write(lba, stamp(lbas, version), meta_of(lbas, version))
    return lbas


def cut_during(zd, nops, fn, *a):
    """Pull the plug after nops media operations of fn(*a) (the next one is torn); the
    device comes back up."""
    zd.cut_after(nops)
    with pytest.raises(DriverError):
        fn(*a)
    return zd.restart(clean=False)


@pytest.mark.parametrize("nops", [0, 1, 2, 3, 5, 7])
def test_zns_cut_inside_a_write_keeps_acknowledged_data_and_a_prefix_of_the_rest(zd, nops):
    first = write(zd.dev, 0, 13, 1)                              # 13: a unit and a part in the buffer
    dev = cut_during(zd, nops, write, zd.dev, 0, 30, 2)
    z = dev.zone(0)
    assert z.cond == C and 13 <= z.written <= 43
    v = versions(dev.read(0, z.written)[0], np.arange(z.written))
    assert (v[:13] == 1).all() and (v[13:] == 2).all()           # acknowledged, then a prefix of the cut one
    _, meta = dev.read(0, 13, with_meta=True)
    assert (meta == meta_of(first, 1)).all()
    more = write(dev, 0, ZCAP - z.written, 3)                     # and the zone fills to its capacity
    assert dev.zone(0).cond == F
    assert (versions(dev.read(more[0], more.size)[0], more) == 3).all()


def test_zns_cut_tearing_the_unit_of_buffered_sectors_redoes_it_from_nvram(zd):
    write(zd.dev, 1, 5, 1)                                       # 5 sectors wait in the buffer
    dev = cut_during(zd, 0, write, zd.dev, 1, 3 + 16, 2)         # the unit they complete is torn
    z = dev.zone(1)
    assert z.written >= 8                                        # the whole buffered unit was durable
    v = versions(dev.read(ZS, z.written)[0], np.arange(ZS, ZS + z.written))
    assert (v[:5] == 1).all() and (v[5:] == 2).all()
    write(dev, 1, 8, 3)                                          # the next write redoes the torn unit first
    assert zd.m.stats()["ftl"]["media"]["units_skipped"] == 1
    dev = zd.restart()
    v = versions(dev.read(ZS, 16)[0], np.arange(ZS, ZS + 16))
    assert (v[:5] == 1).all() and (v[5:8] == 2).all() and (v[8:] == 3).all()


def test_zns_cut_inside_a_reset_leaves_the_zone_empty_and_writable(zd):
    write(zd.dev, 2, ZCAP, 1)
    dev = cut_during(zd, 2, zd.dev.reset_zones, 2 * ZS, ZS)     # two plane blocks of four erased
    z = dev.zone(2)
    assert z.cond == E and z.written == 0
    assert not versions(dev.read(2 * ZS, ZCAP)[0], np.arange(2 * ZS, 2 * ZS + ZCAP)).any()
    lbas = write(dev, 2, ZCAP, 2)                                # the erase completes before the write
    assert (versions(dev.read(lbas[0], ZCAP)[0], lbas) == 2).all()


@pytest.mark.parametrize("clean", [True, False])
def test_zns_power_loss_or_shutdown_closes_open_zones(zd, clean):
    dev = zd.dev
    write(dev, 0, 3, 1)                                          # implicitly open, holds data
    dev.open_zones(1 * ZS, ZS)                                   # explicitly open, empty
    dev.open_zones(2 * ZS, ZS)
    write(dev, 2, 9, 1)                                          # explicitly open, holds data
    dev.finish_zones(3 * ZS, ZS)                                 # finished empty
    write(dev, 4, 20, 1)
    dev.finish_zones(4 * ZS, ZS)                                 # finished with data
    dev = zd.restart(clean=clean)
    got = [(z.cond, z.written) for z in dev.report_zones()][:6]
    assert got == [(C, 3), (C, 0), (C, 9), (F, ZCAP), (F, ZCAP), (E, 0)]
    assert zd.mode.zones.n_active == 3 and zd.mode.zones.n_open == 0
    assert (versions(dev.read(4 * ZS, 20)[0], np.arange(4 * ZS, 4 * ZS + 20)) == 1).all()


def test_zns_closed_zones_after_a_restart_still_hold_active_resources(zoned):
    from oxemu import ZnsParams
    zd = zoned(params=ZnsParams(max_open=2, max_active=2))
    write(zd.dev, 0, 1, 1)
    write(zd.dev, 1, 1, 1)
    dev = zd.restart(clean=False)
    from oxemu.wire import Status
    from .conftest import status_of
    assert status_of(write, dev, 2, 1, 1) == Status.ZONE_TOO_MANY_ACTIVE
    write(dev, 0, 1, 2)                                          # a closed zone reopens within its resource
    assert dev.zone(0).cond == IO
