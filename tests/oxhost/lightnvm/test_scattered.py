"""liblightnvm scattered reads: random subsets of stamped sectors, read back by address."""
import numpy as np
import pytest

from oxhost.lightnvm import PMode

from tests.helpers import block_planes, page_addrs, stamp_meta, stamp_sectors

BLOCKS = (1, 6)


@pytest.fixture
def stamped(dev):
    """Every sector of blocks 1 and 6 on every LUN holds its own address as a stamp."""
    g = dev.geo
    addrs = []
    for ch in range(g.nchannels):
        for lun in range(g.nluns):
            for blk in BLOCKS:
                dev.addr_erase(block_planes(ch, lun, blk, g.nplanes))
                block = [a for pg in range(g.npages) for a in page_addrs(ch, lun, blk, pg, g.nplanes)]
                dev.addr_write(block, stamp_sectors(block, seed=blk), meta=stamp_meta(block))
                addrs += block
    return dev, addrs


def _stamp_of(sector: np.ndarray) -> int:
    return int.from_bytes(sector[:8].tobytes(), "little")


@pytest.mark.parametrize("naddrs", [1, 2, 64, 200])
@pytest.mark.parametrize("pmode", [PMode.SNGL, PMode.DUAL], ids=["single", "dual"])
def test_scattered_read_returns_each_addresses_own_stamp(stamped, naddrs, pmode):
    dev, addrs = stamped
    sec, sos = dev.geo.sector_nbytes, dev.geo.meta_nbytes
    rng = np.random.default_rng(naddrs)
    for _ in range(10):
        pick = [addrs[i] for i in rng.choice(len(addrs), naddrs, replace=False)]
        data, meta = dev.addr_read(pick, pmode=pmode, with_meta=True)
        want_meta = stamp_meta(pick)
        for i, a in enumerate(pick):
            assert _stamp_of(data[i * sec:(i + 1) * sec]) == a.val, f"sector {i} ({a}) holds another stamp"
        assert np.array_equal(meta, want_meta)
        assert meta.size == naddrs * sos


def test_scattered_read_of_the_same_address_twice_returns_it_twice(stamped):
    dev, addrs = stamped
    a = addrs[37]
    data, _ = dev.addr_read([a, addrs[5], a])
    sec = dev.geo.sector_nbytes
    assert _stamp_of(data[:sec]) == _stamp_of(data[2 * sec:]) == a.val
    assert np.array_equal(data[:sec], data[2 * sec:])
