"""`ox up` and `ox umount` as a plain user, the README's way: a user made with `useradd -m`
whose login shell (`su - USER -c ...`) has Debian's user PATH, without /usr/sbin where
blkid and mkfs.ext4 live; a copy of the repository in its home; `bash scripts/install.sh
&& .venv/bin/ox up ./ox-mnt`; ext4 through fuse2fs; files survive an unmount and a
remount; each missing permission is one clear line.

The user is `oxtest`, made if missing and left in place afterwards: removing it would
race with processes it may still have in flight (userdel refuses while any run), and its
pip cache makes the next run's install quicker. What the tests put in its home (the
repository copy and everything in it) is removed. /dev/fuse is made 0666 while a test
needs it, as Debian's udev rule makes it, and put back afterwards."""
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile

import pytest

from oxhost.fuse.registry import mounts
from tests.conftest import require, require_tools

from .conftest import SMALL_GEOMETRY, lazy_unmount_below, wait_exit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER = "oxtest"
REPO_FILES = ("oxemu", "oxftl", "oxhost", "scripts", "pyproject.toml", "README.md")
SMALL = f"--geometry {SMALL_GEOMETRY}"


class PlainUser:
    def __init__(self, pw):
        self.name, self.uid, self.home = pw.pw_name, pw.pw_uid, pw.pw_dir
        self.repo = os.path.join(self.home, "ox")
        self.state = f"/tmp/ox-{self.uid}"          # no XDG_RUNTIME_DIR under `su -`

    def sh(self, script: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """`script` in the user's login shell, in the repository copy."""
        cp = subprocess.run(["su", "-", self.name, "-c", f"cd {shlex.quote(self.repo)} && {script}"],
                            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert cp.returncode == 0, f"{script}:\n{cp.stdout}{cp.stderr}\n{self.logs()}"
        return cp

    def path(self, *parts) -> str:
        return os.path.join(self.repo, *parts)

    def logs(self) -> str:
        out = []
        if os.path.isdir(self.state):
            for name in sorted(os.listdir(self.state)):
                if name.endswith(".log"):
                    with open(os.path.join(self.state, name), errors="replace") as f:
                        out.append(f"--- {name}\n{f.read()[-3000:]}")
        return "\n".join(out)

    def processes(self) -> list[int]:
        """The user's processes that name its repository copy (ox serving, fuse2fs)."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.stat(f"/proc/{pid}").st_uid != self.uid:
                    continue
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if os.fsencode(self.repo) in f.read():
                        found.append(int(pid))
            except OSError:
                pass
        return found

    def lingering(self) -> list[str]:
        """Those of processes() still there 10 s after `ox umount` returned (a serving
        process may still be finishing its exit after it released its lock)."""
        return [f"pid {pid}" for pid in self.processes() if not wait_exit(pid, 10)]

    def mounted(self) -> list[str]:
        return [m.mountpoint for m in mounts()
                if m.mountpoint.startswith((self.repo + os.sep, self.state + os.sep))]

    def clear(self) -> None:
        """Nothing of an earlier run left: mounts, processes, state, the repository copy."""
        lazy_unmount_below(self.repo, self.state)
        pids = self.processes()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in pids:
            wait_exit(pid, 10)
        lazy_unmount_below(self.repo, self.state)
        shutil.rmtree(self.repo, ignore_errors=True)
        shutil.rmtree(self.state, ignore_errors=True)


@pytest.fixture(scope="module")
def user():
    """The plain user with a copy of the repository in its home and the installer run."""
    require(os.geteuid() == 0, "root (to make and act as a plain user)")
    require_tools("useradd", "su", "fuse2fs", "fusermount3", "mkfs.ext4", "blkid")
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", USER], check=True, capture_output=True)
        pw = pwd.getpwnam(USER)
    u = PlainUser(pw)
    u.clear()
    os.mkdir(u.repo)
    for name in REPO_FILES:
        src, dst = os.path.join(ROOT, name), os.path.join(u.repo, name)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(src, dst)
    subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", u.repo], check=True)
    try:
        path = u.sh("echo $PATH").stdout.strip()
        require("sbin" not in path, f"a login PATH without sbin, as Debian's (got {path})")
        u.sh("bash scripts/install.sh")
        yield u
    finally:
        u.clear()


@pytest.fixture
def dev_fuse_open():
    """/dev/fuse usable by every user for the test's duration."""
    mode = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    os.chmod("/dev/fuse", 0o666)
    yield
    os.chmod("/dev/fuse", mode)


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def _ext4_at(path: str):
    return [m for m in mounts() if m.mountpoint == path]


def test_plain_user_readme_flow_up_umount_up_keeps_files(user, dev_fuse_open):
    mnt = user.path("ox-mnt")
    out = user.sh(f"bash scripts/install.sh && .venv/bin/ox up ./ox-mnt {SMALL}").stdout
    assert f"formatted and mounted at {mnt}" in out
    [entry] = _ext4_at(mnt)
    assert entry.fstype == "fuse.ext4" and entry.source.startswith(user.state + "/up-"), entry
    user.sh("head -c 3000000 /dev/urandom > ox-mnt/big && echo hello > ox-mnt/small && "
            "sha256sum ox-mnt/big > big.sum && sync")
    assert ", serving" in user.sh(".venv/bin/ox status").stdout
    assert f"unmounted {mnt}" in user.sh(".venv/bin/ox umount ./ox-mnt").stdout
    assert user.mounted() == [] and user.lingering() == []
    assert os.listdir(mnt) == []                        # nothing went underneath
    assert os.stat(user.path("ox.disk")).st_uid == user.uid

    out = user.sh(".venv/bin/ox up ./ox-mnt").stdout
    assert f"mounted at {mnt}" in out and "formatted" not in out
    assert [e.fstype for e in _ext4_at(mnt)] == ["fuse.ext4"]
    assert user.sh("cat ox-mnt/small && sha256sum -c big.sum").stdout == "hello\nox-mnt/big: OK\n"
    user.sh(".venv/bin/ox umount ./ox-mnt")
    assert user.mounted() == [] and user.lingering() == []


def test_plain_user_appnvm_round_trip(user, dev_fuse_open):
    mnt = user.path("app-mnt")
    out = user.sh(f".venv/bin/ox up ./app-mnt --disk app.disk --mode appnvm {SMALL}").stdout
    assert "formatted and mounted" in out
    user.sh("echo appnvm > app-mnt/f && sync && .venv/bin/ox umount ./app-mnt")
    assert "formatted" not in user.sh(".venv/bin/ox up ./app-mnt --disk app.disk").stdout
    assert [e.fstype for e in _ext4_at(mnt)] == ["fuse.ext4"]
    assert user.sh("cat app-mnt/f").stdout == "appnvm\n"
    user.sh(".venv/bin/ox umount ./app-mnt")
    assert user.mounted() == []


def test_plain_user_status_says_ext4_gone_when_fuse2fs_was_killed(user, dev_fuse_open):
    """fuse2fs killed behind ox's back leaves a dead mount: `ox status` says so (text and
    --json), `ox up` refuses the directory, `ox umount` clears it all."""
    mnt = user.path("kill-mnt")
    user.sh(f".venv/bin/ox up ./kill-mnt --disk kill.disk {SMALL}")
    [pid] = [p for p in user.processes() if _comm(p) == "fuse2fs"]
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(pid, 10)
    assert '"state": "ext4 gone"' in user.sh(".venv/bin/ox status --json").stdout
    assert "ext4 gone (its fuse2fs has exited" in user.sh(".venv/bin/ox status").stdout
    cp = user.sh(".venv/bin/ox up ./kill-mnt --disk kill.disk", check=False)
    assert cp.returncode == 1 and "its ext4 is gone" in cp.stderr, cp.stderr
    assert f"unmounted {mnt}" in user.sh(".venv/bin/ox umount ./kill-mnt").stdout
    assert user.mounted() == [] and user.lingering() == []
    assert user.sh(".venv/bin/ox status").stdout == "ox: no volume is mounted\n"


def test_plain_user_fuse2fs_that_mounts_nothing_is_refused(user, dev_fuse_open):
    """A `fuse2fs` stand-in earlier on PATH exits 0 and mounts nothing: `ox up` says so in
    one line and leaves nothing mounted or running; `ox status` lists nothing."""
    mnt = user.path("lie-mnt")
    user.sh("mkdir -p stand-in && printf '#!/bin/sh\\nexit 0\\n' > stand-in/fuse2fs && "
            "chmod +x stand-in/fuse2fs")
    cp = user.sh(f'PATH="$PWD/stand-in:$PATH" .venv/bin/ox up ./lie-mnt --disk lie.disk {SMALL}',
                 check=False)
    assert cp.returncode == 1 and cp.stdout == "", cp.stdout + cp.stderr
    assert cp.stderr == (f"ox: error: fuse2fs reported success but no ext4 is mounted at {mnt} "
                         f"(nothing is mounted there); nothing was left mounted\n")
    assert user.mounted() == [] and user.lingering() == []
    assert user.sh(".venv/bin/ox status").stdout == "ox: no volume is mounted\n"


def test_plain_user_ox_version_and_completion_through_its_console_script(user):
    assert user.sh(".venv/bin/ox --version").stdout.startswith("ox, version ")
    cp = user.sh("_OX_COMPLETE=bash_complete COMP_WORDS='ox mo' COMP_CWORD=1 .venv/bin/ox")
    assert "plain,mount" in cp.stdout.splitlines()


def test_plain_user_missing_permissions_are_one_line_each(user):
    def one_line(cp, *needles):
        assert cp.returncode == 1 and cp.stderr.count("\n") == 1, cp.stderr
        assert cp.stderr.startswith("ox: error: ") and all(n in cp.stderr for n in needles), cp.stderr

    os.makedirs(user.path("m"), exist_ok=True)
    os.chown(user.path("m"), user.uid, -1)
    mode = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    base = tempfile.mkdtemp(prefix="ox-nonroot-")       # root's, 0755: not the user's to write
    os.chmod(base, 0o755)
    try:
        os.chmod("/dev/fuse", 0o600)
        one_line(user.sh(".venv/bin/ox mount ./m --volatile", check=False),
                 "/dev/fuse: permission denied", "chmod 0666")
        os.chmod("/dev/fuse", 0o666)
        root_disk = os.path.join(base, "root.disk")
        open(root_disk, "wb").close()
        os.chmod(root_disk, 0o644)
        one_line(user.sh(f".venv/bin/ox mount ./m --disk {root_disk}", check=False), "permission denied")
        one_line(user.sh(f".venv/bin/ox up ./up --disk {base}/new.disk", check=False),
                 "cannot create the disk file")
        one_line(user.sh(f".venv/bin/ox up {base}/up", check=False))
        with open("/etc/fuse.conf") as f:
            allowed = any(ln.strip() == "user_allow_other" for ln in f)
        if not allowed:
            one_line(user.sh(".venv/bin/ox mount ./m --volatile --allow-other", check=False),
                     "user_allow_other")
        assert user.mounted() == [] and user.lingering() == []
    finally:
        os.chmod("/dev/fuse", mode)
        shutil.rmtree(base, ignore_errors=True)
