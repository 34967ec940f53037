"""2.0's answers to media faults: program failures (write next unit, chunk early close),
offline chunks, read retries (high ECC) and uncorrectable reads, the chunk notification
log with its asynchronous event, and the wear-level index."""
import numpy as np
import pytest

from oxemu import Faults
from oxemu.wire import ChunkState, NotifyMask, NotifyState
from oxhost.lightnvm2 import ChunkAddr, NvmError

from .conftest import SECTOR, chunk_lbas, fill, pattern

NEXT_UNIT, EARLY_CLOSE, OFFLINE, UNRECOVERED, OUT_OF_ORDER = 0x42F0, 0x42F1, 0x42C0, 0x4281, 0x42F2
EVENT_0xD0 = 7 | (0xD0 << 16)           # vendor-specific event, log page 0xD0


def _state(dev, g, p, c):
    d = dev.rprt(ChunkAddr(g, p, c), 1)[0]
    return ChunkState(int(d["cs"])), int(d["wp"])


def test_a_failed_program_consumes_its_unit_and_asks_for_the_next_0x42F0(open20):
    dev = open20(faults=Faults(program_fail={(0, 1, 2, 1)}))     # unit 1 of chunk 0/1/2
    g = dev.geo
    lbas = chunk_lbas(dev, 0, 1, 2, 0, 3 * g.ws_min)
    with pytest.raises(NvmError) as ei:
        dev.write(lbas, pattern(lbas))
    e = ei.value
    assert e.status == NEXT_UNIT
    assert e.failed == ((1 << g.ws_min) - 1) << g.ws_min          # exactly the failed unit's LBAs
    assert _state(dev, 0, 1, 2) == (ChunkState.OPEN, 3 * g.ws_min)   # the chunk stays open, past the unit
    fill(dev, 0, 1, 2, g.nsectr - 3 * g.ws_min, start=3 * g.ws_min)  # the host writes on
    with pytest.raises(NvmError) as ei:
        dev.read(lbas)
    assert ei.value.status == UNRECOVERED and ei.value.failed == e.failed   # the consumed unit never reads


def test_the_second_failure_in_a_chunk_closes_it_early_0x42F1(open20):
    dev = open20(faults=Faults(program_fail={(0, 0, 3, 1), (0, 0, 3, 3)}))
    g = dev.geo
    ws = g.ws_min
    lbas = chunk_lbas(dev, 0, 0, 3, 0, 6 * ws)
    with pytest.raises(NvmError) as ei:
        dev.write(lbas, pattern(lbas, 1))
    e = ei.value
    assert e.status == EARLY_CLOSE
    assert e.failed == ((1 << ws) - 1) << ws | ((1 << 3 * ws) - 1) << 3 * ws   # unit 1, and 3 to the end
    assert _state(dev, 0, 0, 3) == (ChunkState.CLOSED, 4 * ws)              # closed at its write pointer
    data, _ = dev.read(lbas[:ws])                                          # readable up to it
    assert (data == pattern(lbas, 1)[:ws * SECTOR]).all()
    with pytest.raises(NvmError) as ei:
        dev.write(chunk_lbas(dev, 0, 0, 3, 4 * ws, ws), np.zeros(ws * SECTOR, np.uint8))
    assert ei.value.status == OUT_OF_ORDER


def test_a_chunk_whose_programs_failed_goes_offline_at_its_reset(open20):
    dev = open20(faults=Faults(program_fail={(1, 0, 0, 0)}))
    g = dev.geo
    lbas = chunk_lbas(dev, 1, 0, 0, 0, g.nsectr)
    with pytest.raises(NvmError):
        dev.write(lbas, pattern(lbas))
    assert _state(dev, 1, 0, 0)[0] == ChunkState.CLOSED
    with pytest.raises(NvmError) as ei:
        dev.erase([ChunkAddr(1, 0, 0)])
    assert ei.value.status == OFFLINE
    assert _state(dev, 1, 0, 0)[0] == ChunkState.OFFLINE


def test_offline_chunks_refuse_every_command(open20):
    dev = open20(faults=Faults(factory_bad={(0, 1, 4, 1)}))       # one plane of the block: the chunk
    assert _state(dev, 0, 1, 4) == (ChunkState.OFFLINE, 0)
    with pytest.raises(NvmError) as ei:
        dev.erase([ChunkAddr(0, 1, 4)])
    assert ei.value.status == OFFLINE
    with pytest.raises(NvmError) as ei:
        dev.read(chunk_lbas(dev, 0, 1, 4, 0, 2))
    assert ei.value.status == OFFLINE
    lbas = chunk_lbas(dev, 0, 1, 4, 0, dev.geo.ws_min)
    with pytest.raises(NvmError) as ei:
        dev.write(lbas, pattern(lbas))
    assert ei.value.status == OUT_OF_ORDER


def test_a_reset_whose_erase_fails_takes_the_chunk_offline(open20):
    dev = open20(faults=Faults(erase_fail={(1, 1, 6)}))
    fill(dev, 1, 1, 6, dev.geo.nsectr)
    with pytest.raises(NvmError) as ei:
        dev.erase([ChunkAddr(1, 1, 6)])
    assert ei.value.status == OFFLINE and _state(dev, 1, 1, 6)[0] == ChunkState.OFFLINE


def test_reads_that_need_the_device_retry_are_high_ecc_with_good_data_and_notified(open20):
    faults = Faults(seed=3)
    dev = open20(faults=faults)
    g = dev.geo
    lbas = fill(dev, 0, 0, 0, g.nsectr, seed=7)
    dev.request_events()
    faults.read_error_rate = 0.1
    try:
        data, _ = dev.read(lbas)                               # a retry saves most ...
        failed = np.zeros(lbas.size, bool)
    except NvmError as e:                                      # ... not those that fail twice
        data, failed = e.data, e.mask
        assert set(e.statuses[failed].tolist()) == {UNRECOVERED}
    faults.read_error_rate = 0.0
    high = dev.counters["high_ecc_lbas"]
    assert high > 0 and failed.sum() < high
    rows, want = data.reshape(-1, SECTOR), pattern(lbas, 7).reshape(-1, SECTOR)
    assert (rows[~failed] == want[~failed]).all() and not rows[failed].any()
    assert dev.events() == [EVENT_0xD0]                         # one event for the batch
    notes = dev.notifications()
    assert notes[0].nc >= high and all(a.nc == b.nc + 1 for a, b in zip(notes, notes[1:]))
    assert NotifyState.ERROR_RATE_HIGH in {n.state for n in notes}
    assert {n.state for n in notes} <= {NotifyState.ERROR_RATE_HIGH, NotifyState.UNRECOVERABLE}
    assert {n.mask for n in notes} == {NotifyMask.LOGICAL_BLOCK}
    assert {int(n.lba) for n in notes} <= {int(v) for v in lbas}


def test_a_read_the_retry_does_not_save_is_unrecoverable_and_notified(open20):
    faults = Faults(seed=1)
    dev = open20(faults=faults)
    lbas = fill(dev, 0, 1, 0, dev.geo.nsectr)
    faults.read_error_rate = 1.0
    with pytest.raises(NvmError) as ei:
        dev.read(lbas[:4])
    faults.read_error_rate = 0.0
    assert ei.value.status == UNRECOVERED and ei.value.failed == 0b1111
    assert not ei.value.data.any()
    assert {n.state for n in dev.notifications()} == {NotifyState.UNRECOVERABLE}


def test_the_event_waits_for_a_request_and_is_raised_again_only_after_the_log_is_read(open20):
    faults = Faults(seed=2)
    dev = open20(faults=faults)
    lbas = fill(dev, 1, 1, 1, dev.geo.nsectr)
    faults.read_error_rate = 1.0
    for i in range(3):
        with pytest.raises(NvmError):
            dev.read(lbas[i:i + 1])
    dev.request_events()                                        # the event raised before it: at once
    assert dev.events() == [EVENT_0xD0]
    dev.request_events()
    with pytest.raises(NvmError):
        dev.read(lbas[5:6])
    assert dev.events() == []                                   # unread log: masked
    assert len(dev.notifications()) == 4                        # read: re-armed
    with pytest.raises(NvmError):
        dev.read(lbas[6:7])
    faults.read_error_rate = 0.0
    assert dev.events() == [EVENT_0xD0]


def test_too_many_event_requests_is_the_async_event_limit(dev20):
    drv = dev20.driver
    dev20.request_events(4)
    c = drv.admin(0x0C)
    assert c.status == 0x4105


def test_the_wear_level_index_rises_with_resets_and_a_chunk_far_above_average_is_notified(open20):
    dev = open20()
    g = dev.geo
    dev.request_events()
    wli = []
    for _ in range(130):                                         # ENDURANCE 3000: 255 / 3000 per reset
        fill(dev, 0, 0, 0, g.nsectr)
        dev.erase([ChunkAddr(0, 0, 0)])
        wli.append(int(dev.rprt(ChunkAddr(0, 0, 0), 1)["wli"][0]))
    assert wli == sorted(wli) and wli[0] == 0 and wli[-1] == 130 * 255 // 3000
    assert dev.rprt()["wli"][1:].max() == 0
    assert dev.events() == [EVENT_0xD0]
    notes = dev.notifications()
    assert notes and notes[-1].state == NotifyState.WIT_EXCEEDED and notes[-1].mask == NotifyMask.CHUNK
    assert int(notes[-1].lba) == int(dev.lbas([ChunkAddr(0, 0, 0)])[0])
    assert notes[-1].nc == 1                                     # the first time it left the average by wit
