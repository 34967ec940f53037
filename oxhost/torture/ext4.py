"""ext4 rounds of `ox torture --ext4`: the volume served by `ox mount`, ext4 loop-mounted on
it, files written and fsync'd until the device's power is cut under it; then a new mount
replays the journal, `e2fsck -fn` must find the file system clean, and every file that was
fsync'd (and not deleted since) must read back intact. Before ext4 sees the recovered
volume, every sector is checked against the daemon's write log (oxhost.torture.flushmodel):
a broken flush is told apart from a file-system-level loss."""
import errno
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

from oxemu import Geometry

from .. import tools
from ..fuse import registry
from ..stack import mode_slug
from .campaign import stack_option
from .flushmodel import FlushModel

log = logging.getLogger(__name__)

EXT4_GEOMETRY = Geometry(nchannels=2, nluns=2, nblocks=16, npages=32)   # ~51 MiB volume
FILES_PER_ROUND = 60
CUT_WINDOW = 1500            # media operations after the mount a cut lands within
LOW_WATER = 0.3              # files are deleted while less than this share of blocks is free


class Ext4Error(Exception):
    """An ext4 round cannot run here (not root, no /dev/fuse, a tool missing)."""


def _run(cmd, check=True, timeout=300, env=None) -> subprocess.CompletedProcess:
    cp = subprocess.run(tools.command(cmd), capture_output=True, text=True, timeout=timeout,
                        check=False, stdin=subprocess.DEVNULL, env=env)
    if check and cp.returncode:
        raise Ext4Error(f"{' '.join(map(str, cmd))} failed ({cp.returncode}): "
                        f"{(cp.stderr or cp.stdout).strip()[-400:]}")
    return cp


def _preflight() -> None:
    if os.geteuid() != 0:
        raise Ext4Error("--ext4 needs root (loop mounts of the volume)")
    if not os.path.exists("/dev/fuse"):
        raise Ext4Error("--ext4 needs /dev/fuse")
    for tool in ("mkfs.ext4", "e2fsck", "mount", "umount", "fusermount3"):
        if not tools.which(tool):
            raise Ext4Error(f"--ext4 needs {tool}: install {tools.PACKAGES[tool]}")


class Ext4Campaign:
    def __init__(self, mode: str, cfg, rounds: int, workdir: str):
        self.mode, self.cfg, self.rounds = mode, cfg, rounds
        self.dir = workdir
        self.disk = os.path.join(workdir, f"ext4-{mode_slug(mode)}.disk")
        self.fuse_mnt = os.path.join(workdir, f"fuse-{mode}")
        self.ext4_mnt = os.path.join(workdir, f"ext4-{mode}")
        self.state = os.path.join(workdir, f"state-{mode}")
        self.env = dict(os.environ, OX_STATE_DIR=self.state)
        self.synced: dict[str, str] = {}          # file -> sha256 of what was fsync'd
        self.files: set[str] = set()              # every file written, fsync'd or not
        self.recent: dict[str, bytes] = {}        # this round's fsync'd files, to say what differs
        self.write_log = os.path.join(workdir, f"writes-{mode}.log")
        self.disk_before = self.disk + ".before-round"
        self.cut = None
        self.replay_hint = None
        self.flushes: FlushModel | None = None    # the volume's flush contract, from the log
        self.flushes_unknown = False              # after an unclean stop outside a cut
        self.report = dict(rounds=0, cuts=0, clean_stops=0, files_verified=0, fsck_clean=0,
                           sectors_verified=0, violations=[], recovery_s=[])
        self.pid = None

    # ------------------------------------------------------------ plumbing
    def _ox(self, *args, check=True):
        return _run([sys.executable, "-m", "oxhost.cli", *map(str, args)], check=check, env=self.env)

    def _mount_volume(self, cut: int | None) -> float:
        args = ["mount", self.fuse_mnt, "--disk", self.disk, "--stack", self.mode, "--write-log",
                self.write_log, *self.cfg.config_args]
        if not (self.cfg.ox_config is not None and self.cfg.ox_config.is_set("geometry")):
            g = EXT4_GEOMETRY
            args += ["--geometry", f"{g.nchannels}x{g.nluns}x{g.nblocks}x{g.npages}"]
        if cut is not None:
            args += ["--power-cut-after", str(cut)]
        t0 = time.perf_counter()
        out = self._ox(*args).stdout
        took = time.perf_counter() - t0
        self.pid = int(out.split("(pid ")[1].split(")")[0])
        return took

    def _volume(self) -> str:
        return os.path.join(self.fuse_mnt, "volume")

    def _violate(self, r: int, kind: str, detail: str) -> None:
        v = dict(round=r, kind=kind, detail=detail,
                 replay=f"ox torture --ext4 {stack_option(self.mode)} --seed {self.cfg.seed} --cuts 1 "
                        f"--ext4-rounds {r + 1}")
        if kind == "flush broken":
            v["replay_in_process"] = self.replay_hint
        self.report["violations"].append(v)
        log.error("torture ext4 %s round %d: %s: %s", self.mode, r, kind, detail)

    def _crash(self) -> None:
        """The machine is gone: ext4 and the FUSE mount go lazily, the daemon is killed."""
        _run(["umount", "-l", self.ext4_mnt], check=False)
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 30
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        _run(["fusermount3", "-uz", self.fuse_mnt], check=False)
        self._ox("umount", self.fuse_mnt, check=False)        # clears the registry record
        self.pid = None
        if self.flushes is not None:
            self.flushes.rotate()

    def _stop(self) -> None:
        _run(["umount", self.ext4_mnt])
        self._ox("umount", self.fuse_mnt)
        self.pid = None
        self.flushes.stopped_cleanly()

    def _read_volume(self) -> tuple[bytes, list[int]]:
        """The whole volume as the new mount serves it, and the sectors it cannot read
        (read one by one where a chunk fails)."""
        size = os.path.getsize(self._volume())
        out, bad = bytearray(), []
        fd = os.open(self._volume(), os.O_RDONLY)
        try:
            for off in range(0, size, 1 << 20):
                n = min(1 << 20, size - off)
                try:
                    out += os.pread(fd, n, off)
                    continue
                except OSError:
                    pass
                for o in range(off, off + n, 4096):
                    try:
                        out += os.pread(fd, 4096, o)
                    except OSError:
                        bad.append(o // 4096)
                        out += bytes(4096)
        finally:
            os.close(fd)
        return bytes(out), bad

    def _check_sectors(self, r: int) -> None:
        """After a cut, before ext4 sees the volume: every sector holds what the last flush
        left there or a version written since (oxhost.torture.flushmodel), and reads."""
        data, unreadable = self._read_volume()
        problems = [f"sector {s} cannot be read" for s in unreadable]
        if not self.flushes_unknown:
            problems += self.flushes.check(data)
        self.flushes_unknown = False
        if problems:
            self._keep_for_replay(r)
        for p in problems[:5]:
            self._violate(r, "flush broken", p)
        if len(problems) > 5:
            self._violate(r, "flush broken", f"... and {len(problems) - 5} more sectors")
        self.report["sectors_verified"] += len(data) // 4096
        self.flushes.adopt(data)

    def _keep_for_replay(self, r: int) -> None:
        """The round's disk as it was before it, and its log: scripts/replay_ext4_round.py
        runs the round again in process (oxhost.torture.replay)."""
        stem = os.path.join(self.dir, f"violation-{self.mode}-r{r}")
        shutil.copyfile(self.disk_before, stem + ".disk")
        shutil.copyfile(self.flushes.previous, stem + ".log")
        self.replay_hint = " ".join(["python scripts/replay_ext4_round.py", "--disk", stem + ".disk",
                                     "--log", stem + ".log", "--cut", str(self.cut), "--mode", self.mode,
                                     *self.cfg.config_args])
        log.error("torture ext4 %s round %d: replay it in process with: %s", self.mode, r, self.replay_hint)

    # ------------------------------------------------------------ rounds
    def setup(self) -> None:
        for d in (self.fuse_mnt, self.ext4_mnt, self.state):
            os.makedirs(d, exist_ok=True)
        self.flushes = FlushModel(self.write_log, 0)
        self._mount_volume(None)
        self.flushes.adopt(self._read_volume()[0])
        _run(["mkfs.ext4", "-F", "-q", "-E", "nodiscard,lazy_itable_init=1", self._volume()])
        self._ox("umount", self.fuse_mnt)
        self.flushes.stopped_cleanly()

    def round(self, r: int) -> None:
        rng = np.random.default_rng([self.cfg.seed, 11, r])
        cut = int(rng.integers(1, CUT_WINDOW))
        self.cut = cut
        self.recent = {}
        shutil.copyfile(self.disk, self.disk_before)       # what an in-process replay starts from
        self._mount_volume(cut)
        cut_happened = False
        try:
            _run(["mount", "-t", "ext4", "-o", "loop", self._volume(), self.ext4_mnt])
        except Ext4Error:
            cut_happened = True                      # the cut came while mounting
        if not cut_happened:
            cut_happened = self._workload(r, rng)
        if not cut_happened:
            try:
                self._stop()
                self.report["clean_stops"] += 1
            except Ext4Error as e:           # the cut came after the last fsync: found at the flush
                log.info("torture ext4 %s round %d: the stop failed (%s): a cut", self.mode, r, e)
                cut_happened = True
        if cut_happened:
            self._crash()
            self.report["cuts"] += 1
        self._check(r, cut_happened)
        self.report["rounds"] += 1

    def _workload(self, r: int, rng) -> bool:
        """Files written and fsync'd (some deleted) until an I/O error says the device died."""
        try:
            for i in range(FILES_PER_ROUND):
                name = f"r{r:04d}-{i:03d}"
                path = os.path.join(self.ext4_mnt, name)
                delete = rng.random() < 0.15
                st = os.statvfs(self.ext4_mnt)
                if self.files and (delete or st.f_bavail < st.f_blocks * LOW_WATER):
                    victim = sorted(self.files)[int(rng.integers(0, len(self.files)))]
                    self.files.discard(victim)
                    self.synced.pop(victim, None)
                    try:
                        os.unlink(os.path.join(self.ext4_mnt, victim))
                    except FileNotFoundError:
                        pass                        # not fsync'd before a cut: gone with it
                    continue
                data = rng.integers(0, 256, int(rng.integers(1, 256)) * 1024, dtype=np.uint8).tobytes()
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                self.files.add(name)
                try:
                    if not _write_all(fd, data):
                        os.unlink(path)             # the file system is full: not a cut
                        self.files.discard(name)
                        continue
                    if rng.random() < 0.7:
                        os.fsync(fd)
                        dfd = os.open(self.ext4_mnt, os.O_RDONLY)
                        try:
                            os.fsync(dfd)
                        finally:
                            os.close(dfd)
                        self.synced[name] = hashlib.sha256(data).hexdigest()
                        self.recent[name] = data
                finally:
                    os.close(fd)
        except OSError as e:
            log.info("torture ext4 %s round %d: the volume failed (%s): a cut", self.mode, r, e)
            return True
        return False

    def _check(self, r: int, cut: bool) -> None:
        t0 = time.perf_counter()
        self._mount_volume(None)
        if cut:
            self._check_sectors(r)
        try:
            _run(["mount", "-t", "ext4", "-o", "loop", self._volume(), self.ext4_mnt])   # journal replay
            self.report["recovery_s"].append(time.perf_counter() - t0)
            _run(["umount", self.ext4_mnt])
            fsck = _run(["e2fsck", "-fn", self._volume()], check=False)
            if fsck.returncode:
                self._violate(r, "fsck", (fsck.stdout + fsck.stderr).strip()[-600:])
            else:
                self.report["fsck_clean"] += 1
            _run(["mount", "-t", "ext4", "-o", "loop,ro", self._volume(), self.ext4_mnt])
            try:
                for name, digest in sorted(self.synced.items()):
                    try:
                        with open(os.path.join(self.ext4_mnt, name), "rb") as f:
                            got_bytes = f.read()
                        got = hashlib.sha256(got_bytes).hexdigest()
                    except OSError as e:
                        self._violate(r, "lost file", f"{name}: {e}")
                        continue
                    if got != digest:
                        self._violate(r, "corrupt file", f"{name}: {_differs(self.recent.get(name), got_bytes)}")
                    self.report["files_verified"] += 1
            finally:
                _run(["umount", self.ext4_mnt])
        except Ext4Error as e:
            self._violate(r, "unmountable", str(e))
            _run(["umount", "-l", self.ext4_mnt], check=False)
        cp = self._ox("umount", self.fuse_mnt, check=False)
        if cp.returncode == 0:
            self.flushes.stopped_cleanly()
        else:                       # the next check starts from what the volume holds
            self._violate(r, "unclean stop", (cp.stderr or cp.stdout).strip()[-300:])
            self.flushes_unknown = True

    def cleanup(self) -> None:
        _run(["umount", "-l", self.ext4_mnt], check=False)
        if self.pid and _alive(self.pid):
            self._crash()
        elif registry.mount_entry(self.fuse_mnt) is not None:
            _run(["fusermount3", "-uz", self.fuse_mnt], check=False)


def _differs(want: bytes | None, got: bytes) -> str:
    """How a file differs from what was fsync'd: which 4 KiB blocks, and what they hold."""
    if want is None:
        return "content differs from what was fsync'd"
    if len(got) != len(want):
        return f"{len(got)} bytes, {len(want)} were fsync'd"
    bad = [i for i in range(0, len(want), 4096) if got[i:i + 4096] != want[i:i + 4096]]
    zeros = sum(1 for i in bad if not any(got[i:i + 4096]))
    return (f"{len(bad)} of {-(-len(want) // 4096)} 4 KiB blocks differ (first at offset {bad[0]}, "
            f"{zeros} of them zeros)")


def _write_all(fd: int, data: bytes) -> bool:
    """All of data, or False when the file system is full. A short write is not an error
    (ext4 returns what fitted before ENOSPC), so the file must not be taken as written."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                return False
            raise
        view = view[n:]
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def run_ext4(cfg, rounds: int, progress: bool = True, echo=print) -> dict:
    """ext4 rounds for every mode of cfg; the per-mode report."""
    _preflight()
    out = {}
    own = cfg.workdir is None
    workdir = tempfile.mkdtemp(prefix="ox-torture-ext4-") if own else os.path.join(cfg.workdir, "ext4")
    os.makedirs(workdir, exist_ok=True)
    try:
        for mode in cfg.modes:
            camp = Ext4Campaign(mode, cfg, rounds, workdir)
            bar = None
            if progress:
                from tqdm import tqdm
                bar = tqdm(total=rounds, desc=f"torture ext4 {mode}", unit="round", dynamic_ncols=True)
            try:
                camp.setup()
                for r in range(rounds):
                    camp.round(r)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(violations=len(camp.report["violations"]))
            finally:
                camp.cleanup()
                if bar is not None:
                    bar.close()
            rep = camp.report
            rec = sorted(rep.pop("recovery_s"))
            rep["recovery_s"] = dict(max=rec[-1] if rec else None, median=rec[len(rec) // 2] if rec else None)
            out[mode] = rep
            echo(f"{mode} ext4: {rep['rounds']} rounds ({rep['cuts']} cuts), {rep['files_verified']} "
                 f"fsync'd files verified, {rep['sectors_verified']:,} sectors checked against the "
                 f"flush log, e2fsck clean {rep['fsck_clean']}/{rep['rounds']}, "
                 f"{len(rep['violations'])} violations"
                 + (f", slowest mount after a cut {rec[-1]:.2f} s" if rec else ""))
            for v in rep["violations"][:10]:
                echo(f"  violation: round {v['round']}: {v['kind']}: {v['detail']}; replay: {v['replay']}")
    finally:
        if own and not cfg.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return out
