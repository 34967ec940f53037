"""NAND timing model (timing="model"): modeled completion times on the virtual clock grow
with tR/tPROG/tBERS, and LUNs on different channels work in parallel. Deterministic:
everything is read off the virtual clock, never the wall clock."""
import pytest

from oxemu.volt import NandTiming
from oxhost.lightnvm import Addr, Device, NvmError, PMode

from tests.helpers import block_planes, page_addrs, stamp_sectors

PAGE2 = 2 * 16384            # one page on both planes


def modeled_now(m) -> int:
    """Latest modeled completion time the device has posted (acknowledged or not)."""
    t = m.device.volt.timing.now_ns
    for cq in m.device.controller.cqs.values():
        pending = getattr(cq, "done_ns", None)         # posted, not yet acknowledged
        if pending:
            t = max(t, max(pending))
    return t


def latency(m, fn) -> int:
    t0 = modeled_now(m)
    fn()
    return modeled_now(m) - t0


@pytest.fixture
def timed(make_machine):
    m = make_machine(timing="model")
    return m, Device.open(m)


def _nand(m) -> NandTiming:
    return m.device.volt.timing.nand


def _prepare(dev, blocks):
    for ch, lun, blk in blocks:
        dev.addr_erase(block_planes(ch, lun, blk, 2))


def test_timing_erase_takes_tbers(timed):
    m, dev = timed
    t = latency(m, lambda: dev.addr_erase(block_planes(0, 0, 1, 2)))
    nand = _nand(m)
    assert nand.t_erase_ns <= t < nand.t_erase_ns + nand.t_prog_ns


def test_timing_program_takes_tprog_plus_the_transfer(timed):
    m, dev = timed
    _prepare(dev, [(0, 0, 1)])
    p = page_addrs(0, 0, 1, 0, 2)
    t = latency(m, lambda: dev.addr_write(p, stamp_sectors(p)))
    nand = _nand(m)
    assert nand.t_prog_ns + nand.transfer_ns(PAGE2) // 2 <= t <= nand.t_prog_ns + 2 * nand.transfer_ns(PAGE2)


def test_timing_read_takes_tr_plus_the_transfer(timed):
    m, dev = timed
    _prepare(dev, [(0, 0, 1)])
    p = page_addrs(0, 0, 1, 0, 2)
    dev.addr_write(p, stamp_sectors(p))
    dev.addr_erase(block_planes(1, 1, 1, 2))            # let the LUN of the write go idle
    t = latency(m, lambda: dev.addr_read(p))
    nand = _nand(m)
    assert nand.t_read_ns <= t <= nand.t_read_ns + 2 * nand.transfer_ns(PAGE2)


def test_timing_read_program_erase_are_ordered_by_their_nand_times(timed):
    m, dev = timed
    _prepare(dev, [(0, 0, 1)])
    p = page_addrs(0, 0, 1, 0, 2)
    t_prog = latency(m, lambda: dev.addr_write(p, stamp_sectors(p)))
    dev.addr_erase(block_planes(1, 1, 1, 2))
    t_read = latency(m, lambda: dev.addr_read(p))
    t_erase = latency(m, lambda: dev.addr_erase(block_planes(1, 0, 2, 2)))
    assert t_read < t_prog < t_erase


@pytest.mark.parametrize("field,op", [("t_read_ns", "read"), ("t_prog_ns", "write"), ("t_erase_ns", "erase")])
def test_timing_latency_grows_by_exactly_the_nand_time_added(make_machine, field, op):
    lat = []
    for extra in (0, 500_000):
        m = make_machine(timing="model")
        base = NandTiming()
        m.device.volt.timing.nand = NandTiming(**{field: getattr(base, field) + extra})
        dev = Device.open(m)
        _prepare(dev, [(0, 0, 1)])
        p = page_addrs(0, 0, 1, 0, 2)
        if op == "read":
            dev.addr_write(p, stamp_sectors(p))
            dev.addr_erase(block_planes(1, 1, 1, 2))
            dev.addr_erase(block_planes(1, 1, 2, 2))      # the LUN of the write is idle by now
            lat.append(latency(m, lambda: dev.addr_read(p)))
        elif op == "write":
            lat.append(latency(m, lambda: dev.addr_write(p, stamp_sectors(p))))
        else:
            lat.append(latency(m, lambda: dev.addr_erase(block_planes(0, 1, 3, 2))))
    assert lat[1] - lat[0] == 500_000


def _two_pages(dev, targets):
    addrs = [a for ch, lun, blk in targets for a in page_addrs(ch, lun, blk, 0, 2)]
    return addrs, stamp_sectors(addrs)


def test_timing_two_channels_program_in_parallel(make_machine):
    """One command programming two pages: different channels < same channel, different
    LUNs < the same LUN (which serialises both programs)."""
    cases = {"two channels": [(0, 0, 1), (1, 0, 1)],
             "one channel, two luns": [(0, 0, 1), (0, 1, 1)],
             "one lun": [(0, 0, 1), (0, 0, 2)]}
    lat = {}
    for name, targets in cases.items():
        m = make_machine(timing="model")
        dev = Device.open(m)
        _prepare(dev, targets)
        dev.addr_erase(block_planes(1, 1, 7, 2))        # any later arrival finds the LUNs idle
        dev.addr_erase(block_planes(1, 1, 6, 2))
        addrs, data = _two_pages(dev, targets)
        lat[name] = latency(m, lambda: dev.addr_write(addrs, data))
    nand = NandTiming()
    assert lat["two channels"] < lat["one channel, two luns"] < lat["one lun"]
    assert lat["two channels"] <= nand.t_prog_ns + 2 * nand.transfer_ns(PAGE2)
    assert lat["one lun"] >= 2 * nand.t_prog_ns


def test_timing_erases_on_four_luns_overlap(timed):
    m, dev = timed
    spread = [a for ch in range(2) for lun in range(2) for a in block_planes(ch, lun, 3, 2)]
    same = [a for blk in (4, 5, 6, 7) for a in block_planes(1, 1, blk, 2)]
    t_spread = latency(m, lambda: dev.addr_erase(spread))
    t_same = latency(m, lambda: dev.addr_erase(same))
    nand = _nand(m)
    assert t_spread < 2 * nand.t_erase_ns
    assert t_same >= 4 * nand.t_erase_ns


def test_timing_virtual_clock_only_moves_forward(timed):
    m, dev = timed
    seen = [modeled_now(m)]
    for blk in range(1, 6):
        dev.addr_erase(block_planes(0, 0, blk, 2))
        seen.append(modeled_now(m))
    assert seen == sorted(seen) and seen[-1] >= 5 * _nand(m).t_erase_ns


def test_timing_off_mode_charges_nothing(make_machine):
    m = make_machine()                                   # timing="off" is the default
    dev = Device.open(m)
    assert latency(m, lambda: dev.addr_erase(block_planes(0, 0, 1, 2))) == 0
    assert m.device.volt.timing.now_ns == 0


def test_timing_unknown_mode_is_refused(make_machine):
    with pytest.raises(ValueError):
        make_machine(timing="warp")


def test_timing_command_refused_before_the_media_costs_no_time(timed):
    m, dev = timed
    dev.addr_erase(block_planes(0, 0, 1, 2))

    def refused():
        with pytest.raises(NvmError):
            dev.addr_erase([Addr(0, 0, blk=2)], pmode=PMode.DUAL)     # one plane in dual mode
    assert latency(m, refused) == 0
