"""The 2.0 chunk access rules and their statuses, through the bus: writes only at the
write pointer in ws_min units, reads below it except the last mw_cunits of an open chunk,
resets of closed chunks only, copies under the write rules, the per-LBA bitmap."""
import numpy as np
import pytest

from oxemu.wire import ChunkState, ChunkOpc, SQE
from oxhost.lightnvm2 import ChunkAddr, LightnvmError, NvmError

from .conftest import SECTOR, SOS, chunk_lbas, fill, oob, pattern

OUT_OF_ORDER, INVALID_RESET, OFFLINE, UNWRITTEN = 0x42F2, 0x42C1, 0x42C0, 0x4287
INVALID_FIELD, LBA_RANGE = 0x4002, 0x4080


def _state(dev, g, p, c):
    d = dev.rprt(ChunkAddr(g, p, c), 1)[0]
    return ChunkState(int(d["cs"])), int(d["wp"])


def _raw(dev, opcode, lbas, *, prp1=0, prp2=0, mptr=0, cdw14=0, cdw15=0, count=None):
    """One vector command built by hand (the LBA list in a fresh guest buffer): (status, bitmap)."""
    drv = dev.driver
    n = len(lbas) if count is None else count
    buf = drv.pool.alloc(8 * max(n, 1))
    try:
        if len(lbas) == 1 and count is None:
            spba = int(lbas[0])
        else:
            buf.array.view("<u8")[:len(lbas)] = lbas
            spba = buf.addr
        sqe = SQE.pack(opcode, 0, 0, 1, 0, 0, mptr, prp1, prp2, spba & 0xFFFFFFFF, spba >> 32, n - 1, 0,
                       cdw14, cdw15)
        c = drv.submit_raw(1, sqe, 0)
        return c.status, c.result
    finally:
        buf.free()


# ---------------------------------------------------------------- writes
def test_write_at_the_write_pointer_moves_it_and_opens_then_closes_the_chunk(dev20):
    g = dev20.geo
    assert _state(dev20, 0, 0, 0) == (ChunkState.FREE, 0)
    fill(dev20, 0, 0, 0, g.ws_opt)
    assert _state(dev20, 0, 0, 0) == (ChunkState.OPEN, g.ws_opt)
    fill(dev20, 0, 0, 0, g.nsectr - g.ws_opt, start=g.ws_opt)
    assert _state(dev20, 0, 0, 0) == (ChunkState.CLOSED, g.nsectr)


def test_write_not_at_the_write_pointer_fails_with_0x42F2_and_changes_nothing(dev20):
    g = dev20.geo
    fill(dev20, 0, 0, 0, g.ws_min)
    for start in (0, 2 * g.ws_min):                       # behind it, and ahead of it
        lbas = chunk_lbas(dev20, 0, 0, 0, start, g.ws_min)
        with pytest.raises(NvmError) as ei:
            dev20.write(lbas, pattern(lbas))
        assert ei.value.status == OUT_OF_ORDER and ei.value.failed == (1 << g.ws_min) - 1
    assert _state(dev20, 0, 0, 0) == (ChunkState.OPEN, g.ws_min)


def test_write_of_part_of_a_ws_min_unit_is_invalid_field(dev20):
    lbas = chunk_lbas(dev20, 0, 0, 0, 0, dev20.geo.ws_min // 2)
    with pytest.raises(NvmError) as ei:
        dev20.write(lbas, pattern(lbas))
    assert ei.value.status == INVALID_FIELD
    assert _state(dev20, 0, 0, 0) == (ChunkState.FREE, 0)


def test_write_to_a_closed_chunk_is_out_of_order(dev20):
    g = dev20.geo
    fill(dev20, 0, 1, 2, g.nsectr)
    lbas = chunk_lbas(dev20, 0, 1, 2, 0, g.ws_min)
    with pytest.raises(NvmError) as ei:
        dev20.write(lbas, pattern(lbas))
    assert ei.value.status == OUT_OF_ORDER


def test_one_write_may_fill_several_chunks_each_at_its_write_pointer(dev20):
    g = dev20.geo
    fill(dev20, 1, 0, 4, g.ws_min)
    lbas = np.concatenate([chunk_lbas(dev20, 0, 0, 1, 0, g.ws_opt), chunk_lbas(dev20, 1, 0, 4, g.ws_min, g.ws_min),
                           chunk_lbas(dev20, 0, 0, 1, g.ws_opt, g.ws_min)])
    dev20.write(lbas, pattern(lbas, 3), meta=oob(lbas, 3))
    assert _state(dev20, 0, 0, 1) == (ChunkState.OPEN, g.ws_opt + g.ws_min)
    assert _state(dev20, 1, 0, 4) == (ChunkState.OPEN, 2 * g.ws_min)


def test_a_write_that_breaks_a_rule_anywhere_writes_nothing(dev20):
    g = dev20.geo
    lbas = np.concatenate([chunk_lbas(dev20, 0, 0, 1, 0, g.ws_min), chunk_lbas(dev20, 0, 0, 2, g.ws_min, g.ws_min)])
    with pytest.raises(NvmError) as ei:
        dev20.write(lbas, pattern(lbas))
    assert ei.value.status == OUT_OF_ORDER and ei.value.failed == (1 << (2 * g.ws_min)) - 1
    assert _state(dev20, 0, 0, 1) == (ChunkState.FREE, 0)


# ---------------------------------------------------------------- reads
def test_reads_of_the_last_mw_cunits_of_an_open_chunk_fail_with_0x4287_until_more_is_written(dev20):
    g = dev20.geo
    lbas = fill(dev20, 0, 0, 0, g.mw_cunits, seed=5)
    with pytest.raises(NvmError) as ei:
        dev20.read(lbas)
    assert ei.value.status == UNWRITTEN and (ei.value.statuses == UNWRITTEN).all()
    fill(dev20, 0, 0, 0, g.ws_min, start=g.mw_cunits)           # one more unit: the first unit leaves the cache
    with pytest.raises(NvmError) as ei:
        dev20.read(lbas, with_meta=True)
    e = ei.value
    assert (e.statuses[:g.ws_min] == 0).all() and (e.statuses[g.ws_min:] == UNWRITTEN).all()
    assert e.failed == ((1 << g.mw_cunits) - 1) & ~((1 << g.ws_min) - 1)
    assert (e.data[:g.ws_min * SECTOR] == pattern(lbas, 5)[:g.ws_min * SECTOR]).all()
    assert (e.meta[:g.ws_min * SOS] == oob(lbas, 5)[:g.ws_min * SOS]).all()
    assert not e.data[g.ws_min * SECTOR:].any()                  # never stale bytes for a failed LBA


def test_a_closed_chunk_reads_back_every_sector_with_its_oob(dev20):
    g = dev20.geo
    lbas = fill(dev20, 1, 1, 7, g.nsectr, seed=9)
    data, meta = dev20.read(lbas, with_meta=True)
    assert (data == pattern(lbas, 9)).all() and (meta == oob(lbas, 9)).all()


def test_reads_at_or_past_the_write_pointer_fail_with_0x4287(dev20):
    g = dev20.geo
    fill(dev20, 0, 0, 0, g.nsectr - g.ws_min)
    with pytest.raises(NvmError) as ei:
        dev20.read(chunk_lbas(dev20, 0, 0, 0, g.nsectr - g.ws_min, 1))
    assert ei.value.status == UNWRITTEN
    with pytest.raises(NvmError) as ei:
        dev20.read(chunk_lbas(dev20, 0, 1, 0, 0, 3))                    # a free chunk
    assert ei.value.status == UNWRITTEN and ei.value.failed == 0b111


def test_a_single_sector_read_follows_the_same_rules_as_a_vector(dev20):
    g = dev20.geo
    lbas = fill(dev20, 0, 0, 0, g.nsectr, seed=2)
    out = dev20.buf_alloc(SECTOR)
    data, _ = dev20.read(lbas[17:18], out=out)
    assert (data == pattern(lbas, 2)[17 * SECTOR:18 * SECTOR]).all()
    with pytest.raises(NvmError) as ei:
        dev20.read(chunk_lbas(dev20, 0, 0, 1, 0, 1), out=out)
    assert ei.value.status == UNWRITTEN


def test_the_completion_bitmap_names_exactly_the_failed_lbas_of_64(dev20):
    g = dev20.geo
    fill(dev20, 0, 0, 0, g.nsectr)
    lbas = np.concatenate([chunk_lbas(dev20, 0, 0, 0, 0, 40), chunk_lbas(dev20, 0, 0, 1, 0, 24)])
    rng = np.random.default_rng(1)
    order = rng.permutation(64)
    buf = dev20.buf_alloc(64 * SECTOR)
    prp1, prp2 = dev20.driver.prps(1, 0, dev20.driver.guest_addr(buf), 64 * SECTOR)
    st, bitmap = _raw(dev20, ChunkOpc.VECTOR_READ, lbas[order], prp1=prp1, prp2=prp2)
    want = sum(1 << i for i, j in enumerate(order.tolist()) if j >= 40)
    assert st == UNWRITTEN and bitmap == want


# ---------------------------------------------------------------- resets
def test_reset_of_a_free_chunk_is_invalid_reset_0x42C1(dev20):
    with pytest.raises(NvmError) as ei:
        dev20.erase([ChunkAddr(0, 0, 5)])
    assert ei.value.status == INVALID_RESET


def test_reset_of_an_open_chunk_is_invalid_reset_too(dev20):
    fill(dev20, 0, 0, 5, dev20.geo.ws_min)
    with pytest.raises(NvmError) as ei:
        dev20.erase([ChunkAddr(0, 0, 5)])
    assert ei.value.status == INVALID_RESET
    assert _state(dev20, 0, 0, 5)[0] == ChunkState.OPEN


def test_reset_of_a_closed_chunk_frees_it_and_returns_its_descriptor(dev20):
    g = dev20.geo
    fill(dev20, 1, 0, 2, g.nsectr)
    desc = dev20.erase([ChunkAddr(1, 0, 2)], with_descriptors=True)
    assert desc["cs"][0] == ChunkState.FREE and desc["wp"][0] == 0 and desc["cnlb"][0] == g.nsectr
    assert desc["slba"][0] == dev20.lbas([ChunkAddr(1, 0, 2)])[0]
    assert _state(dev20, 1, 0, 2) == (ChunkState.FREE, 0)
    fill(dev20, 1, 0, 2, g.ws_min)                                   # writable from 0 again


def test_a_reset_of_several_chunks_reports_each_in_the_bitmap(dev20):
    g = dev20.geo
    fill(dev20, 0, 0, 1, g.nsectr)
    fill(dev20, 0, 0, 3, g.nsectr)
    with pytest.raises(NvmError) as ei:
        dev20.erase([ChunkAddr(0, 0, 1), ChunkAddr(0, 0, 2), ChunkAddr(0, 0, 3)])
    assert ei.value.failed == 0b010 and ei.value.status == INVALID_RESET
    assert _state(dev20, 0, 0, 1)[0] == _state(dev20, 0, 0, 3)[0] == ChunkState.FREE


# ---------------------------------------------------------------- copy
def test_copy_moves_data_and_oob_inside_the_device_under_the_write_rules(dev20):
    g = dev20.geo
    src = fill(dev20, 0, 0, 0, g.nsectr, seed=4)
    dst = chunk_lbas(dev20, 1, 1, 1, 0, g.ws_opt)
    dma = dev20.driver.m.dma
    before = (dma.bytes_read, dma.bytes_written)
    dev20.copy(src[g.ws_min:g.ws_min + g.ws_opt], dst)
    assert (dma.bytes_read, dma.bytes_written) == (before[0] + 2 * 8 * g.ws_opt, before[1])   # the lists only
    fill(dev20, 1, 1, 1, g.nsectr - g.ws_opt, start=g.ws_opt)
    data, meta = dev20.read(dst, with_meta=True)
    want = slice(g.ws_min, g.ws_min + g.ws_opt)
    assert (data.reshape(-1, SECTOR) == pattern(src, 4).reshape(-1, SECTOR)[want]).all()
    assert (meta.reshape(-1, SOS) == oob(src, 4).reshape(-1, SOS)[want]).all()
    with pytest.raises(NvmError) as ei:                                  # a destination not at its pointer
        dev20.copy(src[:g.ws_min], chunk_lbas(dev20, 1, 1, 2, g.ws_min, g.ws_min))
    assert ei.value.status == OUT_OF_ORDER


def test_copy_of_a_source_that_cannot_be_read_writes_nothing(dev20):
    g = dev20.geo
    dst = chunk_lbas(dev20, 1, 1, 1, 0, g.ws_min)
    with pytest.raises(NvmError) as ei:
        dev20.copy(chunk_lbas(dev20, 0, 0, 0, 0, g.ws_min), dst)           # the source chunk is free
    assert ei.value.status == UNWRITTEN
    assert _state(dev20, 1, 1, 1) == (ChunkState.FREE, 0)


# ---------------------------------------------------------------- malformed commands
def test_more_than_64_lbas_is_invalid_field(dev20):
    st, _ = _raw(dev20, ChunkOpc.VECTOR_READ, list(range(65)))
    assert st == INVALID_FIELD


def test_an_lba_outside_the_format_is_lba_out_of_range(dev20):
    bad = 1 << dev20.geo.lbaf.nbits
    st, bitmap = _raw(dev20, ChunkOpc.VECTOR_RESET, [bad])
    assert st == LBA_RANGE and bitmap == 1
    last = dev20.lbas([ChunkAddr(0, 0, 0, dev20.geo.nsectr - 1)])[0]
    if dev20.geo.nsectr < (1 << dev20.geo.lbaf.sectr_len):
        st, _ = _raw(dev20, ChunkOpc.VECTOR_READ, [int(last) + 1])
        assert st == LBA_RANGE


def test_an_lba_list_outside_guest_ram_is_a_data_transfer_error(dev20):
    drv = dev20.driver
    sqe = SQE.pack(ChunkOpc.VECTOR_RESET, 0, 0, 1, 0, 0, 0, 0, 0, 0xFFFFF000, 0xF, 3, 0, 0, 0)
    assert drv.submit_raw(1, sqe).status == 0x0004


def test_the_library_refuses_addresses_outside_the_geometry_before_sending(dev20):
    from oxhost.lightnvm2 import AddrError
    sent = dev20.driver.stats["commands"]
    with pytest.raises(AddrError) as ei:
        dev20.erase([ChunkAddr(0, 0, dev20.geo.nchunk)])
    assert ei.value.mask == 4 and dev20.driver.stats["commands"] == sent
    with pytest.raises(LightnvmError):
        dev20.copy(chunk_lbas(dev20, 0, 0, 0, 0, 2), chunk_lbas(dev20, 0, 0, 1, 0, 3))


def test_io_opcodes_of_other_interfaces_are_invalid_opcode(dev20):
    for op in (0x01, 0x02, 0x7D):
        st, _ = _raw(dev20, op, [0])
        assert st == 0x4001
