"""`ox status` lists the running mounts; a stopped mount leaves no state files behind."""
import json
import os
import signal

from .conftest import SMALL_GEOMETRY, wait_exit


def _state_files(ox) -> list:
    return sorted(p.name for p in ox.state.iterdir()) if ox.state.exists() else []


def test_status_lists_running_mounts_and_a_stopped_mount_leaves_nothing(ox, mnt, tmp_path):
    disk = tmp_path / "ox.disk"
    pid = ox.mount(mnt, "--disk", disk, "--geometry", SMALL_GEOMETRY)
    other = tmp_path / "other"
    other.mkdir()
    pid2 = ox.mount(other, "--volatile", "--geometry", SMALL_GEOMETRY, "--mode", "appnvm")
    rows = [json.loads(ln) for ln in ox.run("status", "--json").stdout.splitlines()]
    assert {(r["mountpoint"], r["mode"], r["pid"]) for r in rows} == {
        (str(mnt), "pblk", pid), (str(other), "appnvm", pid2)}
    assert all(r["size"] > 0 and r["uptime_s"] >= 0 for r in rows)
    text = ox.run("status").stdout
    assert f"pid {pid}" in text and str(disk) in text and "volatile media" in text
    ox.umount(mnt)
    ox.umount(other)
    assert _state_files(ox) == []
    assert "no volume is mounted" in ox.run("status").stdout


def test_umount_after_kill9_clears_every_state_file(ox, mnt, tmp_path):
    pid = ox.mount(mnt, "--volatile", "--geometry", SMALL_GEOMETRY)
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(pid)
    assert "already stopped" in ox.umount(mnt).stdout
    assert _state_files(ox) == []
