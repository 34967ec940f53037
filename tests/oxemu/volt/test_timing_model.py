"""The timing model as a lab instrument: LSB/MSB page times, arrival times set by a harness
(Machine.issue_at) with busy-until stamps keeping contention, and the wear / validity
accessors on Machine."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from oxemu import AppNvmParams, Geometry, NandTiming
from oxemu.volt import MediaOp, TimingModel
from oxhost.lightnvm import Addr, Device, PMode

from tests.helpers import block_planes

MLC = NandTiming(t_read_lsb_ns=30_000, t_read_msb_ns=70_000, t_prog_lsb_ns=100_000, t_prog_msb_ns=900_000)


def test_nand_timing_page_types_default_to_the_plain_times():
    plain = NandTiming()
    assert not plain.paged and plain.read_ns(1) == plain.t_read_ns and plain.prog_ns(0) == plain.t_prog_ns
    assert MLC.paged
    assert (MLC.read_ns(0), MLC.read_ns(1), MLC.prog_ns(2), MLC.prog_ns(3)) == (30_000, 70_000, 100_000, 900_000)
    half = NandTiming(t_prog_msb_ns=500_000)
    assert half.prog_ns(0) == half.t_prog_ns and half.prog_ns(1) == 500_000


def test_timing_model_charges_lsb_and_msb_pages_their_own_time():
    tm = TimingModel(1, 2, "model", MLC)
    x = MLC.transfer_ns(16384)
    assert tm.charge(MediaOp.PROGRAM, 0, 0, 16384, 0, pg=0) == x + 100_000
    assert tm.charge(MediaOp.PROGRAM, 0, 1, 16384, 0, pg=1) == 2 * x + 900_000   # waits for the channel
    assert tm.charge(MediaOp.READ, 0, 0, 16384, 10**7, pg=1) == 10**7 + 70_000 + x


def test_set_arrival_may_go_back_and_busy_stamps_keep_contention():
    tm = TimingModel(1, 2, "model")
    nand = tm.nand
    end = tm.charge(MediaOp.ERASE, 0, 0, 0, 0)
    tm.advance(end)
    tm.set_arrival(0)
    assert tm.now_ns == 0
    other = tm.charge(MediaOp.READ, 0, 1, 16384, tm.now_ns)            # another LUN: not delayed
    assert other == nand.t_read_ns + nand.transfer_ns(16384)
    same = tm.charge(MediaOp.READ, 0, 0, 16384, tm.now_ns)             # the erased LUN: after tBERS
    assert same >= nand.t_erase_ns + nand.t_read_ns


def test_machine_nand_timing_reaches_the_device_and_its_identity(make_machine):
    m = make_machine(timing="model", nand=MLC)
    assert m.device.volt.timing.nand == MLC
    dev = Device.open(m)
    assert dev.geo.timings_ns["tprt"] == MLC.t_prog_ns and dev.geo.timings_ns["tprm"] == MLC.t_prog_max_ns


def test_issue_at_runs_requests_in_parallel_on_different_luns(make_machine):
    m = make_machine(timing="model")
    dev = Device.open(m)
    for ch, lun in ((0, 0), (1, 0)):
        dev.addr_erase(block_planes(ch, lun, 1, 2))
        data = np.zeros(8 * 4096, np.uint8)
        dev.addr_write([Addr(ch, lun, blk=1, pg=0, pl=pl, sec=s) for pl in range(2) for s in range(4)],
                       data, pmode=PMode.DUAL)
    t0 = m.virtual_ns + 10_000_000
    done = []
    for ch in (0, 1, 0):
        m.issue_at(t0)
        dev.addr_read([Addr(ch, 0, blk=1, pg=0, pl=0, sec=0)])
        done.append(m.virtual_ns - t0)
    assert done[0] == done[1] > 0                     # two channels at once
    assert done[2] >= 2 * done[0] - m.device.volt.timing.nand.transfer_ns(16384)   # queued behind the first


def test_machine_wear_and_validity_accessors(make_machine):
    geo = Geometry.small()
    m = make_machine(timing="model")
    dev = Device.open(m)
    dev.addr_erase(block_planes(1, 1, 3, 2))
    ec = m.erase_counts()
    assert ec.shape == (geo.total_luns, geo.nblocks)
    assert ec[1 * geo.nluns + 1, 3] == 1 and ec.sum() == 1
    assert m.block_valid_sectors() is None            # open-channel: the host knows
    a = make_machine(lnvm=0, appnvm=AppNvmParams(gc_policy="fifo"))
    valid = a.block_valid_sectors()
    assert valid.shape == (geo.total_luns, geo.nblocks) and valid.sum() == 0
    assert a.stats()["ftl"]["gc_policy"] == "fifo"


def test_a_program_waiting_for_its_busy_lun_leaves_the_channel_to_other_luns():
    tm = TimingModel(1, 2, "model")
    x, p = tm.nand.transfer_ns(32768), tm.nand.t_prog_ns
    assert tm.charge(MediaOp.PROGRAM, 0, 0, 32768, 0) == x + p
    assert tm.charge(MediaOp.PROGRAM, 0, 0, 32768, 0) == 2 * (x + p)   # waits for LUN 0, transfers at x + p
    assert tm.charge(MediaOp.PROGRAM, 0, 1, 32768, 0) == 2 * x + p      # the channel is idle from x: not 3x + 2p
    read = tm.charge(MediaOp.READ, 0, 1, 16384, 0)                      # LUN 1 senses once it is free
    assert read == 2 * x + p + tm.nand.t_read_ns + tm.nand.transfer_ns(16384)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([MediaOp.READ, MediaOp.PROGRAM]), st.integers(0, 1), st.integers(0, 2),
                          st.sampled_from([4096, 16384, 32768]), st.integers(0, 2_000_000)), max_size=200))
def test_channel_transfers_never_overlap_and_start_when_their_data_is_ready(ops):
    tm = TimingModel(2, 3, "model")
    nand = tm.nand
    booked = {0: [], 1: []}
    for op, ch, lun, nbytes, arrival in ops:
        lun_free = tm._lun_busy[ch][lun]
        end = tm.charge(op, ch, lun, nbytes, arrival)
        x = nand.transfer_ns(nbytes)
        start = end - x if op == MediaOp.READ else end - nand.t_prog_ns - x
        ready = max(arrival, lun_free) + (nand.t_read_ns if op == MediaOp.READ else 0)
        assert start >= ready
        booked[ch].append((start, start + x))
    for spans in booked.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
