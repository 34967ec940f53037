"""Bad input to `ox mount / umount / up`: one clear line on stderr, a non-zero exit, no
traceback, and no stored data touched."""
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from oxemu import Geometry, Machine

from tests.conftest import require, require_tools

from .conftest import OX, ROOT_ONLY, SMALL_GEOMETRY, lazy_unmount_below, sha256, wait_exit


def assert_one_line_error(cp, *needles):
    assert cp.returncode != 0, cp.stdout
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, cp.stderr
    assert lines[0].startswith("ox: error: "), cp.stderr
    assert "Traceback" not in cp.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def make_disk(path, geometry=None):
    with Machine(lnvm=1, volt=0, disk=str(path), geometry=geometry or Geometry.small()):
        pass


def test_cli_mount_missing_mountpoint(ox, tmp_path):
    cp = ox.run("mount", tmp_path / "nowhere", "--volatile", check=False)
    assert_one_line_error(cp, "does not exist")


def test_cli_mount_on_a_file(ox, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    cp = ox.run("mount", f, "--volatile", check=False)
    assert_one_line_error(cp, "not a directory")


@ROOT_ONLY
def test_cli_mount_busy_mountpoint(ox, mnt):
    subprocess.run(["mount", "-t", "tmpfs", "none", str(mnt)], check=True)
    try:
        cp = ox.run("mount", mnt, "--volatile", check=False)
        assert_one_line_error(cp, "busy")
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_cli_mount_disk_of_another_geometry(ox, mnt, tmp_path):
    disk = tmp_path / "small.disk"
    make_disk(disk)
    before = sha256(disk)
    cp = ox.run("mount", mnt, "--disk", disk, "--geometry", "8x4x32x128", check=False)
    assert_one_line_error(cp, "geometry")
    assert sha256(disk) == before and not os.path.ismount(mnt)


@pytest.mark.parametrize("content", [b"not an ox disk" * 100, b"OXVOLT" + b"\xff" * 4090])
def test_cli_mount_corrupt_disk_file(ox, mnt, tmp_path, content):
    disk = tmp_path / "bad.disk"
    disk.write_bytes(content)
    cp = ox.run("mount", mnt, "--disk", disk, check=False)
    assert_one_line_error(cp, str(disk))
    assert disk.read_bytes() == content and not os.path.ismount(mnt)


def test_cli_mount_disk_locked_by_another_process(ox, mnt, tmp_path):
    disk = tmp_path / "held.disk"
    make_disk(disk)
    with Machine(lnvm=1, volt=0, disk=str(disk), geometry=Geometry.small()):
        cp = ox.run("mount", mnt, "--disk", disk, check=False)
        assert_one_line_error(cp, "in use")
    assert not os.path.ismount(mnt)


def test_cli_mount_volume_already_mounted_elsewhere(ox, tmp_path):
    disk = tmp_path / "shared.disk"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    ox.mount(a, "--disk", disk, "--geometry", SMALL_GEOMETRY)
    cp = ox.run("mount", b, "--disk", disk, check=False)
    assert_one_line_error(cp, "in use", str(a))
    cp = ox.run("mount", a, "--volatile", check=False)          # and a is busy
    assert_one_line_error(cp, "busy")
    ox.umount(a)


def test_cli_mount_bad_luns(ox, mnt):
    assert_one_line_error(ox.run("mount", mnt, "--volatile", "--luns", "7", check=False), "B-E")
    assert_one_line_error(ox.run("mount", mnt, "--volatile", "--luns", "4-2", check=False))
    cp = ox.run("mount", mnt, "--volatile", "--geometry", SMALL_GEOMETRY, "--luns", "0-9",
                check=False)
    assert_one_line_error(cp, "0-3")
    assert not os.path.ismount(mnt)


def test_cli_mount_without_dev_fuse(ox, mnt):
    require(os.geteuid() == 0, "root (a private mount namespace hides /dev/fuse)")
    require_tools("unshare")
    script = 'mount -t tmpfs none /dev && exec "$@"'
    cp = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                         "sh", *OX, "mount", str(mnt), "--volatile"],
                        env=ox.env, capture_output=True, text=True, timeout=60, check=False)
    assert_one_line_error(cp, "/dev/fuse")


def test_cli_umount_of_something_else(ox, tmp_path):
    assert_one_line_error(ox.run("umount", tmp_path, check=False), "not an OX mount")
    assert_one_line_error(ox.run("umount", tmp_path / "nothing", check=False), "no such")


@ROOT_ONLY
def test_cli_up_refuses_to_format_another_file_system(ox, mnt, tmp_path):
    disk = tmp_path / "swap.disk"
    ox.mount(mnt, "--disk", disk, "--geometry", SMALL_GEOMETRY)
    subprocess.run(["mkswap", str(mnt / "volume")], check=True, capture_output=True)
    ox.umount(mnt)
    before = sha256(disk)
    cp = ox.run("up", tmp_path / "up", "--disk", disk, check=False)
    assert_one_line_error(cp, "swap", "refusing")
    assert sha256(disk) == before
    assert not any(os.path.ismount(p) for p in (tmp_path / "up", mnt))


@pytest.mark.parametrize("cmd", ["mount", "umount", "up"])
def test_cli_help_explains(ox, cmd):
    cp = ox.run(cmd, "--help")
    assert "Usage:" in cp.stdout and len(cp.stdout.splitlines()) > 8


def test_cli_mount_on_a_stale_mount_after_kill9(ox, mnt):
    pid = ox.mount(mnt, "--volatile", "--geometry", SMALL_GEOMETRY)
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(pid)
    cp = ox.run("mount", mnt, "--volatile", check=False)
    assert_one_line_error(cp, "stale", "ox umount")
    ox.umount(mnt)
    ox.mount(mnt, "--volatile", "--geometry", SMALL_GEOMETRY)
    ox.umount(mnt)


@ROOT_ONLY
def test_cli_mount_is_owner_only_unless_allow_other(ox):
    require_tools("setpriv")
    base = tempfile.mkdtemp(prefix="ox-perm-")          # pytest's tmp is root-only
    os.chmod(base, 0o755)
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    try:
        for flag, allowed in (((), False), (("--allow-other",), True)):
            mnt = os.path.join(base, f"m{int(allowed)}")
            os.mkdir(mnt)
            ox.mount(mnt, "--volatile", "--geometry", SMALL_GEOMETRY, *flag)
            cp = subprocess.run([*as_nobody, "dd", f"if={mnt}/volume", "of=/dev/null", "bs=4k",
                                 "count=1"], capture_output=True, text=True, check=False)
            assert (cp.returncode == 0) == allowed, cp.stderr
            if not allowed:
                assert "Permission denied" in cp.stderr
            ox.umount(mnt)
    finally:
        lazy_unmount_below(base)
        shutil.rmtree(base, ignore_errors=True)
