"""The 2.0 geometry command (0xE2, major version 2) and the chunk information log (0xCA)."""
import pytest

from oxemu import Geometry, NandTiming
from oxemu.wire import AdminOpc, ChunkState, ChunkType, Geometry20, Mccap
from oxhost.lightnvm2 import ChunkAddr, LightnvmError, NotOcssd2

from .conftest import fill


def test_geometry_of_the_default_media_is_8_groups_4_pus_32_chunks_of_1024_sectors(open20):
    dev = open20(geometry=Geometry())
    g = dev.geo
    assert (g.npugrp, g.npunit, g.nchunk, g.nsectr) == (8, 4, 32, 1024)
    assert (g.nbytes, g.nbytes_oob) == (4096, 16)
    assert (g.ws_min, g.ws_opt, g.mw_cunits) == (8, 16, 32)        # a page on both planes; a page pair
    assert (g.lbaf.sectr_len, g.lbaf.chunk_len, g.lbaf.punit_len, g.lbaf.pugrp_len) == (10, 5, 2, 3)
    assert (g.lbaf.chunk_off, g.lbaf.punit_off, g.lbaf.pugrp_off) == (10, 15, 17)
    assert g.mccap == Mccap.VECTOR_COPY and g.wit == 10
    assert (g.maxoc, g.maxocpu) == (1024, 32)
    nand = NandTiming()
    assert g.timings_ns == dict(trdt=nand.t_read_ns, trdm=nand.t_read_max_ns, twrt=nand.t_prog_ns,
                                twrm=nand.t_prog_max_ns, tcrst=nand.t_erase_ns, tcrsm=nand.t_erase_max_ns)
    assert g.tbytes == Geometry().data_nbytes


def test_geometry_structure_starts_with_major_version_2_where_1_2_has_ver_id(dev20):
    buf = dev20.driver.pool.alloc(4096)
    c = dev20.driver.admin(AdminOpc.NVM_IDENTITY, nsid=1, prp1=buf.addr, nbytes=4096)
    raw = Geometry20.from_buffer_copy(bytes(buf.array))
    assert c.status == 0 and (raw.mjr, raw.mnr) == (2, 0)


def test_a_2_0_library_refuses_a_1_2_device_and_says_which_it_is(make_machine):
    from oxhost.lightnvm2 import Device20
    with pytest.raises(NotOcssd2, match="1.x, not 2.0"):
        Device20.open(make_machine(spec="1.2"))


def test_bad_block_table_commands_do_not_exist_in_2_0(dev20):
    buf = dev20.driver.pool.alloc(4096)
    c = dev20.driver.admin(AdminOpc.NVM_GET_BBT, nsid=1, prp1=buf.addr)
    assert c.status == 0x4001                      # invalid opcode: 2.0 reports offline chunks instead


def test_chunk_report_lists_every_chunk_free_sequential_with_its_start_lba(dev20):
    g = dev20.geo
    r = dev20.rprt()
    assert r.size == g.nchunks
    assert (r["cs"] == ChunkState.FREE).all() and (r["ct"] == ChunkType.SEQ_WRITE).all()
    assert (r["cnlb"] == g.nsectr).all() and (r["wp"] == 0).all() and (r["wli"] == 0).all()
    want = [dev20.lbas([ChunkAddr(gr, pu, c)])[0] for gr in range(g.npugrp) for pu in range(g.npunit)
            for c in range(g.nchunk)]
    assert r["slba"].tolist() == [int(v) for v in want]


def test_chunk_report_honours_log_page_offsets(dev20):
    fill(dev20, 1, 1, 3, dev20.geo.ws_min)
    whole = dev20.rprt()
    part = dev20.rprt(ChunkAddr(1, 1, 3), 2)
    first = (1 * dev20.geo.npunit + 1) * dev20.geo.nchunk + 3
    assert part.tobytes() == whole[first:first + 2].tobytes()
    assert part["cs"][0] == ChunkState.OPEN and part["wp"][0] == dev20.geo.ws_min
    assert part["cs"][1] == ChunkState.FREE


def test_chunk_report_of_the_default_media_spans_several_log_page_reads(open20):
    dev = open20(geometry=Geometry())
    r = dev.rprt()                                  # 1,024 descriptors: 32 KiB, in pieces
    assert r.size == 8 * 4 * 32 and r["slba"][-1] == dev.lbas([ChunkAddr(7, 3, 31)])[0]


def test_chunk_report_beyond_the_device_is_refused_before_anything_is_sent(dev20):
    with pytest.raises(LightnvmError):
        dev20.rprt(ChunkAddr(1, 1, 7), 2)


def test_log_page_offset_past_the_end_of_the_chunk_log_is_invalid_field(dev20):
    drv = dev20.driver
    buf = drv.pool.alloc(4096)
    size = dev20.geo.nchunks * 32
    c = drv.admin(AdminOpc.GET_LOG_PAGE, nsid=1, prp1=buf.addr, cdw10=0xCA | (7 << 16), cdw12=size + 32)
    assert c.status == 0x4002
    c = drv.admin(AdminOpc.GET_LOG_PAGE, nsid=1, prp1=buf.addr, cdw10=0xCA | (7 << 16), cdw12=2)
    assert c.status == 0x4002                       # not dword aligned


def test_namespace_reports_4k_lbas_with_16_bytes_of_metadata(dev20):
    from oxemu.wire import Cns, IdNs
    ns = IdNs.from_buffer_copy(dev20.driver.identify(Cns.NAMESPACE, nsid=1))
    assert ns.vs[0] == 1 and ns.lbaf[0].ds == 12 and ns.lbaf[0].ms == 16
    assert ns.nsze == Geometry.small().total_sectors


def test_2_0_mode_needs_an_open_channel_machine(make_machine):
    with pytest.raises(ValueError, match="lnvm=1"):
        make_machine(lnvm=0, spec="2.0")

