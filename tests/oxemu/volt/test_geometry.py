"""NAND geometry: the SPEC 3 defaults, derived sizes and validation."""
import pytest

from oxemu import Geometry


def test_geometry_defaults_are_the_spec_table():
    g = Geometry()
    assert (g.nchannels, g.nluns, g.nblocks, g.npages, g.nplanes, g.nsectors) == (8, 4, 32, 128, 2, 4)
    assert (g.sector_nbytes, g.oob_nbytes, g.meta_nbytes) == (4096, 1024, 16)
    assert g.page_nbytes == 16 << 10
    assert g.total_luns == 32
    assert g.sectors_per_block == 1024                    # a 4 MiB chunk
    assert g.data_nbytes == 4 << 30
    assert g.data_nbytes + g.oob_total_nbytes == 4352 << 20


def test_geometry_ppa_format_is_the_spec_bit_layout():
    f = Geometry().ppaf
    assert f == dict(sec=(0, 2), pl=(2, 1), pg=(3, 7), blk=(10, 5), lun=(15, 2), ch=(17, 3))
    assert Geometry().ppa_bits == 20


def test_geometry_small_keeps_the_page_shape():
    s, d = Geometry.small(), Geometry()
    assert (s.nchannels, s.nluns, s.nblocks, s.npages) == (2, 2, 8, 16)
    assert (s.nplanes, s.nsectors, s.sector_nbytes) == (d.nplanes, d.nsectors, d.sector_nbytes)
    assert s.data_nbytes == 16 << 20
    assert Geometry.small(nplanes=4).nplanes == 4


@pytest.mark.parametrize("kw", [dict(nchannels=0), dict(npages=0), dict(nplanes=3), dict(nplanes=8),
                                dict(meta_nbytes=512), dict(nblocks=1 << 16), dict(nchannels=256),
                                dict(nsectors=16)], ids=["no-channels", "no-pages", "3-planes", "8-planes",
                                                         "oob-too-small", "u16-blocks", "u8-channels",
                                                         "u16-page-size"])
def test_geometry_rejects_impossible_shapes(kw):
    with pytest.raises(ValueError):
        Geometry(**kw)


def test_geometry_non_power_of_two_fields_round_up_their_ppa_bits():
    f = Geometry(nchannels=3, nblocks=6, npages=12).ppaf
    assert f["ch"][1] == 2 and f["blk"][1] == 3 and f["pg"][1] == 4
