"""`ox mount` and `ox up` as an unprivileged user (nobody): ext4 through fuse2fs, files
survive an unmount and a remount, and each missing permission is one clear line.

The user needs a Python it can run and a copy of the project it can read: a venv made
here with the system's python3 (the installer's venv may live where other users cannot
go), in a world-readable temporary directory. /dev/fuse is made 0666 for the test, as
Debian's udev rule makes it, and put back afterwards."""
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from tests.conftest import require, require_tools

from .conftest import lazy_unmount_below

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPS = ["numpy", "unicorn", "click", "trio", "crc32c", "tqdm"]
NOBODY = 65534


@pytest.fixture(scope="module")
def nobody_env():
    require(os.geteuid() == 0, "root (to act as nobody)")
    require_tools("runuser", "fuse2fs", "fusermount3", "mkfs.ext4")
    require(os.path.exists("/usr/bin/python3"), "/usr/bin/python3 (Debian's python3)")
    base = tempfile.mkdtemp(prefix="ox-nonroot-")
    os.chmod(base, 0o755)
    try:
        for pkg in ("oxemu", "oxftl", "oxhost"):
            shutil.copytree(os.path.join(ROOT, pkg), os.path.join(base, pkg),
                            ignore=shutil.ignore_patterns("__pycache__"))
        venv = os.path.join(base, "venv")
        subprocess.run(["/usr/bin/python3", "-m", "venv", venv], check=True, capture_output=True)
        pip = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", *DEPS],
                             capture_output=True, text=True, timeout=600)
        assert pip.returncode == 0, pip.stderr[-2000:]
        home = os.path.join(base, "home")
        os.mkdir(home)
        os.chown(home, NOBODY, NOBODY)
        subprocess.run(["chmod", "-R", "a+rX", base], check=True)
        yield dict(base=base, home=home, python=os.path.join(venv, "bin", "python"))
    finally:
        lazy_unmount_below(base)
        subprocess.run(["pkill", "-9", "-u", str(NOBODY), "-f", "oxhost.cli"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def dev_fuse_open():
    """/dev/fuse usable by every user for the test's duration."""
    mode = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    os.chmod("/dev/fuse", 0o666)
    yield
    os.chmod("/dev/fuse", mode)


def as_nobody(env, *args, check=True, timeout=300) -> subprocess.CompletedProcess:
    cmd = ["runuser", "-u", "nobody", "--", "env", "-u", "OX_STATE_DIR", f"HOME={env['home']}",
           f"PYTHONPATH={env['base']}", env["python"], "-m", "oxhost.cli", *map(str, args)]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=env["home"])
    if check:
        assert cp.returncode == 0, f"ox {' '.join(map(str, args))}: {cp.stdout}{cp.stderr}"
    return cp


def sh_nobody(env, script: str) -> str:
    cp = subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c", script], capture_output=True,
                        text=True, timeout=60, cwd=env["home"])
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def test_nonroot_up_round_trip_through_fuse2fs(nobody_env, dev_fuse_open):
    env = nobody_env
    up, disk = os.path.join(env["home"], "up"), os.path.join(env["home"], "ox.disk")
    for mode in ("pblk", "appnvm"):
        d = f"{disk}.{mode}"
        out = as_nobody(env, "up", up, "--disk", d, "--mode", mode, "--geometry", "2x2x16x32").stdout
        assert "formatted and mounted" in out
        assert "fuse" in subprocess.run(["findmnt", "-no", "FSTYPE", up], capture_output=True,
                                        text=True).stdout
        sh_nobody(env, f"head -c 3000000 /dev/urandom > {up}/big && echo hello > {up}/small && "
                       f"sha256sum {up}/big > {env['home']}/big.sum && sync")
        as_nobody(env, "umount", up)
        assert os.stat(d).st_uid == NOBODY
        out = as_nobody(env, "up", up, "--disk", d).stdout
        assert "formatted" not in out
        assert sh_nobody(env, f"cat {up}/small") == "hello\n"
        sh_nobody(env, f"sha256sum -c {env['home']}/big.sum")
        as_nobody(env, "umount", up)


def test_nonroot_missing_permissions_are_one_line_each(nobody_env):
    env = nobody_env
    mnt = os.path.join(env["home"], "m")
    os.makedirs(mnt, exist_ok=True)
    os.chown(mnt, NOBODY, NOBODY)
    if stat.S_IMODE(os.stat("/dev/fuse").st_mode) & 0o006 != 0o006:
        cp = as_nobody(env, "mount", mnt, "--volatile", check=False)
        assert cp.returncode == 1 and cp.stderr.count("\n") == 1
        assert "/dev/fuse: permission denied" in cp.stderr and "chmod 0666" in cp.stderr
    mode = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    os.chmod("/dev/fuse", 0o666)
    try:
        root_disk = os.path.join(env["base"], "root.disk")       # root's, 0644: not ours to write
        open(root_disk, "wb").close()
        os.chmod(root_disk, 0o644)
        cp = as_nobody(env, "mount", mnt, "--disk", root_disk, check=False)
        assert cp.returncode == 1 and cp.stderr.count("\n") == 1 and "permission denied" in cp.stderr
        cp = as_nobody(env, "mount", mnt, "--disk", os.path.join(env["base"], "new.disk"), check=False)
        assert cp.returncode == 1 and "cannot create the disk file" in cp.stderr
        with open("/etc/fuse.conf") as f:
            allowed = any(ln.strip() == "user_allow_other" for ln in f)
        if not allowed:
            cp = as_nobody(env, "mount", mnt, "--volatile", "--allow-other", check=False)
            assert cp.returncode == 1 and "user_allow_other" in cp.stderr and cp.stderr.count("\n") == 1
    finally:
        os.chmod("/dev/fuse", mode)
