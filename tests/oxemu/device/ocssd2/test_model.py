"""Random chunk traffic -- writes at the write pointer, resets, reads, injected program
failures and power cuts at any media operation -- checked against a model of the 2.0
chunk rules: every chunk's state and write pointer, and what each logical block reads
(its data and OOB, UNRECOVERED where a program failed or a cut tore it, UNWRITTEN past
the readable part), across restarts. Small geometry; derandomized and bounded."""
import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxemu import Faults, Geometry, Machine
from oxemu.wire import ChunkState
from oxhost.driver import DriverError
from oxhost.lightnvm2 import Device20, NvmError

from .conftest import SECTOR, SOS, oob, pattern

GEO = Geometry.small()
CHUNKS = [(0, 0, 1), (0, 1, 2), (1, 0, 3), (1, 1, 4)]         # the chunks the traffic uses
SETTINGS = settings(max_examples=int(os.environ.get("OX_OCSSD2_EXAMPLES", "30")), deadline=None,
                    derandomize=True, suppress_health_check=list(HealthCheck))
OUT_OF_ORDER, INVALID_RESET, OFFLINE, NEXT_UNIT, EARLY_CLOSE = 0x42F2, 0x42C1, 0x42C0, 0x42F0, 0x42F1
UNRECOVERED, UNWRITTEN = 0x4281, 0x4287

op = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 3), st.integers(1, 6)),
    st.tuples(st.just("write"), st.integers(0, 3), st.integers(1, 16)),
    st.tuples(st.just("reset"), st.integers(0, 3)),
    st.tuples(st.just("read"), st.integers(0, 3)),
    st.tuples(st.just("cut"), st.integers(0, 3), st.integers(0, 12)),
    st.tuples(st.just("program_fail"), st.sampled_from([0.0, 0.05, 0.2])),
)


class Chunk:
    """What the model knows of one chunk: unit -> ('data', seed) | ('bad',) | ('maybe', seed)."""

    def __init__(self):
        self.state, self.wp, self.fails, self.units = ChunkState.FREE, 0, 0, {}
        self.unsure = False              # failures may have happened inside a command a cut ended


class Run:
    def __init__(self, disk):
        self.disk = disk
        self.faults = Faults(seed=5)
        self.model = [Chunk() for _ in CHUNKS]
        self.seed = 0
        self.open()
        g = self.dev.geo
        self.ws, self.units_per_chunk, self.mw = g.ws_min, g.nsectr // g.ws_min, g.mw_cunits

    def open(self):
        self.faults.power_cut_after = None
        self.m = Machine(lnvm=1, volt=0, disk=self.disk, geometry=GEO, faults=self.faults, spec="2.0")
        self.dev = Device20.open(self.m)

    def close(self):
        self.m.close()

    def lbas(self, c, first, count):
        g, p, k = CHUNKS[c]
        return self.dev.chunk_lbas(g, p, k, np.arange(first, first + count))

    # ------------------------------------------------------------ operations
    def write(self, c, nunits, cut_after=None):
        ch = self.model[c]
        ws = self.ws
        u0 = ch.wp // ws
        nunits = max(1, min(nunits, self.units_per_chunk - u0)) if u0 < self.units_per_chunk else nunits
        lbas = self.lbas(c, ch.wp if u0 < self.units_per_chunk else 0, nunits * ws)
        self.seed += 1
        seed = self.seed
        if cut_after is not None:
            self.faults.power_cut_after = self.m.stats()["media_ops"] + cut_after
        try:
            self.dev.write(lbas, pattern(lbas, seed), meta=oob(lbas, seed))
            sts = np.zeros(lbas.size, np.uint16)
        except NvmError as e:
            sts = e.statuses
        except DriverError:                                     # the power went mid-command
            return self.after_cut(c, ("write", u0, nunits, seed))
        if ch.state not in (ChunkState.FREE, ChunkState.OPEN):
            assert (sts == OUT_OF_ORDER).all(), (sts, ch.state)
            return
        assert set(sts.tolist()) <= {0, NEXT_UNIT, EARLY_CLOSE, OUT_OF_ORDER}, set(sts.tolist())
        d = self.report()[c]
        state, wp = ChunkState(int(d["cs"])), int(d["wp"])
        end = (u0 + nunits) * ws
        assert ch.wp < wp <= end, (ch.wp, wp, end)
        for u in range(u0, wp // ws):                            # the units the device took
            got = sts[(u - u0) * ws:(u - u0 + 1) * ws]
            assert len(set(got.tolist())) == 1, got              # a unit is written whole or not at all
            if got[0]:
                ch.units[u], ch.fails = ("bad",), ch.fails + 1
            else:
                ch.units[u] = ("data", seed)
        assert (sts[wp - ch.wp:] != 0).all()                     # the rest was not written
        if wp < end or (state == ChunkState.CLOSED and wp < self.units_per_chunk * ws):
            assert state == ChunkState.CLOSED and (ch.fails >= 2 or ch.unsure), (state, ch.fails)
            ch.fails = max(ch.fails, 2)                          # closed early
        else:
            assert ch.fails < 2 or ch.unsure
            assert state == (ChunkState.CLOSED if wp == self.units_per_chunk * ws else ChunkState.OPEN)
        ch.state, ch.wp = state, wp

    def reset(self, c, cut_after=None):
        ch = self.model[c]
        g, p, k = CHUNKS[c]
        if cut_after is not None:
            self.faults.power_cut_after = self.m.stats()["media_ops"] + cut_after
        try:
            self.dev.erase(self.dev.chunk_lbas(g, p, k)[None])
            st = 0
        except NvmError as e:
            st = e.status
        except DriverError:
            return self.after_cut(c, ("reset",))
        if ch.state == ChunkState.OFFLINE:
            assert st == OFFLINE
        elif ch.state != ChunkState.CLOSED:
            assert st == INVALID_RESET
        elif ch.fails or (ch.unsure and st == OFFLINE):
            assert st == OFFLINE                                  # the device retires it
            ch.state, ch.wp, ch.units = ChunkState.OFFLINE, 0, {}
        else:
            assert st == 0
            ch.state, ch.wp, ch.fails, ch.units, ch.unsure = ChunkState.FREE, 0, 0, {}, False

    def after_cut(self, c, what):
        """The power went inside an operation on chunk c: restart, and narrow the model to
        what the device may show."""
        self.close()
        self.open()
        ch = self.model[c]
        d = self.report()[c]
        state, wp = ChunkState(int(d["cs"])), int(d["wp"])
        if what[0] == "reset":
            assert (state, wp) in {(ch.state, ch.wp), (ChunkState.FREE, 0)} or \
                (ch.fails and state == ChunkState.OFFLINE), (state, wp, ch.state, ch.wp)
            if (state, wp) != (ch.state, ch.wp):
                ch.state, ch.wp, ch.fails, ch.units, ch.unsure = state, wp, 0, {}, False
            return
        _, u0, nunits, seed = what
        if ch.state not in (ChunkState.FREE, ChunkState.OPEN):
            assert (state, wp) == (ch.state, ch.wp)
            return
        assert ch.wp <= wp <= (u0 + nunits) * self.ws, (wp, ch.wp, u0, nunits)
        for u in range(u0, wp // self.ws):
            ch.units[u] = ("maybe", seed)                        # written, failed or torn: never other data
        ch.wp = wp
        ch.state = state
        if self.faults.program_fail_rate:
            ch.unsure = True
        if state == ChunkState.CLOSED and wp < self.units_per_chunk * self.ws:
            ch.fails = max(ch.fails, 2)                          # closed early inside the command

    # ------------------------------------------------------------ checks
    def report(self):
        r = self.dev.rprt()
        g = self.dev.geo
        return [r[(gr * g.npunit + pu) * g.nchunk + k] for gr, pu, k in CHUNKS]

    def check_states(self):
        for c, d in enumerate(self.report()):
            ch = self.model[c]
            assert (ChunkState(int(d["cs"])), int(d["wp"])) == (ch.state, ch.wp), (c, d, ch.state, ch.wp)

    def read(self, c):
        ch = self.model[c]
        if ch.wp == 0:
            return
        lbas = self.lbas(c, 0, ch.wp)
        saved, self.faults.read_error_rate = self.faults.read_error_rate, 0.0
        try:
            data, meta = self.dev.read(lbas, with_meta=True)
            sts = np.zeros(lbas.size, np.uint16)
        except NvmError as e:
            data, meta, sts = e.data, e.meta, e.statuses
        self.faults.read_error_rate = saved
        limit = ch.wp - self.mw if ch.state == ChunkState.OPEN else ch.wp
        rows, mrows = data.reshape(-1, SECTOR), meta.reshape(-1, SOS)
        for u in range(ch.wp // self.ws):
            s = slice(u * self.ws, (u + 1) * self.ws)
            got = sts[s]
            if u * self.ws >= limit:
                assert (got == UNWRITTEN).all(), (c, u, got)
                continue
            kind = ch.units.get(u, ("bad",))
            want = pattern(lbas[s], kind[-1]).reshape(-1, SECTOR) if kind[0] != "bad" else None
            for j in range(self.ws):
                if got[j] == 0 and kind[0] != "bad":
                    assert (rows[s][j] == want[j]).all() and (mrows[s][j] == oob(lbas[s], kind[-1]).reshape(-1, SOS)[j]).all()
                else:
                    assert got[j] == UNRECOVERED and kind[0] in ("bad", "maybe"), (c, u, j, got[j], kind)
                    assert not rows[s][j].any()


@SETTINGS
@given(st.lists(op, min_size=1, max_size=30))
def test_chunks_follow_the_model_through_faults_and_power_cuts(ops):
    with tempfile.TemporaryDirectory() as d:
        run = Run(os.path.join(d, "m.disk"))
        try:
            for o in ops:
                if o[0] == "write":
                    run.write(o[1], o[2])
                elif o[0] == "reset":
                    run.reset(o[1])
                elif o[0] == "read":
                    run.read(o[1])
                elif o[0] == "program_fail":
                    run.faults.program_fail_rate = o[1]
                else:
                    _, c, n = o
                    if run.model[c].state == ChunkState.CLOSED and n % 2:
                        run.reset(c, cut_after=n // 2)
                    else:
                        run.write(c, 6, cut_after=n)
                    run.faults.power_cut_after = None
                run.check_states()
            run.faults.program_fail_rate = 0.0
            run.close()
            run.open()                                             # and once more from the media
            run.check_states()
            for c in range(len(CHUNKS)):
                run.read(c)
        finally:
            run.close()
