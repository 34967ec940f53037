"""A power-cut campaign on one small disk: seeded rounds of self-describing writes, discards
and flushes, each ended by a cut at the N-th media operation; the stack is reopened,
recovers, and every sector of the volume is checked against the oracle before the next
round goes on on the same media.

Cut points are random within a round's workload, inside recovery itself, or aimed at the
moments that matter (lines or blocks opened and closed, GC, checkpoints, erases): a dry
run of the round on a copy of the disk shows where they fall, and the real round cuts
inside one. Everything follows from (seed, mode, round), so a round -- and any violation
it finds -- replays exactly with the same seed and cut count.
"""
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from oxemu import Faults, Geometry

from ..blockdev import MediaError, NoSpace, ReadOnly
from ..driver import DriverError
from . import stamp
from .oracle import Oracle, Violation

log = logging.getLogger(__name__)

MODE_IDS = {"pblk": 1, "appnvm": 2}
FAULT_MIXES = {                      # what --faults NAME adds to every round (rates per op)
    "program": dict(program_fail_rate=0.002),
    "erase": dict(erase_fail_rate=0.01),
    "read": dict(read_error_rate=0.002),
    "bad": dict(factory_bad_rate=0.01),
}
OPS_PER_ROUND = 400                  # host requests a round issues when no cut ends it
CUT_WINDOW = 6000                    # media operations a random cut lands within
READ_CHUNK = 1024                    # sectors per verification read
_SIZES = np.array([1, 1, 2, 4, 8, 8, 16, 32, 64, 256])


def default_geometry() -> Geometry:
    """2 ch x 2 LUN x 16 blk x 16 pg: 8 MiB of 4 KiB sectors per mode, lines of 4 blocks."""
    return Geometry.small(nblocks=16)


@dataclass
class Config:
    modes: tuple = ("pblk", "appnvm")
    cuts: int = 1000
    seed: int = 0
    geometry: Geometry = field(default_factory=default_geometry)
    faults: tuple = ()
    discard: bool = True
    workdir: str | None = None
    keep: bool = False
    ox_config: object = None         # oxhost.config.Config for the stacks (None: defaults)
    config_args: tuple = ()          # the --config / --set arguments that gave it (replays)

    def replay_command(self, mode: str, rounds: int) -> str:
        g = self.geometry
        cmd = (f"ox torture --mode {mode} --seed {self.seed} --cuts {rounds} "
               f"--geometry {g.nchannels}x{g.nluns}x{g.nblocks}x{g.npages}")
        if self.faults:
            cmd += f" --faults {','.join(self.faults)}"
        if not self.discard:
            cmd += " --no-discard"
        if self.config_args:
            cmd += " " + " ".join(self.config_args)
        return cmd


@dataclass
class ModeReport:
    mode: str
    cuts: int = 0                    # rounds ended by a power cut
    clean_stops: int = 0
    recovery_cuts: int = 0           # cuts that fell inside recovery
    targeted_cuts: int = 0
    sectors_verified: int = 0
    recovery_s: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    read_only: str | None = None
    final_overwrite: str = "not run"
    wall_s: float = 0.0
    host_ops: int = 0

    rounds: int = 0

    def summary(self) -> str:
        rec = sorted(self.recovery_s)
        slow = f"{rec[-1]:.3f} s" if rec else "-"
        med = f"{rec[len(rec) // 2]:.3f} s" if rec else "-"
        return (f"{self.mode}: {self.cuts} cuts, {self.sectors_verified:,} sectors verified, "
                f"{len(self.violations)} violations, slowest recovery {slow} (median {med}), "
                f"{self.wall_s:.1f} s")

    def as_dict(self) -> dict:
        rec = sorted(self.recovery_s)
        return dict(cuts=self.cuts, rounds=self.rounds, clean_stops=self.clean_stops, recovery_cuts=self.recovery_cuts,
                    targeted_cuts=self.targeted_cuts, sectors_verified=self.sectors_verified,
                    violations=self.violations, read_only=self.read_only,
                    final_overwrite=self.final_overwrite, host_ops=self.host_ops,
                    recovery_s=dict(max=rec[-1] if rec else None, median=rec[len(rec) // 2] if rec else None,
                                    count=len(rec)),
                    wall_s=round(self.wall_s, 3))


class _Cut(Exception):
    """The device stopped: the power was cut."""


def _media(machine) -> tuple[int, bool]:
    st = machine.stats()
    return int(st["media_ops"]), bool(st["media_powered"])


def _events(stack) -> tuple:
    """Counters that move when the FTL does something worth cutting into."""
    if stack.mode == "pblk":
        c = stack.blockdev.stats()["counters"]
        return tuple(c.get(k, 0) for k in ("lines_opened", "lines_closed", "gc_runs", "erases",
                                           "discarded_sectors"))
    f = stack.machine.stats().get("ftl", {})
    return tuple(f.get(k, 0) for k in ("checkpoints", "erases", "gc_victims", "trimmed_sectors"))


class ModeCampaign:
    """The rounds of one mode on one disk file."""

    def __init__(self, mode: str, cfg: Config, disk: str, progress=None):
        self.mode = mode
        self.cfg = cfg
        self.disk = disk
        self.report = ModeReport(mode)
        self.oracle: Oracle | None = None
        self.progress = progress
        self.recovery_ops = 200
        self.read_only = False
        self.rounds = self.rounds_done = 0

    # ------------------------------------------------------------ plumbing
    def _faults(self, r: int, cut: int | None) -> Faults:
        kw = {}
        for name in self.cfg.faults:
            kw.update(FAULT_MIXES[name])
        return Faults(seed=self.cfg.seed * 7919 + r * 31 + MODE_IDS[self.mode], power_cut_after=cut, **kw)

    def _open(self, disk: str, faults: Faults):
        from ..stack import open_stack
        return open_stack(mode=self.mode, disk=disk, geometry=self.cfg.geometry, faults=faults,
                          config=self.cfg.ox_config)

    def _violate(self, r: int, v: Violation, when: str) -> None:
        d = v.as_dict()
        upto = self.report.cuts + (0 if when == "after recovery" else 1)   # the cut it follows
        d.update(round=r, when=when, replay=self.cfg.replay_command(self.mode, max(1, upto)))
        self.report.violations.append(d)
        log.error("torture %s round %d (%s): LBA %d: %s (expected %s, got %s)", self.mode, r, when,
                  v.lba, v.kind, v.expected, v.got)

    # ------------------------------------------------------------ verification
    def _read(self, bdev, lba: int, count: int):
        """(data, unreadable mask or None)."""
        try:
            return bdev.read_sectors(lba, count), None
        except MediaError as e:
            if e.failed is None or e.data is None:
                raise
            return e.data, e.failed

    def _verify_all(self, r: int, stack, settle: bool) -> None:
        bdev = stack.blockdev
        n = bdev.size // stamp.SECTOR
        if self.oracle is None:
            self.oracle = Oracle(n)
        o = self.oracle
        for lba in range(0, n, READ_CHUNK):
            k = min(READ_CHUNK, n - lba)
            data, bad = self._read(bdev, lba, k)
            for v in o.check(lba, data, bad, settle=settle):
                self._violate(r, v, "after recovery")
        self.report.sectors_verified += n

    # ------------------------------------------------------------ the workload
    def _workload(self, r: int, stack, rng, watch=None) -> None:
        """Requests until the device dies or OPS_PER_ROUND are done. `watch(i)` is called
        after each request (dry runs record where events happen)."""
        bdev, o = stack.blockdev, self.oracle
        n = o.n
        hot = max(1, n // 5)
        for i in range(OPS_PER_ROUND):
            x = rng.random()
            try:
                if x < 0.12:
                    bdev.flush()
                    o.flushed()
                elif x < 0.20:
                    lba = int(rng.integers(0, n))
                    k = int(min(rng.choice(_SIZES), n - lba))
                    data, bad = self._read(bdev, lba, k)
                    for v in o.check(lba, data, bad):
                        self._violate(r, v, "online read")
                elif x < 0.26 and self.cfg.discard:
                    lba = int(rng.integers(0, n))
                    k = int(min(rng.choice([1, 8, 64, 512]), n - lba))
                    if not self.read_only:
                        g = o.next_gen()
                        o.maybe_discarded(lba, k, g)           # in flight: may or may not land
                        bdev.discard_sectors(lba, k)
                        o.discarded(lba, k, g)
                elif not self.read_only:
                    lba = int(rng.integers(0, hot) if rng.random() < 0.3 else rng.integers(0, n))
                    k = int(min(rng.choice(_SIZES), n - lba))
                    g = o.next_gen()
                    o.maybe_wrote(lba, k, g)                   # in flight: may or may not land
                    bdev.write_sectors(lba, stamp.make(np.arange(lba, lba + k), g))
                    o.wrote(lba, k, g)
            except DriverError:
                raise _Cut() from None
            except ReadOnly as e:
                self._went_read_only(r, str(e))
            except NoSpace as e:
                if not self.read_only:
                    self._violate(r, Violation(-1, "wedged", "room for the write", str(e)), "workload")
                    return
            self.report.host_ops += 1
            if watch is not None:
                watch(i)

    def _went_read_only(self, r: int, why: str) -> None:
        if not self.read_only:
            self.read_only = True
            self.report.read_only = f"round {r}: {why}"
            log.warning("torture %s: the volume went read-only in round %d: %s", self.mode, r, why)

    # ------------------------------------------------------------ one round
    def _plan(self, r: int):
        """(kind, cut): where round r pulls the plug."""
        rng = np.random.default_rng([self.cfg.seed, MODE_IDS[self.mode], r, 0])
        x = rng.random()
        if x < 0.1 and r:
            return "recovery", int(rng.integers(1, max(2, self.recovery_ops)))
        if x < 0.35 and r:
            cut = self._aim(r, rng)
            if cut is not None:
                return "targeted", cut
        return "random", int(rng.integers(1, CUT_WINDOW))

    def _aim(self, r: int, rng) -> int | None:
        """Run round r without a cut on a copy of the disk (and of the oracle); a cut point
        inside one of the requests during which the FTL opened, closed, collected or erased
        something."""
        dry = ModeCampaign(self.mode, self.cfg, self.disk + ".dry")
        dry.oracle = self.oracle.copy()
        dry.read_only = self.read_only
        shutil.copyfile(self.disk, dry.disk)
        spans = []
        try:
            stack = dry._open(dry.disk, dry._faults(r, None))
            try:
                dry._verify_all(r, stack, settle=True)
                base, _ = _media(stack.machine)
                state = {"ops": base, "ev": _events(stack)}

                def watch(i):
                    ops, _ = _media(stack.machine)
                    ev = _events(stack)
                    if ev != state["ev"] and ops > state["ops"]:
                        spans.append((state["ops"] - base, ops - base))
                    state["ops"], state["ev"] = ops, ev
                dry._workload(r, stack, _workload_rng(self.cfg, self.mode, r), watch=watch)
            finally:
                stack.abandon()
        except Exception as e:           # noqa: BLE001 - a dry run that fails aims nowhere
            log.debug("torture: dry run of round %d failed: %s", r, e)
            return None
        finally:
            if os.path.exists(dry.disk):
                os.unlink(dry.disk)
        if not spans:
            return None
        lo, hi = spans[int(rng.integers(0, len(spans)))]
        return int(rng.integers(lo + 1, hi + 1))

    def round(self, r: int) -> None:
        kind, cut = self._plan(r)
        arm_at_open = kind == "recovery"
        faults = self._faults(r, cut if arm_at_open else None)
        t0 = time.perf_counter()
        try:
            stack = self._open(self.disk, faults)
        except DriverError:
            self.report.cuts += 1
            self.report.recovery_cuts += 1
            return
        except ReadOnly as e:           # pragma: no cover - read-only media still open
            self._went_read_only(r, str(e))
            raise
        opened = time.perf_counter() - t0
        ops, _ = _media(stack.machine)
        if r:
            self.report.recovery_s.append(opened)
            self.recovery_ops = max(2, ops)
        cut_happened = False
        try:
            try:
                self._verify_all(r, stack, settle=True)
            except DriverError:
                cut_happened = True
            if not cut_happened:
                if not arm_at_open:
                    faults.power_cut_after = _media(stack.machine)[0] + cut
                try:
                    self._workload(r, stack, _workload_rng(self.cfg, self.mode, r))
                except _Cut:
                    cut_happened = True
            if cut_happened and _media(stack.machine)[1]:
                self._violate(r, Violation(-1, "stopped", "the device running", "a driver error with power on"),
                              "workload")
        finally:
            if cut_happened:
                stack.abandon()
            else:
                try:
                    stack.close()
                except DriverError:
                    stack.abandon()
                    cut_happened = True
        if cut_happened:
            self.report.cuts += 1
            if kind == "targeted":
                self.report.targeted_cuts += 1
            if arm_at_open:
                self.report.recovery_cuts += 1
        else:
            self.report.clean_stops += 1
            self.oracle.flushed()            # a clean stop flushes

    def final_overwrite(self) -> None:
        """After the last round, the whole volume is written once more: free space kept."""
        r = self.rounds
        stack = self._open(self.disk, self._faults(r, None))
        try:
            self._verify_all(r, stack, settle=True)
            if self.read_only:
                self.report.final_overwrite = "skipped: the volume is read-only"
                return
            o, bdev = self.oracle, stack.blockdev
            g = o.next_gen()
            try:
                for lba in range(0, o.n, READ_CHUNK):
                    k = min(READ_CHUNK, o.n - lba)
                    o.maybe_wrote(lba, k, g)
                    bdev.write_sectors(lba, stamp.make(np.arange(lba, lba + k), g))
                    o.wrote(lba, k, g)
                bdev.flush()
                o.flushed()
            except ReadOnly as e:
                self._went_read_only(r, str(e))
                self.report.final_overwrite = "stopped: the volume went read-only"
                return
            except NoSpace as e:
                self._violate(r, Violation(-1, "wedged", "room for a full overwrite", str(e)),
                              "final overwrite")
                self.report.final_overwrite = f"failed: {e}"
                return
            self._verify_all(r, stack, settle=False)
            self.report.final_overwrite = "ok"
        finally:
            stack.close()

    def run(self) -> ModeReport:
        """Rounds until cfg.cuts power cuts have happened (a round whose workload ends
        first stops cleanly, which is checked too), then the final overwrite."""
        t0 = time.perf_counter()
        r = 0
        while self.report.cuts < self.cfg.cuts and r < 4 * self.cfg.cuts + 10:
            before = self.report.cuts
            self.round(r)
            r += 1
            self.rounds_done = r
            if self.progress is not None:
                self.progress(self, self.report.cuts - before)
        self.rounds = self.report.rounds = r
        self.final_overwrite()
        self.report.wall_s = time.perf_counter() - t0
        return self.report


def _workload_rng(cfg: Config, mode: str, r: int):
    return np.random.default_rng([cfg.seed, MODE_IDS[mode], r, 1])


def run(cfg: Config, progress: bool = True, echo=print) -> dict:
    """Every mode's campaign; returns the JSON-able report."""
    out = {"config": dict(seed=cfg.seed, cuts=cfg.cuts, faults=list(cfg.faults), discard=cfg.discard,
                          geometry=cfg.geometry.describe())}
    own_dir = cfg.workdir is None
    workdir = tempfile.mkdtemp(prefix="ox-torture-") if own_dir else cfg.workdir
    os.makedirs(workdir, exist_ok=True)
    try:
        for mode in cfg.modes:
            disk = os.path.join(workdir, f"torture-{mode}.disk")
            if os.path.exists(disk):
                os.unlink(disk)
            bar = None
            if progress:
                from tqdm import tqdm
                bar = tqdm(total=cfg.cuts, desc=f"torture {mode}", unit="cut", dynamic_ncols=True)

            def tick(c, new_cuts, bar=bar):
                if bar is not None:
                    bar.update(new_cuts)
                    bar.set_postfix(rounds=c.rounds_done, violations=len(c.report.violations))
            camp = ModeCampaign(mode, cfg, disk, progress=tick)
            try:
                rep = camp.run()
            finally:
                if bar is not None:
                    bar.close()
            out[mode] = rep.as_dict()
            echo(rep.summary())
            for v in rep.violations[:10]:
                echo(f"  violation: round {v['round']} ({v['when']}): LBA {v['lba']}: {v['kind']}, "
                     f"expected {v['expected']}, got {v['got']}; replay: {v['replay']}")
            if not cfg.keep:
                os.unlink(disk)
    finally:
        if own_dir and not cfg.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return out
