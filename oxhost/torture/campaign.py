"""A power-cut campaign on one small disk: seeded rounds of self-describing writes, discards
and flushes, each ended by a cut at the N-th media operation; the stack is reopened,
recovers, and every sector of the volume is checked against the oracle before the next
round goes on on the same media.

Cut points are random within a round's workload, inside recovery itself, or aimed at the
moments that matter (lines or blocks opened and closed, GC, checkpoints, erases): a dry
run of the round on a copy of the disk shows where they fall, and the real round cuts
inside one. A round's workload goes on until its cut, so every round ends in one while
the device does media operations. Everything follows from (seed, mode, round, cuts
asked), so a round -- and any violation it finds -- replays exactly with the same
arguments and `--until-round`.

Permanent media faults (program and erase failures) retire blocks. So that the device
stays writable to the end, the campaign spends a budget of about half the spare blocks
the volume has at its start (wear.py), spread evenly over the rounds, and counts the
blocks they cost; transient read errors are not budgeted. A campaign that makes fewer
cuts than asked, or whose device goes read-only before the last tenth of its rounds, is
incomplete: it says so (ModeReport.problems) and `ox torture` exits non-zero, unless
read-only is what was asked for (`allow_read_only`).
"""
import logging
import os
import shutil
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from oxemu import Faults, Geometry

from ..blockdev import NoSpace, ReadOnly
from ..driver import DriverError
from ..stack import mode_name, mode_slug
from . import stamp
from .disk import copy_sparse, scratch_dir
from .oracle import Oracle, Violation
from .wear import Wear, allowance, fault_budget, wear
from .workload import READ_CHUNK, Cut, Session, Workload, verify_all

log = logging.getLogger(__name__)

MODE_IDS = {"pblk": 1, "appnvm": 2}       # seeds of the built-ins; other stacks: mode_id()


def stack_option(mode: str) -> str:
    """The `ox torture` option naming a stack: --mode for the built-ins, --stack else."""
    return f"--mode {mode}" if mode in MODE_IDS else f"--stack {mode}"


def mode_id(mode: str) -> int:
    """The number a stack mode's seeds are drawn with: stable for a mode's short name, so a
    plug-in FTL replays the same wherever its file lives."""
    return MODE_IDS.get(mode) or 3 + zlib.crc32(mode_name(mode).encode()) % 100_000
FAULT_MIXES = {                      # what --faults NAME adds to every round (rates per op)
    "program": dict(program_fail_rate=0.002),
    "erase": dict(erase_fail_rate=0.01),
    "read": dict(read_error_rate=0.002),
    "bad": dict(factory_bad_rate=0.01),
}
PERMANENT = ("program", "erase")     # mixes whose faults retire blocks: budgeted
OPS_PER_ROUND = 400                  # host requests a dry run issues to find where events fall
MAX_REQUESTS = 10 * OPS_PER_ROUND    # a round that reaches no cut by then stops cleanly
CUT_WINDOW = 6000                    # media operations a random cut lands within


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
    allow_read_only: bool = False    # a device that goes read-only early is the point
    fault_budget: bool = True        # lab: False lets the rates retire blocks unbudgeted
    until_round: int | None = None   # replay: stop after this many rounds of the campaign

    def replay_command(self, mode: str, rounds: int) -> str:
        g = self.geometry
        cmd = (f"ox torture {stack_option(mode)} --seed {self.seed} --cuts {self.cuts} --until-round {rounds} "
               f"--geometry {g.nchannels}x{g.nluns}x{g.nblocks}x{g.npages}")
        if self.faults:
            cmd += f" --faults {','.join(self.faults)}"
        if not self.fault_budget:
            cmd += " --no-fault-budget"
        if not self.discard:
            cmd += " --no-discard"
        if self.config_args:
            cmd += " " + " ".join(self.config_args)
        return cmd


@dataclass
class ModeReport:
    mode: str
    cuts_asked: int = 0
    cuts: int = 0                    # rounds ended by a power cut
    clean_stops: int = 0             # rounds whose workload ended before their cut
    recovery_cuts: int = 0           # cuts that fell inside recovery
    targeted_cuts: int = 0
    sectors_verified: int = 0
    recovery_s: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    read_only: str | None = None
    read_only_round: int | None = None
    final_overwrite: str = "not run"
    wall_s: float = 0.0
    host_ops: int = 0
    rounds: int = 0
    spare_blocks: int | None = None  # blocks the FTL could lose before going read-only, at the start
    fault_budget: int | None = None  # permanent faults the campaign may inject (None: unbudgeted)
    permanent_faults: int = 0        # program and erase failures injected
    blocks_retired: int | None = None   # blocks grown bad during the campaign
    problems: list = field(default_factory=list)   # why the campaign is incomplete
    accepted: bool = False           # the problems are a read-only device, and that was the point
    history: list = field(default_factory=list)    # per round: (plan, cut point, cut made, faults)

    @property
    def failed(self) -> bool:
        return bool(self.violations) or (bool(self.problems) and not self.accepted)

    def summary(self) -> str:
        rec = sorted(self.recovery_s)
        slow = f"{rec[-1]:.3f} s" if rec else "-"
        med = f"{rec[len(rec) // 2]:.3f} s" if rec else "-"
        out = (f"{mode_name(self.mode)}: {self.cuts} of {self.cuts_asked} cuts ({self.targeted_cuts} targeted, "
               f"{self.recovery_cuts} in recovery, {self.clean_stops} clean stops), ")
        if self.fault_budget is not None or self.permanent_faults or self.blocks_retired:
            budget = "unbudgeted" if self.fault_budget is None else \
                f"budget {self.fault_budget} of {self.spare_blocks} spare"
            out += (f"{self.blocks_retired} blocks retired by {self.permanent_faults} injected "
                    f"program/erase faults ({budget}), ")
        ro = "writable to the end" if self.read_only_round is None else \
            f"read-only from round {self.read_only_round} of {self.rounds}"
        out += (f"{ro}, {self.sectors_verified:,} sectors verified, {len(self.violations)} violations, "
                f"final overwrite {self.final_overwrite}, slowest recovery {slow} (median {med}), "
                f"{self.wall_s:.1f} s")
        if self.problems:
            out += ("; INCOMPLETE, accepted (--allow-read-only): " if self.accepted else "; INCOMPLETE: ") \
                + "; ".join(self.problems)
        return out

    def as_dict(self) -> dict:
        rec = sorted(self.recovery_s)
        return dict(cuts_asked=self.cuts_asked, cuts=self.cuts, rounds=self.rounds, clean_stops=self.clean_stops,
                    recovery_cuts=self.recovery_cuts, targeted_cuts=self.targeted_cuts,
                    sectors_verified=self.sectors_verified, violations=self.violations,
                    read_only=self.read_only, read_only_round=self.read_only_round,
                    spare_blocks=self.spare_blocks, fault_budget=self.fault_budget,
                    permanent_faults=self.permanent_faults, blocks_retired=self.blocks_retired,
                    final_overwrite=self.final_overwrite, host_ops=self.host_ops,
                    problems=self.problems, accepted=self.accepted, failed=self.failed,
                    recovery_s=dict(max=rec[-1] if rec else None, median=rec[len(rec) // 2] if rec else None,
                                    count=len(rec)),
                    wall_s=round(self.wall_s, 3))


def _events(stack) -> tuple:
    """Counters that move when the FTL does something worth cutting into."""
    if stack.mode in ("pblk", "pblk+2.0"):
        c = stack.blockdev.stats()["counters"]
        return tuple(c.get(k, 0) for k in ("lines_opened", "lines_closed", "gc_runs", "erases",
                                           "discarded_sectors"))
    if stack.mode == "appnvm":
        f = stack.machine.stats().get("ftl", {})
        return tuple(f.get(k, 0) for k in ("checkpoints", "erases", "gc_victims", "trimmed_sectors"))
    m = stack.machine.stats()["media"]                 # any other FTL: what it did to the media
    return (m["erases"], m.get("erase_fails", 0), m.get("program_fails", 0))


def _read_only_reason(stack) -> str | None:
    """Why a host-side FTL turned read-only (None while it writes)."""
    bdev = stack.blockdev
    if not bdev.read_only:
        return None
    return bdev.stats().get("read_only_reason") or "the FTL reports it is read-only"


class ModeCampaign:
    """The rounds of one mode on one disk file."""

    def __init__(self, mode: str, cfg: Config, disk: str, progress=None):
        self.mode = mode
        self.cfg = cfg
        self.disk = disk
        self.report = ModeReport(mode, cuts_asked=cfg.cuts)
        self.oracle: Oracle | None = None
        self.progress = progress
        self.recovery_ops = 200
        self.read_only: str | None = None
        self.rounds = self.rounds_done = 0
        self.start: Wear | None = None
        self.budget: int | None = None
        self._ro_judged = False

    # ------------------------------------------------------------ plumbing
    def _faults(self, r: int) -> Faults:
        kw = {}
        for name in self.cfg.faults:
            kw.update(FAULT_MIXES[name])
        f = Faults(seed=self.cfg.seed * 7919 + r * 31 + mode_id(self.mode), **kw)
        if self.budget is not None:
            f.permanent_limit = max(0, allowance(self.budget, self.cfg.cuts, r) - self.report.permanent_faults)
        elif self._budgeted:
            f.permanent_limit = 0            # round 0: until the spares are known
        return f

    @property
    def _budgeted(self) -> bool:
        return self.cfg.fault_budget and any(m in PERMANENT for m in self.cfg.faults)

    def _open(self, disk: str, faults: Faults):
        from ..stack import open_stack
        return open_stack(mode=self.mode, disk=disk, geometry=self.cfg.geometry, faults=faults,
                          config=self.cfg.ox_config)

    def _violate(self, r: int, v: Violation, when: str) -> None:
        d = v.as_dict()
        d.update(round=r, when=when, replay=self.cfg.replay_command(self.mode, r + 1))
        self.report.violations.append(d)
        log.error("torture %s round %d (%s): LBA %d: %s (expected %s, got %s)", self.mode, r, when,
                  v.lba, v.kind, v.expected, v.got)

    def _verify_all(self, r: int, stack, settle: bool) -> None:
        if self.oracle is None:
            self.oracle = Oracle(stack.blockdev.size // stamp.SECTOR)
        self.report.sectors_verified += verify_all(stack.blockdev, self.oracle,
                                                   lambda v, when: self._violate(r, v, when), settle)

    def _workload(self, r: int, oracle: Oracle | None = None, violate=None) -> Workload:
        return Workload(oracle or self.oracle, _workload_rng(self.cfg, self.mode, r),
                        violate=violate or (lambda v, when: self._violate(r, v, when)),
                        discard=self.cfg.discard, read_only=self.read_only)

    def _went_read_only(self, r: int, why: str | None) -> None:
        if why and not self.read_only:
            self.read_only = why
            self.report.read_only = f"round {r}: {why}"
            self.report.read_only_round = r
            log.warning("torture %s: the volume went read-only in round %d: %s", self.mode, r, why)

    def _judge_read_only(self, r: int, stack) -> None:
        """A device that went read-only with spare blocks left by its FTL's own rule wedged:
        its GC or its read-only rule is wrong (judged once, with the stack at hand)."""
        if not self.read_only or self._ro_judged:
            return
        self._ro_judged = True
        spare = wear(stack).spare
        if spare > 0:
            self._violate(r, Violation(-1, "wedged", f"writes taken while {spare} spare block(s) are left",
                                       f"read-only: {self.read_only}"), "read-only")

    def _know_spares(self, stack) -> None:
        """At the first open: the wear the campaign starts from, and its fault budget."""
        if self.start is not None:
            return
        self.start = wear(stack)
        self.report.spare_blocks = self.start.spare
        if self._budgeted:
            self.budget = self.report.fault_budget = fault_budget(self.start.spare)

    # ------------------------------------------------------------ one round
    def _plan(self, r: int):
        """(kind, cut): where round r pulls the plug -- in recovery (media operations from
        the power-on), else counted from the end of the round's verification."""
        rng = np.random.default_rng([self.cfg.seed, mode_id(self.mode), r, 0])
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
        dry_disk = self.disk + ".dry"
        copy_sparse(self.disk, dry_disk)
        spans = []
        try:
            s = Session(self._open, dry_disk, self._faults(r))
            try:
                stack = s.stack
                oracle = self.oracle.copy()
                verify_all(stack.blockdev, oracle, lambda v, when: None, settle=True)
                s.zero()
                state = {"ops": 0, "ev": _events(stack)}

                def watch(i):
                    ev = _events(stack)
                    if ev != state["ev"] and s.ops > state["ops"]:
                        spans.append((state["ops"], s.ops))
                    state["ops"], state["ev"] = s.ops, ev
                w = self._workload(r, oracle, lambda v, when: None)
                w.run(s, OPS_PER_ROUND, watch=watch)
            finally:
                s.abandon()
        except Exception as e:           # noqa: BLE001 - a dry run that fails aims nowhere
            log.debug("torture: dry run of round %d failed: %s", r, e)
            return None
        if not spans:
            return None
        lo, hi = spans[int(rng.integers(0, len(spans)))]
        return int(rng.integers(lo, hi))            # the operation interrupted: one of the request's

    def round(self, r: int) -> None:
        kind, cut = self._plan(r)
        faults = self._faults(r)
        rep = self.report
        t0 = time.perf_counter()
        try:
            s = Session(self._open, self.disk, faults, cut=cut if kind == "recovery" else None)
        except DriverError:
            rep.cuts += 1
            rep.recovery_cuts += 1
            rep.permanent_faults += faults.permanent
            rep.history.append((kind, cut, True, faults.permanent))
            return
        stack = s.stack
        opened = time.perf_counter() - t0
        if r:
            rep.recovery_s.append(opened)
            self.recovery_ops = max(2, s.ops)
        self._know_spares(stack)
        if self.budget is not None:
            faults.permanent_limit = max(0, allowance(self.budget, self.cfg.cuts, r) - rep.permanent_faults)
        self._went_read_only(r, _read_only_reason(stack))
        self._judge_read_only(r, stack)
        cut_happened = False
        try:
            try:
                self._verify_all(r, stack, settle=True)
            except DriverError:
                cut_happened = True
            if not cut_happened:
                if kind != "recovery":
                    s.zero()
                    s.arm(cut)
                w = self._workload(r)
                try:
                    w.run(s, MAX_REQUESTS)
                except Cut:
                    cut_happened = True
                rep.host_ops += w.requests
                self._went_read_only(r, w.read_only)
                if not cut_happened:
                    self._judge_read_only(r, stack)
            if cut_happened and s.powered:
                self._violate(r, Violation(-1, "stopped", "the device running", "a driver error with power on"),
                              "workload")
        finally:
            if cut_happened:
                s.abandon()
            else:
                try:
                    stack.close()
                except DriverError:
                    s.abandon()
                    cut_happened = True
        rep.permanent_faults += faults.permanent
        rep.history.append((kind, cut, cut_happened, faults.permanent))
        if cut_happened:
            rep.cuts += 1
            if kind == "targeted":
                rep.targeted_cuts += 1
        else:
            rep.clean_stops += 1
            self.oracle.flushed()            # a clean stop flushes

    def final_overwrite(self) -> None:
        """After the last round, the whole volume is written once more: free space kept.
        Then the wear the campaign ends with."""
        r = self.rounds
        faults = self._faults(r)
        stack = self._open(self.disk, faults)
        try:
            self._know_spares(stack)
            self._went_read_only(r, _read_only_reason(stack))
            self._judge_read_only(r, stack)
            self._verify_all(r, stack, settle=True)
            self.report.final_overwrite = self._overwrite(r, stack)
            self.report.blocks_retired = wear(stack).grown_bad - self.start.grown_bad
        finally:
            self.report.permanent_faults += faults.permanent
            stack.close()

    def _overwrite(self, r: int, stack) -> str:
        if self.read_only:
            return "skipped: the volume is read-only"
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
            self._judge_read_only(r, stack)
            return "stopped: the volume went read-only"
        except NoSpace as e:
            self._violate(r, Violation(-1, "wedged", "room for a full overwrite", str(e)), "final overwrite")
            return f"failed: {e}"
        self._verify_all(r, stack, settle=False)
        return "ok"

    def _judge(self) -> None:
        """Blocks lost beyond the faults injected are a violation (a power cut never costs
        a good block, SPEC 8); a short or early read-only campaign is incomplete."""
        rep, r = self.report, self.rounds
        if rep.blocks_retired is not None and rep.blocks_retired > rep.permanent_faults:
            self._violate(r - 1, Violation(-1, "retired", f"at most {rep.permanent_faults} blocks retired "
                                           "(one per injected program or erase failure)",
                                           f"{rep.blocks_retired}"), "end")
        if self.cfg.until_round is not None:
            return                           # a replay stops where it was told to
        ro_problems = 0
        if rep.cuts < rep.cuts_asked:
            why = (f"{rep.clean_stops} round(s) stopped before their cut")
            if self.read_only:
                why += ", the device being read-only"
                ro_problems += 1
            rep.problems.append(f"{rep.cuts} of {rep.cuts_asked} cuts made in {r} rounds: {why}")
        if rep.read_only_round is not None and rep.read_only_round < r - r // 10:
            rep.problems.append(f"the device went read-only in round {rep.read_only_round} of {r}, "
                                f"before the last tenth: {self.read_only}")
            ro_problems += 1
        rep.accepted = bool(rep.problems) and self.cfg.allow_read_only and ro_problems == len(rep.problems)

    def run(self) -> ModeReport:
        """Rounds until cfg.cuts power cuts have happened (a round whose workload ends
        first stops cleanly, which is checked too), then the final overwrite."""
        t0 = time.perf_counter()
        r = 0
        last = 4 * self.cfg.cuts + 10
        if self.cfg.until_round is not None:
            last = min(last, self.cfg.until_round)
        while self.report.cuts < self.cfg.cuts and r < last:
            before = self.report.cuts
            self.round(r)
            r += 1
            self.rounds_done = r
            if self.progress is not None:
                self.progress(self, self.report.cuts - before)
        self.rounds = self.report.rounds = r
        if os.path.exists(self.disk + ".dry"):
            os.unlink(self.disk + ".dry")
        self.final_overwrite()
        self._judge()
        self.report.wall_s = time.perf_counter() - t0
        return self.report


def _workload_rng(cfg: Config, mode: str, r: int):
    return np.random.default_rng([cfg.seed, mode_id(mode), r, 1])


def run(cfg: Config, progress: bool = True, echo=print) -> dict:
    """Every mode's campaign; returns the JSON-able report."""
    out = {"config": dict(seed=cfg.seed, cuts=cfg.cuts, faults=list(cfg.faults), discard=cfg.discard,
                          fault_budget=cfg.fault_budget, allow_read_only=cfg.allow_read_only,
                          until_round=cfg.until_round, geometry=cfg.geometry.describe())}
    own_dir = cfg.workdir is None
    workdir = scratch_dir() if own_dir else cfg.workdir
    os.makedirs(workdir, exist_ok=True)
    try:
        for mode in cfg.modes:
            disk = os.path.join(workdir, f"torture-{mode_slug(mode)}.disk")
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
