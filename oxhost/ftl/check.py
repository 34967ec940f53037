"""`ox ftl check`: a conformance run of the FTL contract (docs/ftl-api.md) against any stack --
a plug-in FTL on either side, or the built-in pblk and AppNVM. Each rule is a short
scenario through the real stack on a small disk; a failure names the rule it broke and
the command that runs that rule alone again (everything follows from the seed)."""
import dataclasses
import logging
import os
import shutil
import tempfile

import numpy as np

from oxemu import Faults, Geometry

from ..blockdev import BlockDeviceError, MediaError, NoSpace, ReadOnly
from ..driver import DriverError
from ..stack import ALIASES, mode_name, open_stack, parse_mode
from ..torture import stamp
from ..torture.oracle import Oracle
from ..torture.workload import read_checked

log = logging.getLogger(__name__)

RULES = {
    "read-after-write": "a sector reads back what was last written to it",
    "overwrite": "of several writes to a sector, the newest is what it reads",
    "trim": "trimmed and never-written sectors read as zeros",
    "media-errors": "a sector the media cannot read is an error (EIO), never zeros or other data",
    "flush-durability": "after a power cut, every sector holds its last flushed version or a newer one",
    "trim-durability": "a flushed trim survives a power cut: the sector reads zeros, never older data",
    "full-overwrite": "the whole volume can be written over and over without running out of space",
    "gc-full-drive": "on a full drive GC keeps every valid sector, power cuts during GC included",
    "cut-in-recovery": "a power cut inside recovery loses nothing: the next open recovers all of it",
}
SECTOR = stamp.SECTOR


def default_geometry() -> Geometry:
    """2 ch x 2 LUN x 16 blk x 16 pg: small enough for GC to run at once (the torture geometry)."""
    return Geometry.small(nblocks=16)


@dataclasses.dataclass
class Failure:
    rule: str
    what: str
    replay: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Broken(Exception):
    """The rule is broken: the message says how."""


class _Cut(Exception):
    """The power went while the stack was working."""


class Checker:
    """The rules against one stack mode, each on a fresh disk file in `workdir`."""

    def __init__(self, mode: str, *, seed: int = 0, geometry: Geometry | None = None,
                 workdir: str | None = None):
        self.mode = mode
        self.seed = seed
        self.geometry = geometry or default_geometry()
        self.workdir = workdir

    # ------------------------------------------------------------ plumbing
    def _open(self, faults: Faults | None = None):
        return open_stack(mode=self.mode, disk=self.disk, geometry=self.geometry, faults=faults)

    def _ops(self, stack) -> int:
        return int(stack.machine.stats()["media_ops"])

    def _rng(self, rule: str):
        return np.random.default_rng([self.seed, list(RULES).index(rule)])

    def _verify(self, bdev, oracle: Oracle, settle: bool, when: str) -> None:
        for lba in range(0, oracle.n, 512):
            k = min(512, oracle.n - lba)
            data, bad = read_checked(bdev, lba, k)
            v = oracle.check(lba, data, bad, settle=settle)
            if v:
                x = v[0]
                raise _Broken(f"{when}: LBA {x.lba} reads {x.got}, expected {x.expected} ({x.kind}"
                              f"{f'; {len(v)} sectors in all' if len(v) > 1 else ''})")

    def _write(self, bdev, oracle: Oracle, lba: int, k: int) -> None:
        g = oracle.next_gen()
        oracle.maybe_wrote(lba, k, g)
        bdev.write_sectors(lba, stamp.make(np.arange(lba, lba + k), g))
        oracle.wrote(lba, k, g)

    def _trim(self, bdev, oracle: Oracle, lba: int, k: int) -> None:
        g = oracle.next_gen()
        oracle.maybe_discarded(lba, k, g)
        bdev.discard_sectors(lba, k)
        oracle.discarded(lba, k, g)

    def _flush(self, bdev, oracle: Oracle) -> None:
        bdev.flush()
        oracle.flushed()

    def _cut_round(self, oracle: Oracle, work, cut_after: int | None, when: str) -> bool:
        """Open (recover), verify, run `work(bdev, oracle, rng)` until a cut `cut_after`
        media operations into it; True when the cut happened."""
        faults = Faults(seed=self.seed)
        stack = self._open(faults)
        cut = False
        try:
            self._verify(stack.blockdev, oracle, settle=True, when=f"after recovery ({when})")
            if cut_after is not None:
                faults.power_cut_after = self._ops(stack) + cut_after
            try:
                work(stack.blockdev, oracle)
            except DriverError:
                cut = True
        finally:
            if cut:
                stack.abandon()
            else:
                try:
                    stack.close()
                except DriverError:
                    stack.abandon()
                    cut = True
        if not cut:
            oracle.flushed()            # a clean close flushes
        return cut

    # ------------------------------------------------------------ the rules
    def rule_read_after_write(self):
        rng = self._rng("read-after-write")
        with self._open() as st:
            bdev, o = st.blockdev, Oracle(st.blockdev.size // SECTOR)
            for i in range(300):
                lba = int(rng.integers(0, o.n))
                k = int(min(rng.choice([1, 1, 3, 8, 17, 64]), o.n - lba))
                self._write(bdev, o, lba, k)
                data, bad = read_checked(bdev, lba, k)
                if o.check(lba, data, bad):
                    raise _Broken(f"write {i}: {k} sector(s) at LBA {lba} read back differently at once")
                if rng.random() < 0.1:
                    self._flush(bdev, o)
            self._verify(bdev, o, settle=False, when="after 300 writes")

    def rule_overwrite(self):
        rng = self._rng("overwrite")
        with self._open() as st:
            bdev, o = st.blockdev, Oracle(st.blockdev.size // SECTOR)
            span = min(256, o.n)
            for _ in range(4):
                self._write(bdev, o, 0, span)
                for _ in range(20):
                    lba = int(rng.integers(0, span))
                    self._write(bdev, o, lba, int(min(rng.integers(1, 9), span - lba)))
            self._flush(bdev, o)
            o.flushed()
            self._verify(bdev, o, settle=False, when="after overlapping overwrites")

    def rule_trim(self):
        rng = self._rng("trim")
        with self._open() as st:
            bdev, o = st.blockdev, Oracle(st.blockdev.size // SECTOR)
            self._verify(bdev, o, settle=False, when="on fresh media")
            span = min(1024, o.n)
            self._write(bdev, o, 0, span)
            for _ in range(30):
                lba = int(rng.integers(0, span))
                self._trim(bdev, o, lba, int(min(rng.integers(1, 65), span - lba)))
            o.flushed()                       # nothing may read older than its trim, flushed or not
            self._verify(bdev, o, settle=False, when="after trims")

    def rule_media_errors(self):
        with self._open() as st:
            bdev, o = st.blockdev, Oracle(st.blockdev.size // SECTOR)
            self._write(bdev, o, 0, 64)
            bdev.flush()
        faults = Faults(seed=self.seed)
        with self._open(faults) as st:
            faults.read_error_rate = 1.0          # every page read fails, retries included
            try:
                data = st.blockdev.read_sectors(8, 4)
            except MediaError as e:
                if e.failed is not None and not e.failed.all():
                    raise _Broken(f"4 unreadable sectors, but the error marks only "
                                  f"{int(e.failed.sum())} of them failed") from None
                return
            except BlockDeviceError as e:
                raise _Broken(f"an unreadable sector raised {type(e).__name__} ({e}), not a media error "
                              f"(EIO)") from None
            finally:
                faults.read_error_rate = 0.0
            what = "zeros" if not data.any() else "data"
            raise _Broken(f"4 sectors the media could not read were answered with {what}, not an error")

    def rule_flush_durability(self):
        rng = self._rng("flush-durability")
        o = None
        for r in range(12):
            def work(bdev, oracle):
                for _ in range(150):
                    x = rng.random()
                    if x < 0.15:
                        self._flush(bdev, oracle)
                        if rng.random() < 0.1:           # the plug goes the moment a flush returns
                            raise DriverError("the plug is pulled right after a flush")
                    else:
                        lba = int(rng.integers(0, oracle.n))
                        self._write(bdev, oracle, lba, int(min(rng.choice([1, 2, 8, 32]), oracle.n - lba)))
            if o is None:
                with self._open() as st:
                    o = Oracle(st.blockdev.size // SECTOR)
            self._cut_round(o, work, int(rng.integers(1, 400)), f"round {r}")
        self._cut_round(o, lambda b, oracle: None, None, "the last round")

    def rule_trim_durability(self):
        rng = self._rng("trim-durability")
        with self._open() as st:
            o = Oracle(st.blockdev.size // SECTOR)
        span = min(2048, o.n)
        for r in range(4):
            def work(bdev, oracle):
                self._write(bdev, oracle, 0, span)
                self._flush(bdev, oracle)
                for _ in range(8):
                    lba = int(rng.integers(0, span))
                    self._trim(bdev, oracle, lba, int(min(rng.integers(1, 129), span - lba)))
                self._flush(bdev, oracle)
                raise DriverError("the plug is pulled right after the flush")
            self._cut_round(o, work, None, f"round {r}")
        self._cut_round(o, lambda b, oracle: None, None, "the last round")

    def rule_full_overwrite(self):
        with self._open() as st:
            bdev, o = st.blockdev, Oracle(st.blockdev.size // SECTOR)
            for p in range(3):
                for lba in range(0, o.n, 256):
                    try:
                        self._write(bdev, o, lba, min(256, o.n - lba))
                    except (NoSpace, ReadOnly) as e:
                        raise _Broken(f"pass {p + 1} of 3 over the whole volume stopped at LBA {lba}: "
                                      f"{type(e).__name__}: {e}") from None
                self._flush(bdev, o)
            self._verify(bdev, o, settle=False, when="after 3 full overwrites")

    def rule_gc_full_drive(self):
        rng = self._rng("gc-full-drive")
        with self._open() as st:
            bdev, o = st.blockdev, Oracle(st.blockdev.size // SECTOR)
            for lba in range(0, o.n, 256):
                self._write(bdev, o, lba, min(256, o.n - lba))
            self._flush(bdev, o)
        per_round = max(64, o.n // 6)

        def work(bdev, oracle, rng=rng):
            written = 0
            while written < per_round:
                lba = int(rng.integers(0, oracle.n))
                k = int(min(rng.choice([1, 4, 8, 16]), oracle.n - lba))
                try:
                    self._write(bdev, oracle, lba, k)
                except (NoSpace, ReadOnly) as e:
                    raise _Broken(f"a full drive stopped taking overwrites: {type(e).__name__}: {e}") from None
                written += k
                if rng.random() < 0.05:
                    self._flush(bdev, oracle)
        for r in range(10):
            cut = self._aim(o, work, rng)
            self._cut_round(o, work, cut, f"GC round {r}")
        self._cut_round(o, lambda b, oracle: None, None, "the last round")

    def _aim(self, oracle: Oracle, work, rng) -> int:
        """A cut point just after an erase of the coming round (found by running it on a
        copy of the disk): where an FTL that erases before it rewrites loses data."""
        dry = self.disk + ".dry"
        shutil.copyfile(self.disk, dry)
        saved, self.disk = self.disk, dry
        state = rng.bit_generator.state
        erases = []
        try:
            stack = self._open(Faults(seed=self.seed))
            try:
                base = self._ops(stack)
                before = stack.machine.stats()["media"]["erases"]
                orig = stack.blockdev.write_sectors

                def watched(lba, data):
                    nonlocal before
                    orig(lba, data)
                    now = stack.machine.stats()["media"]["erases"]
                    if now != before:
                        erases.append(self._ops(stack) - base)
                        before = now
                stack.blockdev.write_sectors = watched
                work(stack.blockdev, oracle.copy())
            finally:
                stack.abandon()
        except (_Broken, BlockDeviceError, DriverError) as e:
            log.debug("dry run: %s", e)
        finally:
            self.disk = saved
            rng.bit_generator.state = state
            os.unlink(dry)
        if not erases:
            return int(rng.integers(1, 2000))
        return max(1, erases[int(rng.integers(0, len(erases)))] - int(rng.integers(0, 16)))

    def rule_cut_in_recovery(self):
        rng = self._rng("cut-in-recovery")
        with self._open() as st:
            o = Oracle(st.blockdev.size // SECTOR)

        def work(bdev, oracle):
            for _ in range(200):
                lba = int(rng.integers(0, oracle.n))
                self._write(bdev, oracle, lba, int(min(rng.choice([1, 8, 64]), oracle.n - lba)))
                if rng.random() < 0.1:
                    self._flush(bdev, oracle)
        self._cut_round(o, work, int(rng.integers(200, 800)), "the first round")
        for r in range(6):
            faults = Faults(seed=self.seed, power_cut_after=int(rng.integers(1, 60)))
            try:                                   # the cut falls inside open(): recovery stops
                stack = self._open(faults)
            except DriverError:
                continue
            try:
                self._verify(stack.blockdev, o, settle=True, when=f"after recovery {r}")
            except DriverError:
                pass
            finally:
                stack.abandon()
        self._cut_round(o, lambda b, oracle: None, None, "the last round")

    # ------------------------------------------------------------ running
    def run(self, rules=None, progress=None) -> list[Failure]:
        rules = list(rules or RULES)
        unknown = [r for r in rules if r not in RULES]
        if unknown:
            raise ValueError(f"unknown rule {unknown[0]!r} (rules: {', '.join(RULES)})")
        own = self.workdir is None
        workdir = tempfile.mkdtemp(prefix="ox-ftl-check-") if own else self.workdir
        failures = []
        try:
            for rule in rules:
                self.disk = os.path.join(workdir, f"check-{rule}.disk")
                if os.path.exists(self.disk):
                    os.unlink(self.disk)
                try:
                    getattr(self, "rule_" + rule.replace("-", "_"))()
                    what = None
                except _Broken as e:
                    what = str(e)
                except (BlockDeviceError, DriverError) as e:
                    what = f"{type(e).__name__}: {e}"
                if what is not None:
                    failures.append(Failure(rule, what, self.replay(rule)))
                if progress is not None:
                    progress(rule, what)
                if own:
                    os.unlink(self.disk)
        finally:
            if own:
                shutil.rmtree(workdir, ignore_errors=True)
        return failures

    def replay(self, rule: str) -> str:
        m = parse_mode(self.mode)
        name = mode_name(self.mode)
        if name in ALIASES:
            what = name
        else:
            what = m.kind if m.ftl is None else f"{m.ftl} --side {m.side}"
            if m.spec != "1.2":
                what += f" --spec {m.spec}"
        return f"ox ftl check {what} --rule {rule} --seed {self.seed}"
