"""The seed's flow for real: mkfs.ext4 on the FUSE volume, a loop mount, files written and
read back after a remount from the disk file, e2fsck clean; and `ox up` doing it all."""
import os
import signal
import subprocess

import numpy as np
import pytest

from oxhost.fuse.registry import mounts

from .conftest import ROOT_ONLY, VOLUME_BYTES, read_stats, wait_exit

pytestmark = ROOT_ONLY


def write_tree(root, seed=1) -> dict:
    """A few directories of files from 1 byte to 8 MiB; returns {relpath: bytes}."""
    rng = np.random.default_rng(seed)
    files = {}
    sizes = [1, 4095, 4096, 4097, 65536 + 13, 1 << 20, (8 << 20) + 7]
    for d in range(3):
        os.makedirs(os.path.join(root, f"d{d}", "sub"), exist_ok=True)
        for i, size in enumerate(sizes):
            rel = os.path.join(f"d{d}", "sub" if i % 2 else "", f"f{i}.bin")
            data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            with open(os.path.join(root, rel), "wb") as f:
                f.write(data)
            files[rel] = data
    # One file larger than a pblk line (32 LUNs x 4 MiB = 128 MiB): every MiB stamped.
    chunk = bytearray(rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes())
    parts = []
    for i in range(144):
        chunk[:8] = i.to_bytes(8, "little")
        parts.append(bytes(chunk))
    big = b"".join(parts)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(big)
    files["big.bin"] = big
    return files


def check_tree(root, files) -> None:
    for rel, data in files.items():
        with open(os.path.join(root, rel), "rb") as f:
            assert f.read() == data, rel


@pytest.mark.parametrize("mode", ["pblk", "appnvm"])
def test_e2e_ext4_on_volume_loop_mount_remount_fsck(ox, mnt, tmp_path, mode):
    disk = tmp_path / "ox.disk"
    ext = tmp_path / "ext"
    ext.mkdir()
    ox.mount(mnt, "--mode", mode, "--disk", disk)     # default geometry; pblk on LUNs 0-31
    vol = str(mnt / "volume")
    assert os.stat(vol).st_size == VOLUME_BYTES       # AppNVM exports pblk's capacity
    stats = read_stats(mnt)
    assert stats["mode"] == mode and stats["size"] == VOLUME_BYTES
    assert stats["geometry"]["nchannels"] == 8
    if mode == "pblk":
        assert stats["luns"] == [0, 31]

    subprocess.run(["mkfs.ext4", "-F", "-q", "-E", "nodiscard,lazy_itable_init=1", vol],
                   check=True, capture_output=True, timeout=300)
    subprocess.run(["mount", "-o", "loop", vol, str(ext)], check=True, timeout=60)
    try:
        files = write_tree(ext)
        check_tree(ext, files)
    finally:
        subprocess.run(["umount", str(ext)], check=True, timeout=120)
    ox.umount(mnt)                                     # flush, stop: the kernel cache is gone

    ox.mount(mnt, "--mode", mode, "--disk", disk)
    # This time through a loop device doing direct I/O on the FUSE file.
    loop = subprocess.run(["losetup", "-f", "--show", "--direct-io=on", "-r", vol], check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip()
    try:
        subprocess.run(["mount", "-o", "ro", loop, str(ext)], check=True, timeout=60)
        try:
            check_tree(ext, files)
        finally:
            subprocess.run(["umount", str(ext)], check=True, timeout=60)
    finally:
        subprocess.run(["losetup", "-d", loop], check=True, timeout=60)
    fsck = subprocess.run(["e2fsck", "-fn", vol], capture_output=True, text=True, timeout=300,
                          check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert read_stats(mnt)["fuse"]["errors"] == 0
    ox.umount(mnt)


def test_e2e_up_formats_once_owns_dir_and_keeps_data(ox, tmp_path):
    disk = tmp_path / "ox.disk"
    up = tmp_path / "data"
    ox.env.update(SUDO_UID="4321", SUDO_GID="8765")     # as if run with sudo by uid 4321
    cp = ox.run("up", up, "--disk", disk)
    assert "formatted" in cp.stdout and "ox umount" in cp.stdout
    assert os.path.ismount(up)
    st = os.stat(up)
    assert (st.st_uid, st.st_gid) == (4321, 8765)
    (up / "hello.txt").write_text("hello from ext4 on pblk\n")
    ox.umount(up)
    assert not os.path.ismount(up) and not list((ox.state).glob("up-*"))

    cp = ox.run("up", up, "--disk", disk)
    assert "formatted" not in cp.stdout
    assert (up / "hello.txt").read_text() == "hello from ext4 on pblk\n"
    cp = ox.run("up", up, "--disk", disk, check=False)          # already up
    assert cp.returncode != 0 and "already" in cp.stderr
    ox.umount(up)


def test_e2e_up_foreground_sigterm_unmounts_and_flushes(ox, tmp_path):
    disk = tmp_path / "ox.disk"
    up = tmp_path / "fg"
    p = ox.popen("up", up, "--disk", disk, "--foreground", stderr=subprocess.PIPE)
    line = p.stderr.readline()
    assert "mounted at" in line, line + p.stderr.read()
    data = os.urandom(3 << 20)
    (up / "blob").write_bytes(data)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=120) == 0, p.stderr.read()
    p.stderr.close()
    assert not os.path.ismount(up)
    assert not [m for m in mounts() if str(tmp_path) in m.mountpoint]

    ox.run("up", up, "--disk", disk)
    assert (up / "blob").read_bytes() == data
    ox.umount(up)


def test_e2e_umount_refuses_busy_ext4_and_keeps_serving(ox, tmp_path):
    up = tmp_path / "busy"
    ox.run("up", up, "--volatile", "--geometry", "2x2x16x32")
    with open(up / "open-file", "w") as f:
        cp = ox.run("umount", up, check=False)
        assert cp.returncode != 0 and "busy" in cp.stderr
        assert len(cp.stderr.strip().splitlines()) == 1
        f.write("still here")
    assert (up / "open-file").read_text() == "still here"
    ox.umount(up)
    assert not os.path.ismount(up)


@pytest.fixture(autouse=True)
def _no_stray_loops(tmp_path):
    yield
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=False).stdout
    left = [ln for ln in out.splitlines() if str(tmp_path) in ln]
    assert not left, f"loop devices left behind: {left}"


def test_e2e_up_kill9_keeps_fsynced_files_and_fsck_is_clean(ox, tmp_path):
    """A crash under ext4: the journal replays on the next `ox up`; fsync'd files are whole."""
    disk = tmp_path / "ox.disk"
    up = tmp_path / "crash"
    pid = int(ox.run("up", up, "--disk", disk).stdout.split("(pid ")[1].split(")")[0])
    synced = os.urandom(5 << 20)
    with open(up / "synced.bin", "wb") as f:
        f.write(synced)
        f.flush()
        os.fsync(f.fileno())
    dfd = os.open(up, os.O_RDONLY)
    os.fsync(dfd)                                      # the directory entry too
    os.close(dfd)
    with open(up / "unsynced.bin", "wb") as f:
        f.write(os.urandom(1 << 20))
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(pid)
    assert "already stopped" in ox.umount(up).stdout
    assert not os.path.ismount(up)

    ox.run("up", up, "--disk", disk)                   # journal recovery happens here
    assert (up / "synced.bin").read_bytes() == synced
    ox.umount(up)
    mnt = tmp_path / "raw"
    mnt.mkdir()
    ox.mount(mnt, "--disk", disk)
    fsck = subprocess.run(["e2fsck", "-fn", str(mnt / "volume")], capture_output=True, text=True,
                          timeout=300, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    ox.umount(mnt)
