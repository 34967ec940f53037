"""`ox up` reports an ext4 mount only when the mount table shows it, and `ox status` tells
an `ox up` whose ext4 has gone from a serving one (as root: loop mounts)."""
import json
import os
import subprocess

from tests.conftest import require_tools

from .conftest import ROOT_ONLY, SMALL_GEOMETRY

pytestmark = ROOT_ONLY


def _stand_in(tmp_path, name: str, body: str) -> str:
    """A directory holding a `name` that runs `body` (sh), to put first on PATH."""
    d = tmp_path / "stand-in"
    d.mkdir(exist_ok=True)
    prog = d / name
    prog.write_text(f"#!/bin/sh\n{body}\n")
    prog.chmod(0o755)
    return f"{d}:{os.environ['PATH']}"


def _ours_below(tmp_path) -> list[str]:
    """Mounts below tmp_path, and processes whose command line names it."""
    with open("/proc/self/mountinfo") as f:
        found = [ln.split()[4] for ln in f if str(tmp_path) in ln.split()[4]]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if os.fsencode(str(tmp_path)) in f.read() and int(pid) != os.getpid():
                    found.append(f"pid {pid}")
        except OSError:
            pass
    return found


def test_up_refuses_to_report_a_mount_the_mount_table_does_not_show(ox, tmp_path):
    """A `mount` that exits 0 without mounting (a stand-in earlier on PATH): `ox up` fails
    with one line saying what it saw at DIR, and leaves nothing mounted or running."""
    require_tools("mkfs.ext4", "blkid")
    ox.env["PATH"] = _stand_in(tmp_path, "mount", "exit 0")
    up = tmp_path / "up"
    cp = ox.run("up", up, "--disk", tmp_path / "ox.disk", "--geometry", SMALL_GEOMETRY, check=False)
    assert cp.returncode == 1 and cp.stdout == ""
    assert cp.stderr.count("\n") == 1 and "Traceback" not in cp.stderr
    assert cp.stderr.startswith(f"ox: error: mount reported success but no ext4 is mounted at {up} "
                                f"(nothing is mounted there)"), cp.stderr
    assert _ours_below(tmp_path) == []
    assert ox.run("status", "--json").stdout == ""
    assert "no volume is mounted" in ox.run("status").stdout


def test_up_names_the_file_system_it_found_instead_of_ext4(ox, tmp_path):
    """A `mount` that mounts something else at DIR: the line names what is there."""
    require_tools("mkfs.ext4", "blkid")
    up = tmp_path / "up"
    real_mount = "/usr/bin/mount" if os.path.exists("/usr/bin/mount") else "/bin/mount"
    ox.env["PATH"] = _stand_in(tmp_path, "mount",
                               f'for a; do last="$a"; done; exec {real_mount} -t tmpfs ox-test "$last"')
    cp = ox.run("up", up, "--disk", tmp_path / "ox.disk", "--geometry", SMALL_GEOMETRY, check=False)
    assert cp.returncode == 1 and cp.stderr.count("\n") == 1, cp.stderr
    assert f"no ext4 is mounted at {up} (the mount table shows tmpfs from ox-test there)" in cp.stderr
    assert ox.run("status", "--json").stdout == ""


def test_status_reports_an_up_whose_ext4_is_gone_and_umount_still_stops_it(ox, tmp_path):
    require_tools("mkfs.ext4", "blkid", "umount")
    up = tmp_path / "up"
    ox.run("up", up, "--disk", tmp_path / "ox.disk", "--geometry", SMALL_GEOMETRY)
    [row] = [json.loads(ln) for ln in ox.run("status", "--json").stdout.splitlines()]
    assert row["state"] == "serving" and row["mountpoint"] == str(up)

    subprocess.run(["umount", str(up)], check=True)         # behind ox's back
    [row] = [json.loads(ln) for ln in ox.run("status", "--json").stdout.splitlines()]
    assert row["state"] == "ext4 gone"
    text = ox.run("status").stdout
    assert f"ext4 gone (nothing is mounted there; stop the volume with `ox umount {up}`)" in text
    cp = ox.run("up", up, "--disk", tmp_path / "other.disk", check=False)
    assert cp.returncode == 1 and "already up" in cp.stderr and "its ext4 is gone" in cp.stderr

    assert f"unmounted {up}" in ox.umount(up).stdout
    assert "no volume is mounted" in ox.run("status").stdout
    assert _ours_below(tmp_path) == []
