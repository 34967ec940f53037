"""`ox torture --exhaustive N`: one fixed seeded workload, cut at every one of its first N
media operations in turn, so that no cut point of it is left untried.

What "the first N media operations" are:

* The snapshot. A fresh volume (the stack's first open formats it) is aged by a seeded
  fill: every sector written once in order, then random overwrites until the FTL has
  collected garbage at least once, a flush and a clean stop. The disk file as it is then
  is the snapshot; every round starts from a sparse copy of it. Aged, because the first
  operations on fresh media are only the first fill (pblk starts GC about 2,000
  operations into the random mix on the torture geometry): on a volume in steady use the
  first N include GC, line turnover, erases of reused blocks and metadata.
* The workload. The random campaign's request mix (workload.py) from a generator seeded
  with --seed, with a clean stop and a new power-on once REMOUNT_EVERY media operations
  have run since the last, so the shutdown and the recovery of a clean stop are among its
  operations too.
* Operation k (1-based) is the k-th media operation VOLT performs after the stack has
  opened the snapshot (the open itself is not counted; the remounts' closes and opens
  are): an erase of one block-plane, a program or a read of one plane page.

Round k copies the snapshot, opens it, pulls the plug so that operation k is the one the
cut interrupts (1 .. k-1 complete; a program at k is torn, an erase at k does not happen),
runs the workload into the cut, opens the stack again (recovery, uncut), reads every
sector and checks it against the oracle, writes and flushes a few sectors and reads them
back (a recovered volume must take writes), checks no block was lost, and stops cleanly.
A reference run of the workload without a cut, done first, labels every operation (its
kind and what the FTL was doing: optrace.py) and names the request that issued it; a
round whose cut falls in another request is reported as not deterministic.

The workload is as long as it needs to be: requests go on until operation N has been
done (MAX_REQUESTS at most). A workload that cannot reach N operations -- a device that
stopped taking writes, say -- is covered as far as it goes and the run says so.
"""
import glob
import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from oxemu import Faults

from . import stamp
from ..stack import mode_name, mode_slug
from .campaign import FAULT_MIXES, PERMANENT, Config, mode_id, stack_option
from .disk import copy_sparse, scratch_dir
from .optrace import OpRecorder
from .oracle import Oracle, Violation
from .wear import fault_budget, wear
from .workload import Cut, Session, Workload, read_checked, verify_all

log = logging.getLogger(__name__)

REMOUNT_EVERY = 500                  # media operations between clean stops and power-ons
MAX_REQUESTS = 200_000               # a workload that reaches no cut by then ends
PROBE_SECTORS = 64                   # written and read back after each recovery


@dataclass
class ExhaustiveReport:
    mode: str
    ops_asked: int = 0
    first_op: int = 1
    ops_covered: int = 0             # rounds run, each cut at its own operation
    workload_ops: int = 0            # operations the reference run found (at most ops_asked)
    workload_requests: int = 0       # requests the reference run issued to reach them
    remounts: int = 0                # clean stops inside those requests
    permanent_faults: int = 0        # program and erase failures among those operations
    kinds: dict = field(default_factory=dict)      # operation label -> cuts that fell on one
    sectors_verified: int = 0
    violations: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    snapshot_s: float = 0.0
    wall_s: float = 0.0

    @property
    def failed(self) -> bool:
        return bool(self.violations or self.problems)

    def summary(self) -> str:
        last = self.first_op + self.ops_covered - 1
        out = (f"{mode_name(self.mode)}: exhaustive, cuts at operations {self.first_op}-{last} "
               f"({self.ops_covered} of {self.ops_asked - self.first_op + 1} asked; the workload's "
               f"{self.workload_requests} requests, {self.remounts} remounts, {self.permanent_faults} "
               f"program/erase faults), "
               f"{self.sectors_verified:,} sectors verified, {len(self.violations)} violations, "
               f"{self.wall_s:.1f} s")
        if self.problems:
            out += "; INCOMPLETE: " + "; ".join(self.problems)
        return out

    def kinds_lines(self) -> list[str]:
        return [f"  {n:6d}  {label}" for label, n in sorted(self.kinds.items(), key=lambda kv: (-kv[1], kv[0]))]

    def as_dict(self) -> dict:
        return dict(ops_asked=self.ops_asked, first_op=self.first_op, ops_covered=self.ops_covered,
                    workload_ops=self.workload_ops, workload_requests=self.workload_requests,
                    remounts=self.remounts, permanent_faults=self.permanent_faults, kinds=dict(self.kinds),
                    sectors_verified=self.sectors_verified,
                    violations=self.violations, problems=self.problems, failed=self.failed,
                    snapshot_s=round(self.snapshot_s, 3), wall_s=round(self.wall_s, 3))


class Exhaustive:
    """Every cut point of one mode's workload, on disk files under `workdir`."""

    def __init__(self, mode: str, cfg: Config, nops: int, workdir: str, first: int = 1, progress=None):
        if not 1 <= first <= nops:
            raise ValueError(f"the first operation {first} is not within 1..{nops}")
        self.mode = mode
        self.cfg = cfg
        self.nops = nops
        self.first = first
        self.workdir = workdir
        self.progress = progress
        self.snapshot = os.path.join(workdir, f"exhaustive-{mode}.snapshot")
        self.disk = os.path.join(workdir, f"exhaustive-{mode_slug(mode)}.disk")
        self.report = ExhaustiveReport(mode, ops_asked=nops, first_op=first)
        self.oracle: Oracle | None = None          # the snapshot's
        self.grown = 0                             # grown-bad blocks of the snapshot
        self.limit: int | None = None              # permanent faults a round may inject
        self.ref: OpRecorder | None = None

    # ------------------------------------------------------------ plumbing
    def _faults(self, salt: int = 0) -> Faults:
        kw = {}
        for name in self.cfg.faults:
            kw.update(FAULT_MIXES[name])
        return Faults(seed=self.cfg.seed * 7919 + salt * 31 + mode_id(self.mode), permanent_limit=self.limit,
                      **kw)

    def _open(self, disk: str, faults: Faults):
        from ..stack import open_stack
        return open_stack(mode=self.mode, disk=disk, geometry=self.cfg.geometry, faults=faults,
                          config=self.cfg.ox_config)

    def _rng(self, part: int):
        return np.random.default_rng([self.cfg.seed, mode_id(self.mode), part, 2])

    def _workload(self, oracle: Oracle, violate) -> Workload:
        return Workload(oracle, self._rng(1), violate=violate, discard=self.cfg.discard,
                        remount_every=REMOUNT_EVERY)

    def _worker_disk(self, pid) -> str:
        return os.path.join(self.workdir, f"exhaustive-{mode_slug(self.mode)}-{pid}.disk")

    def replay_command(self, k: int) -> str:
        g = self.cfg.geometry
        cmd = (f"ox torture {stack_option(self.mode)} --seed {self.cfg.seed} --exhaustive {k} --from-op {k} "
               f"--geometry {g.nchannels}x{g.nluns}x{g.nblocks}x{g.npages}")
        if self.cfg.faults:
            cmd += f" --faults {','.join(self.cfg.faults)}"
        if not self.cfg.fault_budget:
            cmd += " --no-fault-budget"
        if not self.cfg.discard:
            cmd += " --no-discard"
        if self.cfg.config_args:
            cmd += " " + " ".join(self.cfg.config_args)
        return cmd

    def _violate(self, k: int, v: Violation, when: str) -> None:
        d = v.as_dict()
        d.update(op=k, when=when, replay=self.replay_command(k))
        if self.ref is not None and k - 1 < len(self.ref.labels):
            d["op_kind"] = self.ref.labels[k - 1]
        self.report.violations.append(d)
        log.error("torture %s exhaustive, cut at operation %d (%s): LBA %d: %s (expected %s, got %s)",
                  self.mode, k, when, v.lba, v.kind, v.expected, v.got)

    # ------------------------------------------------------------ the snapshot
    def _age(self) -> None:
        """The snapshot: a fresh volume (with the factory bad blocks of --faults bad) filled,
        overwritten until GC ran, stopped cleanly."""
        if os.path.exists(self.snapshot):
            os.unlink(self.snapshot)
        bad = FAULT_MIXES["bad"] if "bad" in self.cfg.faults else {}
        st = self._open(self.snapshot, Faults(seed=self.cfg.seed, **bad))
        try:
            bdev = st.blockdev
            o = self.oracle = Oracle(bdev.size // stamp.SECTOR)
            n, chunk = o.n, 256
            g = o.next_gen()
            for lba in range(0, n, chunk):
                k = min(chunk, n - lba)
                bdev.write_sectors(lba, stamp.make(np.arange(lba, lba + k), g))
                o.wrote(lba, k, g)
            rng = self._rng(0)
            gc0 = _gc_runs(st)
            for _ in range(8 * n // chunk):
                if _gc_runs(st) > gc0:
                    break
                lba = int(rng.integers(0, n - chunk))
                g = o.next_gen()
                bdev.write_sectors(lba, stamp.make(np.arange(lba, lba + chunk), g))
                o.wrote(lba, chunk, g)
            else:
                raise RuntimeError(f"{self.mode}: GC never ran while the snapshot was aged")
            bdev.flush()
            o.flushed()
            worn = wear(st)
            self.grown = worn.grown_bad
            if any(m in PERMANENT for m in self.cfg.faults) and self.cfg.fault_budget:
                self.limit = fault_budget(worn.spare)
        finally:
            st.close()

    # ------------------------------------------------------------ the reference run
    def _reference(self) -> None:
        """The workload once without a cut: the label and the request of every operation."""
        copy_sparse(self.snapshot, self.disk)
        w = self._workload(self.oracle.copy(), lambda v, when: self._violate(0, v, f"reference run, {when}"))
        rec = OpRecorder(lambda: w.requests, self.nops)
        faults = self._faults()
        s = Session(self._open, self.disk, faults)
        try:
            s.zero(rec)
            stop = self.nops

            class _Enough(Exception):
                pass

            def watch(i):
                if s.ops >= stop:
                    raise _Enough()
            try:
                w.run(s, MAX_REQUESTS, watch=watch)
            except _Enough:
                pass
            self.report.remounts = s.remounts
            self.report.permanent_faults = faults.permanent
        finally:
            s.abandon()
        self.ref = rec
        self.report.workload_ops = min(len(rec.labels), self.nops)
        self.report.workload_requests = w.requests
        if self.report.workload_ops < self.nops:
            self.report.problems.append(f"the workload has only {self.report.workload_ops} media operations "
                                        f"in {w.requests} requests ({self.nops} asked)")

    # ------------------------------------------------------------ one round
    def round(self, k: int) -> None:
        """Cut at operation k, recover, verify."""
        rep = self.report
        copy_sparse(self.snapshot, self.disk)
        oracle = self.oracle.copy()
        w = self._workload(oracle, lambda v, when: self._violate(k, v, when))
        faults = self._faults()
        cut = False
        s = Session(self._open, self.disk, faults)
        try:
            s.zero()
            s.arm(k - 1)
            try:
                w.run(s, MAX_REQUESTS)
            except Cut:
                cut = True
        finally:
            s.abandon()
        if not cut:
            rep.problems.append(f"operation {k}: the workload ended before its cut")
            return
        want = self.ref.requests[k - 1] if k - 1 < len(self.ref.requests) else None
        if want is not None and want != w.requests:
            rep.problems.append(f"operation {k}: the cut fell in request {w.requests}, the reference run "
                                f"did that operation in request {want} (not deterministic)")
        self._recover(k, oracle, faults.permanent)

    def _recover(self, k: int, oracle: Oracle, injected: int) -> None:
        rep = self.report
        faults = self._faults(salt=1)
        st = self._open(self.disk, faults)
        try:
            bdev = st.blockdev
            rep.sectors_verified += verify_all(bdev, oracle, lambda v, when: self._violate(k, v, when),
                                               settle=True)
            rng = self._rng(2 + k)
            lba = int(rng.integers(0, oracle.n - PROBE_SECTORS))
            g = oracle.next_gen()
            oracle.maybe_wrote(lba, PROBE_SECTORS, g)
            try:
                bdev.write_sectors(lba, stamp.make(np.arange(lba, lba + PROBE_SECTORS), g))
                bdev.flush()
            except Exception as e:                # noqa: BLE001 - any failure here is the finding
                self._violate(k, Violation(lba, "wedged", "a write and flush after recovery", str(e)),
                              "after recovery")
                return
            oracle.wrote(lba, PROBE_SECTORS, g)
            oracle.flushed()
            data, bad = read_checked(bdev, lba, PROBE_SECTORS)
            for v in oracle.check(lba, data, bad):
                self._violate(k, v, "write after recovery")
            lost = wear(st).grown_bad - self.grown - injected - faults.permanent
            if lost > 0:
                self._violate(k, Violation(-1, "retired", "no block retired by a power cut",
                                           f"{lost} block(s) grown bad"), "after recovery")
        finally:
            st.close()

    def run(self, jobs: int = 1) -> ExhaustiveReport:
        """The snapshot, the reference run, then the rounds (in `jobs` processes)."""
        t0 = time.perf_counter()
        rep = self.report
        self._age()
        self._reference()
        rep.snapshot_s = time.perf_counter() - t0
        ks = list(range(self.first, min(self.nops, rep.workload_ops) + 1))
        if jobs <= 1 or len(ks) < 2 * CHUNK:
            for k in ks:
                before = len(rep.violations)
                self.round(k)
                rep.ops_covered += 1
                if self.progress is not None:
                    self.progress(self, 1, len(rep.violations) - before)
        else:
            self._run_parallel(ks, jobs)
        rep.kinds = dict(Counter(self.ref.labels[k - 1] for k in ks[:rep.ops_covered]))
        rep.violations.sort(key=lambda v: v["op"])
        if not self.cfg.keep:
            for path in [self.disk, self.snapshot] + glob.glob(self._worker_disk("*")):
                if os.path.exists(path):
                    os.unlink(path)
        rep.wall_s = time.perf_counter() - t0
        return rep

    def _run_parallel(self, ks: list, jobs: int) -> None:
        """Rounds in worker processes, a chunk of operations at a time (every jobs-th
        chunk to each, as the rounds get longer with k)."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        rep = self.report
        state = dict(mode=self.mode, cfg=self.cfg, nops=self.nops, workdir=self.workdir, snapshot=self.snapshot,
                     oracle=self.oracle, grown=self.grown, limit=self.limit,
                     labels=self.ref.labels, requests=self.ref.requests,
                     log_levels={n: logging.getLogger(n).getEffectiveLevel() for n in ("oxemu", "oxhost")})
        chunks = [ks[i:i + CHUNK] for i in range(0, len(ks), CHUNK)]
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_rounds, state, chunk) for chunk in chunks]
            for fut in as_completed(futures):
                covered, violations, problems, sectors = fut.result()
                rep.ops_covered += covered
                rep.violations.extend(violations)
                rep.problems.extend(problems)
                rep.sectors_verified += sectors
                if self.progress is not None:
                    self.progress(self, covered, len(violations))


CHUNK = 25                           # operations a worker process takes at a time


def _rounds(state: dict, ks: list) -> tuple:
    """A worker process's share: the rounds of operations ks."""
    for name, level in state["log_levels"].items():     # what the parent's command line set
        logging.getLogger(name).setLevel(level)
    ex = Exhaustive(state["mode"], state["cfg"], state["nops"], state["workdir"])
    ex.snapshot = state["snapshot"]
    ex.disk = ex._worker_disk(os.getpid())
    ex.oracle, ex.grown, ex.limit = state["oracle"], state["grown"], state["limit"]
    ex.ref = OpRecorder(lambda: 0, state["nops"])
    ex.ref.labels, ex.ref.requests = state["labels"], state["requests"]
    for k in ks:
        ex.round(k)
    r = ex.report
    return len(ks), r.violations, r.problems, r.sectors_verified


def _gc_runs(stack) -> int:
    if stack.mode == "pblk":
        return int(stack.blockdev.stats()["gc_runs"])
    if stack.mode == "appnvm":
        return int(stack.blockdev.ftl()["gc_runs"])
    stats = stack.blockdev.stats() if "@host" in stack.mode else stack.machine.stats().get("ftl", {})
    return int(stats.get("ftl_stats", {}).get("gc_runs", 0))


def run_exhaustive(cfg: Config, nops: int, first: int = 1, jobs: int = 1, progress: bool = True,
                   echo=print) -> dict:
    """Every mode's exhaustive campaign; returns the JSON-able report."""
    out = {"config": dict(seed=cfg.seed, exhaustive=nops, first_op=first, jobs=jobs, faults=list(cfg.faults),
                          discard=cfg.discard, geometry=cfg.geometry.describe(),
                          remount_every=REMOUNT_EVERY)}
    own_dir = cfg.workdir is None
    workdir = scratch_dir() if own_dir else cfg.workdir
    os.makedirs(workdir, exist_ok=True)
    try:
        for mode in cfg.modes:
            bar = None
            if progress:
                from tqdm import tqdm
                bar = tqdm(total=nops - first + 1, desc=f"exhaustive {mode}", unit="cut", dynamic_ncols=True)

            def tick(c, covered, new_violations, bar=bar):
                if bar is not None:
                    bar.update(covered)
                    bar.set_postfix(violations=len(c.report.violations))
            ex = Exhaustive(mode, cfg, nops, workdir, first=first, progress=tick)
            try:
                rep = ex.run(jobs)
            finally:
                if bar is not None:
                    bar.close()
            out[mode] = rep.as_dict()
            echo(rep.summary())
            echo("  cuts by operation kind:")
            for line in rep.kinds_lines():
                echo(line)
            for v in rep.violations[:10]:
                echo(f"  violation: cut at operation {v['op']} ({v.get('op_kind', '?')}, {v['when']}): "
                     f"LBA {v['lba']}: {v['kind']}, expected {v['expected']}, got {v['got']}; "
                     f"replay: {v['replay']}")
    finally:
        if own_dir and not cfg.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return out
