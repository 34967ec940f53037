"""Real mounts, real tools: `ox` run as a subprocess, mkfs.ext4, loop mounts, fio.

Every test gets its own state directory (OX_STATE_DIR) and temporary directory; at
teardown everything mounted below them is unmounted lazily and every serving process the
test started is killed, so a failing test never leaves a mount or a daemon behind.
"""
import hashlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys

import pytest

from oxhost.fuse.registry import mounts

ROOT_ONLY = pytest.mark.usefixtures("needs_root")


@pytest.fixture(autouse=True)
def _real_mounts_possible(needs_fuse):
    """Nothing here runs without /dev/fuse: skipped on a laptop, a failure under CI=true."""

OX = [sys.executable, "-m", "oxhost.cli"]
VOLUME_BYTES = 3_435_134_976
SMALL_GEOMETRY = "2x2x16x32"     # 4 LUNs x 16 blocks of 1 MiB: 64 MiB raw, lines of 4 MiB


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def lazy_unmount_below(*roots) -> None:
    for root in roots:
        root = os.path.realpath(str(root))
        found = [m.mountpoint for m in mounts()
                 if m.mountpoint == root or m.mountpoint.startswith(root + os.sep)]
        for mp in sorted(set(found), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True, check=False)
            subprocess.run(["fusermount3", "-uz", mp], capture_output=True, check=False)


def wait_exit(pid: int, timeout: float = 30.0) -> bool:
    """Wait for a process (not our child) to exit, on its pidfd: no polling. True if it did."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready) or not pid_alive(pid)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class Ox:
    """Runs `ox` with this test's state directory; remembers the processes it started."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.state = tmp_path / "state"
        self.env = dict(os.environ, OX_STATE_DIR=str(self.state))
        self.env.pop("OX_TRACEBACK", None)
        self.pids: set[int] = set()
        self.procs: list[subprocess.Popen] = []

    def run(self, *args, check=True, timeout=300, cwd=None) -> subprocess.CompletedProcess:
        cp = subprocess.run([*OX, *map(str, args)], env=self.env, capture_output=True, text=True,
                            timeout=timeout, cwd=cwd or self.tmp, stdin=subprocess.DEVNULL,
                            check=False)
        for m in re.finditer(r"\(pid (\d+)\)", cp.stdout):
            self.pids.add(int(m.group(1)))
        if check and cp.returncode:
            raise AssertionError(f"ox {' '.join(map(str, args))} failed ({cp.returncode}):\n"
                                 f"{cp.stdout}{cp.stderr}\n{self.logs()}")
        return cp

    def popen(self, *args, **kw) -> subprocess.Popen:
        p = subprocess.Popen([*OX, *map(str, args)], env=self.env, cwd=self.tmp, text=True,
                             stdin=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        self.pids.add(p.pid)
        return p

    def mount(self, mountpoint, *args) -> int:
        """ox mount (detached); returns the serving process's pid."""
        cp = self.run("mount", mountpoint, *args)
        return int(re.search(r"\(pid (\d+)\)", cp.stdout).group(1))

    def umount(self, path, *args):
        return self.run("umount", path, *args)

    def logs(self) -> str:
        out = []
        if self.state.is_dir():
            for p in sorted(self.state.glob("*.log")):
                out.append(f"--- {p.name}\n{p.read_text()[-4000:]}")
        return "\n".join(out)

    def cleanup(self) -> None:
        lazy_unmount_below(self.tmp)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            for pipe in (p.stdout, p.stderr):
                if pipe is not None:
                    pipe.close()
        for pid in self.pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        for pid in self.pids:
            wait_exit(pid, 10)
        lazy_unmount_below(self.tmp)


@pytest.fixture
def ox(tmp_path):
    o = Ox(tmp_path)
    yield o
    o.cleanup()


@pytest.fixture
def mnt(tmp_path):
    d = tmp_path / "mnt"
    d.mkdir()
    return d


def read_stats(mountpoint) -> dict:
    with open(os.path.join(mountpoint, "stats")) as f:
        return json.load(f)


def fio(*args, timeout=300) -> dict:
    """Run fio with JSON output; fails the test (with fio's own words) on any error."""
    if not shutil.which("fio"):
        pytest.fail("fio is not installed (scripts/install.sh installs it)")
    cp = subprocess.run(["fio", "--output-format=json", "--fallocate=none",
                         "--verify_state_save=0", *args],
                        capture_output=True, text=True, timeout=timeout, check=False)
    assert cp.returncode == 0, f"fio failed ({cp.returncode}):\n{cp.stdout[-3000:]}\n{cp.stderr}"
    start = cp.stdout.index("{")
    doc = json.loads(cp.stdout[start:])
    for job in doc["jobs"]:
        assert job["error"] == 0, f"fio job {job['jobname']} error {job['error']}"
    return doc
