"""Zone append ordering: appends to one zone rung in together land at distinct LBAs, each
returned in its own completion, and each LBA holds the data of the append that named it."""
import numpy as np

from oxemu.wire import NvmOpc

from .conftest import SECTOR, meta_of, stamp


def test_zns_appends_in_one_doorbell_land_at_distinct_lbas_each_returned(zd):
    dev = zd.dev
    sizes = [1, 3, 2, 5, 1, 4, 2]                                # 18 sectors: units fill part way and over
    datas = [stamp(np.zeros(k, np.int64), v + 1) for v, k in enumerate(sizes)]    # LBA unknown until done
    metas = [meta_of(np.zeros(k, np.int64), v + 1) for v, k in enumerate(sizes)]
    bells = dev.driver.stats["doorbells"]
    lbas = dev.append_many(3, datas, metas)
    assert dev.driver.stats["doorbells"] == bells + 1            # one doorbell for all seven
    spans = sorted((lba, lba + k) for lba, k in zip(lbas, sizes))
    assert spans[0][0] == 3 * 64 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))   # no overlap, no gap
    assert len(set(lbas)) == len(sizes) and dev.zone(3).wp == 3 * 64 + sum(sizes)
    for v, (lba, k) in enumerate(zip(lbas, sizes)):                # an append's data where it says
        data, meta = dev.read(lba, k, with_meta=True)
        assert (data == datas[v]).all() and (meta == metas[v]).all()


def test_zns_appends_to_several_zones_in_one_doorbell_each_follow_their_zone(zd):
    dev = zd.dev
    drv = dev.driver
    buf = drv.pool.alloc(8 * SECTOR)
    try:
        cmds = []
        for i, z in enumerate([1, 2, 1, 2, 1]):
            p1, p2 = drv.prps(1, i, buf.addr + i * SECTOR, SECTOR)
            cmds.append((NvmOpc.ZONE_APPEND, 0, 1, 0, p1, p2, z * 64, 0, 0, 0, 0, 0))
        comps = drv.submit(1, cmds)
    finally:
        buf.free()
    assert [c.status for c in comps] == [0] * 5
    assert [c.result for c in comps] == [64, 128, 65, 129, 66]
