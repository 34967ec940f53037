"""Property tests of the AppNVM device FTL through the bus: random sequences of writes,
overwrites, discards, flushes, GC pressure, program and read failures and power cuts,
checked against the torture oracle (a flushed sector reads back that version or newer,
never older, never zeros, never garbage) and the map's own bookkeeping after every stop.
Small geometry, bounded and derandomized: the same sequences every run."""
import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxemu import Faults, Geometry, Machine
from oxhost.blockdev import MediaError, ReadOnly
from oxhost.driver import DriverError
from oxhost.nvme import NvmeBlockDevice
from oxhost.torture import Oracle
from oxhost.torture.stamp import make

GEO = Geometry.small(nblocks=16)
SETTINGS = settings(max_examples=int(os.environ.get("OX_APPNVM_EXAMPLES", "25")), deadline=None,
                    derandomize=True, suppress_health_check=list(HealthCheck))

frac = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
size = st.sampled_from([1, 2, 8, 17, 64, 300])
op = st.one_of(
    st.tuples(st.just("write"), frac, size),
    st.tuples(st.just("write"), frac, size),
    st.tuples(st.just("discard"), frac, size),
    st.tuples(st.just("flush")),
    st.tuples(st.just("churn"), st.integers(200, 4000)),
    st.tuples(st.just("cut"), st.integers(1, 2000)),
    st.tuples(st.just("program_fail"), st.sampled_from([0.0, 0.002, 0.01])),
    st.tuples(st.just("read_errors"), st.sampled_from([0.0, 0.05])),
)


class Run:
    def __init__(self, disk):
        self.disk = disk
        self.faults = Faults(seed=1)
        self.oracle = None
        self.open()

    def open(self):
        self.faults.power_cut_after = None
        self.m = Machine(lnvm=0, volt=0, disk=self.disk, geometry=GEO, faults=self.faults)
        self.bd = NvmeBlockDevice.open(self.m)
        n = self.bd.nlbas
        if self.oracle is None:
            self.oracle = Oracle(n)
        saved, self.faults.read_error_rate = self.faults.read_error_rate, 0.0
        data = self.bd.read_sectors(0, n)
        self.faults.read_error_rate = saved
        bad = self.oracle.check(0, data, settle=True)
        assert bad == [], bad[:5]

    def stop(self):
        self.m.close()                      # the plug: no flush, no shutdown

    def write(self, lba, k):
        o, g = self.oracle, self.oracle.next_gen()
        o.maybe_wrote(lba, k, g)
        self.bd.write_sectors(lba, make(np.arange(lba, lba + k), g))
        o.wrote(lba, k, g)

    def discard(self, lba, k):
        o, g = self.oracle, self.oracle.next_gen()
        o.maybe_discarded(lba, k, g)
        self.bd.discard_sectors(lba, k)
        o.discarded(lba, k, g)


@SETTINGS
@given(st.lists(op, min_size=1, max_size=24))
def test_appnvm_keeps_every_flushed_sector_through_any_sequence_of_faults_and_cuts(ops):
    with tempfile.TemporaryDirectory() as d:
        run = Run(os.path.join(d, "p.disk"))
        n = run.bd.nlbas
        rng = np.random.default_rng(len(ops))
        try:
            for o in ops:
                try:
                    kind = o[0]
                    if kind in ("write", "discard"):
                        lba = min(n - 1, int(o[1] * n))
                        k = min(o[2], n - lba)
                        (run.write if kind == "write" else run.discard)(lba, k)
                    elif kind == "flush":
                        run.bd.flush()
                        run.oracle.flushed()
                    elif kind == "churn":                 # GC pressure: many random overwrites
                        for lba in rng.integers(0, n, o[1] // 8):
                            run.write(int(lba), int(min(8, n - lba)))
                    elif kind == "cut":
                        run.faults.power_cut_after = run.m.stats()["media_ops"] + o[1]
                    elif kind == "program_fail":
                        run.faults.program_fail_rate = o[1]
                    elif kind == "read_errors":
                        run.faults.read_error_rate = o[1]
                except DriverError:                       # the cut came: pull the plug, reopen
                    run.stop()
                    run.open()
                except (ReadOnly, MediaError):
                    pass                                  # refused or unreadable: nothing changed
            run.bd.flush()
            run.oracle.flushed()
        except DriverError:
            pass
        run.stop()
        run.faults.program_fail_rate = run.faults.read_error_rate = 0.0
        run.open()                                        # recovery checks every sector
        run.bd.close()
        run.m.close()
