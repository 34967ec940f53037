"""Zone states, write pointers and the open / active resources (ZNS 1.1, 2.1.1-2.1.3): the
state machine alone, no media. The mode asks it whether an action or a write may happen,
then does the media work and tells it what came of it.

Open zones (implicitly or explicitly opened) are at most `max_open`, active zones (open
or closed) at most `max_active` (0: no limit). A write to an empty or closed zone opens it
implicitly; when that would exceed `max_open`, the implicitly opened zone that was opened
first is closed to make room, as QEMU's auto-transition does; explicitly opened zones are
never closed for it. A zone written to its capacity is full and holds no resource.
"""
from collections import OrderedDict

from ...wire import Status, ZoneState

EMPTY, IO, EO, CLOSED = ZoneState.EMPTY, ZoneState.IMPLICITLY_OPEN, ZoneState.EXPLICITLY_OPEN, ZoneState.CLOSED
FULL, RO, OFFLINE = ZoneState.FULL, ZoneState.READ_ONLY, ZoneState.OFFLINE
OPEN_STATES = (IO, EO)
ACTIVE_STATES = (IO, EO, CLOSED)
_WRITE_REFUSED = {FULL: Status.ZONE_FULL | Status.DNR, RO: Status.ZONE_READ_ONLY | Status.DNR,
                  OFFLINE: Status.ZONE_OFFLINE | Status.DNR}
INVALID = Status.ZONE_INVALID_TRANSITION | Status.DNR


class ZoneTable:
    """Every zone's state and write pointer (sectors written, zone-relative)."""

    def __init__(self, nzones: int, zcap: int, max_open: int = 0, max_active: int = 0):
        self.nzones = nzones
        self.zcap = zcap
        self.max_open = max_open
        self.max_active = max_active
        self.state = [EMPTY] * nzones
        self.wp = [0] * nzones
        self.n_open = 0
        self.n_active = 0
        self._implicit: OrderedDict[int, None] = OrderedDict()   # implicitly opened, oldest first

    def assign(self, z: int, new: ZoneState) -> None:
        """Move zone z to state `new`, keeping the resource counts."""
        old = self.state[z]
        if old == new:
            return
        self.n_open += (new in OPEN_STATES) - (old in OPEN_STATES)
        self.n_active += (new in ACTIVE_STATES) - (old in ACTIVE_STATES)
        if old == IO:
            self._implicit.pop(z, None)
        if new == IO:
            self._implicit[z] = None
        self.state[z] = new

    def _room(self, active: int, opened: int) -> int:
        if self.max_active and self.n_active + active > self.max_active:
            return Status.ZONE_TOO_MANY_ACTIVE | Status.DNR
        if self.max_open and self.n_open + opened > self.max_open:
            return Status.ZONE_TOO_MANY_OPEN | Status.DNR
        return Status.SUCCESS

    def _auto_close(self) -> int | None:
        """At the open limit: close the oldest implicitly opened zone; which one, or None."""
        if not self.max_open or self.n_open < self.max_open or not self._implicit:
            return None
        z = next(iter(self._implicit))
        self.assign(z, CLOSED)
        return z

    # ------------------------------------------------------------ actions
    def open(self, z: int, implicit: bool = False) -> tuple[int, int | None]:
        """Open zone z (a write's implicit open, or the open action): (status, the zone
        closed to make room or None)."""
        s = self.state[z]
        closed = None
        if s in (EMPTY, CLOSED):
            closed = self._auto_close()
            st = self._room(int(s == EMPTY), 1)
            if st:
                return st, closed
            self.assign(z, IO if implicit else EO)
            return Status.SUCCESS, closed
        if s == IO:
            if not implicit:
                self.assign(z, EO)
            return Status.SUCCESS, None
        if s == EO:
            return Status.SUCCESS, None
        return INVALID, None

    def close(self, z: int) -> int:
        s = self.state[z]
        if s in OPEN_STATES:
            self.assign(z, CLOSED)
        elif s != CLOSED:
            return INVALID
        return Status.SUCCESS

    def finish(self, z: int) -> int:
        s = self.state[z]
        if s in (EMPTY, IO, EO, CLOSED):
            self.assign(z, FULL)
        elif s != FULL:
            return INVALID
        return Status.SUCCESS

    def can_reset(self, z: int) -> int:
        return INVALID if self.state[z] in (RO, OFFLINE) else Status.SUCCESS

    def reset(self, z: int) -> None:
        self.assign(z, EMPTY)
        self.wp[z] = 0

    def offline(self, z: int) -> int:
        s = self.state[z]
        if s == RO:
            self.assign(z, OFFLINE)
        elif s != OFFLINE:
            return INVALID
        return Status.SUCCESS

    # ------------------------------------------------------------ writes
    def write_refused(self, z: int) -> int:
        """The status a write to zone z gets for its state alone (0: it may be written)."""
        return _WRITE_REFUSED.get(self.state[z], Status.SUCCESS)

    def advance(self, z: int, n: int) -> None:
        """n sectors landed at the write pointer; a zone written to its capacity is full."""
        self.wp[z] += n
        if self.wp[z] >= self.zcap:
            self.assign(z, FULL)

    def counts(self) -> dict:
        out = {s.name.lower(): 0 for s in ZoneState}
        for s in self.state:
            out[ZoneState(s).name.lower()] += 1
        return out
