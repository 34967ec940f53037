"""What a torture campaign does to a stack between power cuts: a seeded mix of host
requests -- self-describing writes and overwrites, discards, flushes and checked reads --
kept in step with the oracle, on a session that counts media operations across the
stack's remounts and pulls the plug at a chosen one.

The request stream follows from its generator alone (and from what the device answers:
a read-only device takes no more writes), so the same seed on the same media issues the
same requests and the same media operations, and a cut at operation k lands exactly
where a run without the cut did its k-th operation.
"""
import logging

import numpy as np

from oxemu import Faults

from ..blockdev import MediaError, NoSpace, ReadOnly
from ..driver import DriverError
from . import stamp
from .oracle import Oracle, Violation

log = logging.getLogger(__name__)

READ_CHUNK = 1024                    # sectors per verification read
SIZES = np.array([1, 1, 2, 4, 8, 8, 16, 32, 64, 256])


class Cut(Exception):
    """The device stopped: the power was cut."""


class Session:
    """One disk file under test, opened as a stack (and reopened by remounts), with one
    count of media operations across them: `ops` counts from the power-on, or from where
    `zero()` was called, and `arm(k)` pulls the plug when the count reaches k, i.e. the
    k+1-th operation is the one the cut interrupts -- in this machine or, after a remount,
    in the next one (its recovery included). The count comes from the media itself
    (oxemu.Faults.observer), so it is known even after the machine is gone."""

    def __init__(self, open_stack, disk: str, faults: Faults, cut: int | None = None):
        self._open = open_stack          # open_stack(disk, faults) -> Stack
        self.disk = disk
        self.faults = faults
        self._seen = 0                   # operations this machine has started (observer)
        self._base = 0                   # session count at this machine's power-on
        self._cut = None                 # the session count the plug is pulled at
        self._inner = None
        faults.observer = self._observe
        self.remounts = 0
        self.stack = None
        self.arm(cut)                    # `cut` counts from the power-on: inside recovery, say
        self.stack = self._open(disk, faults)

    def _observe(self, op: str, first: int, count: int) -> None:
        self._seen = first + count
        if self._inner is not None:
            self._inner(op, self._base + first, count)

    @property
    def ops(self) -> int:
        """Media operations since the zero, this machine's so far included."""
        return self._base + self._seen

    @property
    def powered(self) -> bool:
        """False once the cut has interrupted an operation."""
        return self._cut is None or self.ops <= self._cut

    def zero(self, observer=None) -> None:
        """Count media operations from here; `observer` (a Faults observer) hears of them,
        numbered from here."""
        d = self.ops
        self._base -= d
        if self._cut is not None:
            self._cut -= d
        self._inner = observer

    def arm(self, at: int | None) -> None:
        """Cut the power once `at` operations (from the zero) have run; None: no cut."""
        self._cut = at
        self.faults.power_cut_after = None if at is None else max(0, at - self._base)

    def remount(self) -> None:
        """A clean stop and a new power-on of the same disk (its recovery, the next
        machine's first operations). Cut raises when the power is cut on the way."""
        quiet = _AfterTheCut(self)             # the stack logs each layer a cut stopped: expected here
        stack_log = logging.getLogger("oxhost.stack")
        stack_log.addFilter(quiet)
        try:
            self.stack.close()
        except Exception:                # noqa: BLE001 - a close the cut interrupted
            if not self.powered:
                raise Cut() from None
            raise
        finally:
            stack_log.removeFilter(quiet)
        self._base += self._seen
        self._seen = 0
        self.stack = None
        self.arm(self._cut)
        self.remounts += 1               # before the open: its operations are the new power-on's
        try:
            self.stack = self._open(self.disk, self.faults)
        except DriverError:
            raise Cut() from None

    def abandon(self) -> None:
        if self.stack is not None:
            self.stack.abandon()


class _AfterTheCut(logging.Filter):
    """Drops the records a session's stack logs once its power is cut."""

    def __init__(self, session: Session):
        super().__init__()
        self.session = session

    def filter(self, record) -> bool:
        return self.session.powered


class Workload:
    """The request mix: 12 % flushes, 8 % reads checked against the oracle, 6 % discards
    (unless disabled), the rest writes of 1 to 256 sectors, a third of them into the
    first fifth of the volume (hot data that GC finds mostly invalid). Once `remount_every`
    media operations (0: never) have run since the last time, the stack is stopped cleanly
    and opened again before the next request.

    `violate(Violation, when)` hears of every wrong read; a device that refuses writes
    as read-only sets `read_only` (with the reason) and the mix goes on without writes."""

    def __init__(self, oracle: Oracle, rng: np.random.Generator, *, violate, discard: bool = True,
                 read_only: str | None = None, remount_every: int = 0):
        self.oracle = oracle
        self.rng = rng
        self.violate = violate
        self.discard = discard
        self.read_only = read_only
        self.remount_every = remount_every
        self.requests = 0                # requests issued (the one a cut interrupts included)
        self.wedged = False
        self._remounted_at = 0           # session operations at the last remount

    def run(self, session: Session, limit: int, watch=None) -> None:
        """Issue requests until `limit` are done or the device is found wedged; Cut when
        the power goes. `watch(i)` is called after request i (dry runs use it)."""
        o = self.oracle
        n = o.n
        hot = max(1, n // 5)
        rng = self.rng
        for i in range(self.requests, limit):
            self.requests = i + 1
            if self.remount_every and session.ops - self._remounted_at >= self.remount_every:
                session.remount()
                o.flushed()                       # a clean stop flushes
                self._remounted_at = session.ops
            bdev = session.stack.blockdev
            x = rng.random()
            try:
                if x < 0.12:
                    bdev.flush()
                    o.flushed()
                elif x < 0.20:
                    lba = int(rng.integers(0, n))
                    k = int(min(rng.choice(SIZES), n - lba))
                    data, bad = read_checked(bdev, lba, k)
                    for v in o.check(lba, data, bad):
                        self.violate(v, "online read")
                elif x < 0.26 and self.discard:
                    lba = int(rng.integers(0, n))
                    k = int(min(rng.choice([1, 8, 64, 512]), n - lba))
                    if not self.read_only:
                        g = o.next_gen()
                        o.maybe_discarded(lba, k, g)           # in flight: may or may not land
                        bdev.discard_sectors(lba, k)
                        o.discarded(lba, k, g)
                elif not self.read_only:
                    lba = int(rng.integers(0, hot) if rng.random() < 0.3 else rng.integers(0, n))
                    k = int(min(rng.choice(SIZES), n - lba))
                    g = o.next_gen()
                    o.maybe_wrote(lba, k, g)                   # in flight: may or may not land
                    bdev.write_sectors(lba, stamp.make(np.arange(lba, lba + k), g))
                    o.wrote(lba, k, g)
            except DriverError:
                raise Cut() from None
            except ReadOnly as e:
                if not self.read_only:
                    self.read_only = str(e)
                    log.warning("torture: the volume went read-only: %s", e)
            except NoSpace as e:
                if not self.read_only:
                    self.violate(Violation(-1, "wedged", "room for the write", str(e)), "workload")
                    self.wedged = True
                    return
            if watch is not None:
                watch(i)


def read_checked(bdev, lba: int, count: int):
    """(data, unreadable mask or None): a media error is an answer too, sector by sector."""
    try:
        return bdev.read_sectors(lba, count), None
    except MediaError as e:
        if e.failed is None or e.data is None:
            raise
        return e.data, e.failed


def verify_all(bdev, oracle: Oracle, violate, settle: bool) -> int:
    """Read every sector of the volume and check it against the oracle; the sectors read."""
    n = oracle.n
    for lba in range(0, n, READ_CHUNK):
        k = min(READ_CHUNK, n - lba)
        data, bad = read_checked(bdev, lba, k)
        for v in oracle.check(lba, data, bad, settle=settle):
            violate(v, "after recovery")
    return n
