"""Zones against a model (ZNS 1.1's state machine, written out again here), through the bus:
writes, appends, every zone action one zone at a time and select-all, program failures,
clean restarts and power cuts inside writes and resets. After every step each zone's
state and write pointer must be the model's; after a cut, the zone being written may hold
any prefix of the interrupted write, and nothing else may differ. Every zone's data is
read back and checked, the metadata with it."""
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from oxemu import Faults, ZnsParams
from oxemu.wire import Status, ZoneAttr, ZoneState
from oxhost.driver import DriverError
from oxhost.zns import ZoneCommandError

from .conftest import Zoned, meta_of, stamp

E, IO, EO, C, F, RO, OFF = (ZoneState.EMPTY, ZoneState.IMPLICITLY_OPEN, ZoneState.EXPLICITLY_OPEN,
                            ZoneState.CLOSED, ZoneState.FULL, ZoneState.READ_ONLY, ZoneState.OFFLINE)
NZ, ZS, ZCAP = 8, 64, 48
MAX_OPEN, MAX_ACTIVE = 3, 4
OPEN, ACTIVE = (IO, EO), (IO, EO, C)
BAD_TRANSITION = int(Status.ZONE_INVALID_TRANSITION)


class Model:
    """The spec's rules, separately from the device's: states, write pointers, resources,
    and the version each written LBA holds (0: never written)."""

    def __init__(self):
        self.state = [E] * NZ
        self.wp = [0] * NZ
        self.ver = np.zeros((NZ, ZCAP), np.int64)
        self.implicit: list[int] = []          # implicitly opened zones, oldest first
        self.zfc = [False] * NZ

    def count(self, states) -> int:
        return sum(s in states for s in self.state)

    def set(self, z, s):
        if self.state[z] == IO and s != IO:
            self.implicit.remove(z)
        if s == IO and self.state[z] != IO:
            self.implicit.append(z)
        self.state[z] = s

    def open(self, z, implicit) -> int:
        s = self.state[z]
        if s in (E, C):
            if self.count(OPEN) == MAX_OPEN and self.implicit:
                self.set(self.implicit[0], C)
            if self.count(ACTIVE) + (s == E) > MAX_ACTIVE:
                return Status.ZONE_TOO_MANY_ACTIVE
            if self.count(OPEN) + 1 > MAX_OPEN:
                return Status.ZONE_TOO_MANY_OPEN
            self.set(z, IO if implicit else EO)
            return 0
        if s == IO:
            if not implicit:
                self.set(z, EO)
            return 0
        if s == EO:
            return 0
        return BAD_TRANSITION

    def write(self, z, at, n, version) -> int:
        s = self.state[z]
        refused = {F: Status.ZONE_FULL, RO: Status.ZONE_READ_ONLY, OFF: Status.ZONE_OFFLINE}.get(s)
        if refused:
            return refused
        if at is not None and at != self.wp[z]:
            return Status.ZONE_INVALID_WRITE
        if self.wp[z] + n > ZCAP:
            return Status.ZONE_BOUNDARY_ERROR
        st_ = self.open(z, implicit=True)
        if st_:
            return st_
        self.land(z, n, version)
        return 0

    def land(self, z, n, version):
        self.ver[z, self.wp[z]:self.wp[z] + n] = version
        self.wp[z] += n
        if self.wp[z] == ZCAP:
            self.set(z, F)

    def action(self, name, z) -> int:
        s = self.state[z]
        if name == "open":
            return self.open(z, implicit=False)
        if name == "close":
            if s in OPEN:
                self.set(z, C)
            return 0 if s in OPEN + (C,) else BAD_TRANSITION
        if name == "finish":
            if s in (E,) + ACTIVE:
                self.set(z, F)
            return 0 if s in (E, F) + ACTIVE else BAD_TRANSITION
        if name == "reset":
            if s in (RO, OFF):
                return BAD_TRANSITION
            self.set(z, E)
            self.wp[z] = 0
            self.ver[z] = 0
            self.zfc[z] = False
            return 0
        if name == "offline":
            if s == RO:
                self.set(z, OFF)
            return 0 if s in (RO, OFF) else BAD_TRANSITION
        raise AssertionError(name)

    SELECT_ALL = {"open": (C,), "close": OPEN, "finish": ACTIVE, "reset": ACTIVE + (F,), "offline": (RO,)}

    def power_on(self):
        """What a restart does to open zones: closed, or empty when nothing was written
        to an implicitly opened one."""
        for z in range(NZ):
            if self.state[z] == IO and self.wp[z] == 0:
                self.set(z, E)
            elif self.state[z] in OPEN:
                self.set(z, C)


class ZonesMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.model = Model()
        self.version = 0
        self.failing: dict[int, set] = {}      # injected program failures, per zone

    @initialize()
    def start(self):
        import tempfile
        from pathlib import Path
        self.tmp = tempfile.TemporaryDirectory()
        self.zd = Zoned(Path(self.tmp.name), params=ZnsParams(max_open=MAX_OPEN, max_active=MAX_ACTIVE))

    def teardown(self):
        if hasattr(self, "zd"):
            self.zd.close()
            self.tmp.cleanup()

    # ------------------------------------------------------------ helpers
    @property
    def dev(self):
        return self.zd.dev

    def _faults(self) -> Faults:
        return Faults(program_fail=set().union(*self.failing.values()) if self.failing else set())

    def _write(self, z, at, n, append):
        self.version += 1
        v = self.version
        start = z * ZS + (self.model.wp[z] if at is None else at)
        lbas = np.arange(start, start + n)
        data, meta = stamp(lbas, v), meta_of(lbas, v)
        try:
            if append:
                got = self.dev.append(z, data, meta)
                assert got == z * ZS + self.model.wp[z]
            else:
                self.dev.write(start, data, meta)
            status = 0
        except ZoneCommandError as e:
            status = e.status & ~int(Status.DNR)
        if status == Status.WRITE_FAULT and self.failing.get(z):
            assert not self.model.open(z, implicit=True)
            self._resync(z, v, n)              # out of spare units: some prefix landed, the zone ended
            return
        want = self.model.write(z, None if append else at, n, v)
        assert status == want, (z, at, n, append, hex(status), hex(want))

    def _resync(self, z, v, n):
        """A write the injected failures ended: the zone is finished by the controller (or
        read-only), holding its old data and any prefix of the write."""
        zone = self.dev.zone(z)
        m = self.model
        assert zone.cond in (F, RO)
        assert zone.cond == RO or zone.attrs & ZoneAttr.ZFC
        data = self.dev.read(z * ZS, ZCAP)[0].reshape(-1, 4096)
        landed = int((data[m.wp[z]:, 8:16].copy().view(np.int64).ravel() == v).sum())
        assert 0 <= landed <= n
        m.ver[z, m.wp[z]:m.wp[z] + landed] = v
        m.wp[z] += landed
        m.set(z, zone.cond)
        m.zfc[z] = zone.cond == F

    # ------------------------------------------------------------ rules
    @rule(z=st.integers(0, NZ - 1), n=st.sampled_from([1, 3, 8, 13, 16, 20]),
          shift=st.sampled_from([0, 0, 0, 0, 1, -1]))
    def write(self, z, n, shift):
        at = self.model.wp[z] + shift
        if at < 0 or at >= ZS:
            at = self.model.wp[z]
        n = min(n, NZ * ZS - (z * ZS + at))                # the library refuses LBAs past the namespace
        self._write(z, at, n, append=False)

    @rule(z=st.integers(0, NZ - 1), n=st.sampled_from([1, 2, 5, 8, 11]))
    def append(self, z, n):
        self._write(z, None, n, append=True)

    @rule(z=st.integers(0, NZ - 1), name=st.sampled_from(["open", "close", "finish", "reset", "offline"]))
    def action(self, z, name):
        try:
            getattr(self.dev, f"{name}_zones")(z * ZS, ZS)
            status = 0
        except ZoneCommandError as e:
            status = e.status & ~int(Status.DNR)
        assert status == self.model.action(name, z), (name, z, hex(status))
        if name == "reset" and not status:
            self._forget_failures(z)

    @rule(name=st.sampled_from(["open", "close", "finish", "reset"]))
    def select_all(self, name):
        m = self.model
        want = 0
        chosen = [z for z in range(NZ) if m.state[z] in Model.SELECT_ALL[name] or (name == "reset" and m.state[z] == E)]
        for z in chosen:                        # the device's order: zone by zone, first error ends it
            st_ = m.action(name, z)
            if name == "reset":
                self._forget_failures(z)
            if st_:
                want = st_
                break
        try:
            getattr(self.dev, f"{name}_zones")(0, 0)
            status = 0
        except ZoneCommandError as e:
            status = e.status & ~int(Status.DNR)
        assert status == want

    @rule(z=st.integers(0, NZ - 1), k=st.integers(1, 2))
    def fail_next_programs(self, z, k):
        """The next k physical units of zone z fail to program."""
        zb = self.zd.mode.zb
        lay = self.zd.mode.lay
        units = range(zb.phys[z], min(zb.phys[z] + k, lay.units))
        self.failing.setdefault(z, set()).update(lay.unit_at(z, p) for p in units)
        self.zd.faults.program_fail = self._faults().program_fail

    def _forget_failures(self, z):
        if self.failing.pop(z, None) is not None:
            self.zd.faults.program_fail = self._faults().program_fail

    @rule(clean=st.booleans())
    def restart(self, clean):
        self.zd.restart(clean=clean, faults=self._faults())
        self.model.power_on()

    @rule(z=st.integers(0, NZ - 1), n=st.sampled_from([5, 13, 24, 40]), nops=st.integers(0, 9))
    def cut_inside_write(self, z, n, nops):
        m = self.model
        self.version += 1
        v = self.version
        start = z * ZS + m.wp[z]
        n = min(n, NZ * ZS - start)                        # the library refuses LBAs past the namespace
        lbas = np.arange(start, start + n)
        before = (m.state[z], m.wp[z])
        self.zd.cut_after(nops)
        try:
            self.dev.write(start, stamp(lbas, v), meta_of(lbas, v))
        except ZoneCommandError as e:            # refused before any media operation: no cut
            self.zd.faults.power_cut_after = None
            status = e.status & ~int(Status.DNR)
            if status == Status.WRITE_FAULT and self.failing.get(z):
                assert not m.open(z, implicit=True)
                self._resync(z, v, n)
            else:
                assert status == m.write(z, None, n, v)
            return
        except DriverError:
            self.zd.restart(clean=False, faults=self._faults())
            zone = self.dev.zone(z)
            landed = zone.written - before[1]
            assert 0 <= landed <= n, (before, zone)
            st_ = m.open(z, implicit=True)
            assert not st_
            m.land(z, landed, v)
            m.power_on()
            if zone.cond == F and zone.attrs & ZoneAttr.ZFC:
                m.set(z, F)
            return
        self.zd.faults.power_cut_after = None    # done within nops: no cut
        assert m.write(z, None, n, v) == 0

    @precondition(lambda self: any(s not in (RO, OFF) for s in self.model.state))
    @rule(z=st.integers(0, NZ - 1), nops=st.integers(0, 3))
    def cut_inside_reset(self, z, nops):
        m = self.model
        if m.state[z] in (RO, OFF):
            return
        dirty = self.zd.mode.zb.dirty(z)
        self.zd.cut_after(nops)
        try:
            self.dev.reset_zones(z * ZS, ZS)
            self.zd.faults.power_cut_after = None
        except DriverError:
            assert dirty
            self.zd.restart(clean=False, faults=self._faults())
            m.power_on()
        m.action("reset", z)
        self._forget_failures(z)
        self.zd.faults.program_fail = self._faults().program_fail

    # ------------------------------------------------------------ invariants
    @invariant()
    def zones_match_the_model(self):
        if not hasattr(self, "zd"):
            return
        m = self.model
        zones = self.dev.report_zones()
        got = [(z.cond, z.written if z.wp is not None else None) for z in zones]
        want = [(m.state[z], m.wp[z] if m.state[z] in (E,) + ACTIVE else None) for z in range(NZ)]
        assert got == want
        mode = self.zd.mode
        assert (mode.zones.n_open, mode.zones.n_active) == (m.count(OPEN), m.count(ACTIVE))

    @invariant()
    def data_matches_the_model(self):
        if not hasattr(self, "zd"):
            return
        m = self.model
        for z in range(NZ):
            if m.state[z] == OFF:
                continue
            data, meta = self.dev.read(z * ZS, ZCAP, with_meta=True)
            d = data.reshape(ZCAP, 4096)
            got = d[:, 8:16].copy().view(np.int64).ravel()
            assert (got == m.ver[z]).all(), (z, got, m.ver[z])
            written = m.ver[z] > 0
            lbas = z * ZS + np.arange(ZCAP)
            want = stamp(lbas[written], m.ver[z][written]).reshape(-1, 4096)
            assert (d[written] == want).all() and not d[~written].any()
            assert (meta.reshape(ZCAP, 16)[written] == meta_of(lbas[written], m.ver[z][written]).reshape(-1, 16)).all()


ZonesMachine.TestCase.settings = settings(max_examples=20, stateful_step_count=25, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
test_zns_zones_follow_the_model_through_faults_and_power_cuts = pytest.mark.device_errors_expected(
    ZonesMachine.TestCase)
