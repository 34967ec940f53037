"""AppNVM on the timing model (SPEC 8): modeled completion times come from media work.

A write completes once its data is in the write buffer, a read after the page is sensed
and moved over the channel, a flush once everything buffered is programmed; sustained
writes are bounded by the media, and GC's work shows up as modeled time."""
import numpy as np

from oxemu.volt import NandTiming

from .conftest import Nvme, stamp

NAND = NandTiming()


def _elapsed(m, fn):
    t0 = m.virtual_ns
    assert fn() == 0
    return m.virtual_ns - t0


def test_modeled_latencies_of_read_write_and_flush(appnvm_machine):
    m = appnvm_machine(timing="model")
    n = Nvme(m)
    t_write = _elapsed(m, lambda: n.write(0, stamp([0], 1)))
    assert t_write == 0                                     # into the buffer: no media time
    t_flush = _elapsed(m, n.flush)
    assert t_flush >= NAND.t_prog_ns + NAND.transfer_ns(32768)
    t_read = _elapsed(m, lambda: n.read(0)[0])
    page = m.geometry.page_nbytes
    assert NAND.t_read_ns + NAND.transfer_ns(page) <= t_read < NAND.t_read_ns + 3 * NAND.transfer_ns(page)
    t_hit = _elapsed(m, lambda: n.read(5000)[0])           # never written: no media access
    assert t_hit == 0


def test_sustained_writes_are_bounded_by_the_media(appnvm_machine):
    m = appnvm_machine(timing="model")
    n = Nvme(m)
    geo = m.geometry
    nbytes = 4 << 20
    elapsed = _elapsed(m, lambda: max(n.write(s, stamp(np.arange(s, s + 256), 1))
                                      for s in range(0, nbytes // 4096, 256)))
    elapsed += _elapsed(m, n.flush)
    unit = 32768
    per_lun = unit * 1e9 / (NAND.t_prog_ns + NAND.transfer_ns(unit))      # bytes/s one LUN sustains
    best = per_lun * geo.total_luns
    mbps = nbytes / (elapsed / 1e9)
    assert mbps <= best * 1.01
    assert mbps >= best * 0.5                               # the stripe keeps every LUN busy


def test_gc_work_costs_modeled_time(appnvm_machine):
    m = appnvm_machine(timing="model")
    n = Nvme(m)
    cap = n.nlbas
    t_fill = _elapsed(m, lambda: max(n.write(s, stamp(np.arange(s, min(cap, s + 256)), 1))
                                     for s in range(0, cap, 256)))
    rng = np.random.default_rng(0)
    lbas = rng.integers(0, cap, cap).tolist()
    t_over = _elapsed(m, lambda: max(n.write(lba, stamp(lba, 2)) for lba in lbas))
    t_over += _elapsed(m, n.flush)
    assert n.ops.stats()["gc_victims"] > 0
    assert t_over > 2 * t_fill                              # same bytes, plus GC's reads/programs/erases
