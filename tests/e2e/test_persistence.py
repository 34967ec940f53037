"""Data on a --disk volume survives unmount/remount; fsync'd data survives `kill -9` of the
serving process and a remount (pblk recovers its map from the media), at several points of
a workload, including with writes in flight at the moment of the kill."""
import os
import signal
import subprocess
import threading

import numpy as np
import pytest

from .conftest import SMALL_GEOMETRY, VOLUME_BYTES, fio, read_stats, wait_exit

BS = 4096


class Model:
    """What every 4 KiB block of the volume must hold: `synced` is durable; `maybe` holds
    the alternatives of blocks written after the last fsync (old or new content is fine)."""

    def __init__(self, nblocks: int, seed: int):
        self.nblocks = nblocks
        self.rng = np.random.default_rng(seed)
        self.synced: dict[int, bytes] = {}
        self.maybe: dict[int, list[bytes]] = {}
        self.stamp = 0

    def block(self, lba: int) -> bytes:
        self.stamp += 1
        head = np.array([lba, self.stamp], dtype="<u8").tobytes()
        return head + self.rng.integers(0, 256, BS - len(head), dtype=np.uint8).tobytes()

    def expected(self, lba: int) -> list[bytes]:
        base = self.synced.get(lba, bytes(BS))
        return [base, *self.maybe.get(lba, [])]


def open_volume(mnt):
    return os.open(os.path.join(mnt, "volume"), os.O_RDWR | os.O_DIRECT)


def aligned(data: bytes):
    import mmap
    buf = mmap.mmap(-1, len(data))
    buf.write(data)
    return buf


def write_blocks(fd, model: Model, lbas, synced: bool) -> None:
    for lba in lbas:
        data = model.block(int(lba))
        if not synced:
            model.maybe.setdefault(int(lba), []).append(data)
        os.pwrite(fd, aligned(data), int(lba) * BS)
        if synced:
            model.synced[int(lba)] = data
            model.maybe.pop(int(lba), None)
    if synced:
        os.fsync(fd)


def verify(mnt, model: Model) -> None:
    fd = os.open(os.path.join(mnt, "volume"), os.O_RDONLY | os.O_DIRECT)
    try:
        buf = aligned(bytes(BS))
        touched = set(model.synced) | set(model.maybe)
        for lba in sorted(touched):
            os.preadv(fd, [buf], lba * BS)
            got = bytes(buf)
            assert got in model.expected(lba), (
                f"block {lba}: stamp {np.frombuffer(got[:16], '<u8').tolist()} is neither the "
                f"fsync'd content nor a later write")
    finally:
        os.close(fd)
    # After a successful verify the surviving content of `maybe` blocks is what is there now.
    fd = os.open(os.path.join(mnt, "volume"), os.O_RDONLY | os.O_DIRECT)
    try:
        for lba in list(model.maybe):
            os.preadv(fd, [buf], lba * BS)
            model.synced[lba] = bytes(buf)
        model.maybe.clear()
    finally:
        os.close(fd)


def kill9(ox, pid: int, mnt) -> None:
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(pid), "the serving process did not die"
    cp = ox.umount(mnt)                        # clears the dead mount
    assert "already stopped" in cp.stdout


def test_e2e_data_survives_unmount_and_remount(ox, mnt, tmp_path):
    disk = tmp_path / "ox.disk"
    ox.mount(mnt, "--disk", disk, "--geometry", SMALL_GEOMETRY)
    size = os.stat(mnt / "volume").st_size
    model = Model(size // BS, seed=7)
    fd = open_volume(mnt)
    try:
        write_blocks(fd, model, model.rng.choice(size // BS, 2000, replace=False), synced=False)
    finally:
        os.close(fd)
    model.synced.update({lba: v[-1] for lba, v in model.maybe.items()})   # umount flushes
    model.maybe.clear()
    ox.umount(mnt)
    ox.mount(mnt, "--disk", disk)              # the geometry comes from the disk file
    verify(mnt, model)
    assert read_stats(mnt)["recovery"]
    ox.umount(mnt)


@pytest.mark.parametrize("mode", ["pblk", "appnvm"])
def test_e2e_fsynced_data_survives_kill9_at_several_points(ox, mnt, tmp_path, mode):
    disk = tmp_path / "ox.disk"
    pid = ox.mount(mnt, "--mode", mode, "--disk", disk, "--geometry", SMALL_GEOMETRY)
    size = os.stat(mnt / "volume").st_size
    nblocks = size // BS
    model = Model(nblocks, seed=11)
    # (synced writes, then unsynced ones, sequential or random): kills land in the middle
    # of a write unit, right after a flush, across line boundaries, after GC has started.
    rounds = [(300, 0, "rand"), (1500, 37, "seq"), (5, 200, "rand"),
              (nblocks // 2, 0, "rand"), (2000, 900, "seq")]
    cursor = 0
    for synced, unsynced, how in rounds:
        fd = open_volume(mnt)
        try:
            if how == "seq":
                lbas = (np.arange(synced + unsynced) + cursor) % nblocks
                cursor = int(lbas[-1]) + 1
            else:
                lbas = model.rng.choice(nblocks, synced + unsynced, replace=False)
            write_blocks(fd, model, lbas[:synced], synced=True)
            write_blocks(fd, model, lbas[synced:], synced=False)
        finally:
            os.close(fd)
        kill9(ox, pid, mnt)
        pid = ox.mount(mnt, "--mode", mode, "--disk", disk)
        verify(mnt, model)
    ox.umount(mnt)


def test_e2e_kill9_with_writes_in_flight(ox, mnt, tmp_path):
    disk = tmp_path / "ox.disk"
    pid = ox.mount(mnt, "--disk", disk, "--geometry", SMALL_GEOMETRY)
    nblocks = os.stat(mnt / "volume").st_size // BS
    model = Model(nblocks, seed=5)
    fd = open_volume(mnt)
    write_blocks(fd, model, model.rng.choice(nblocks, 1000, replace=False), synced=True)
    stop = threading.Event()
    hot = model.rng.choice(nblocks, 500, replace=False)

    written = []
    busy = threading.Event()                   # set once the writes are well under way

    def writer():
        try:
            while not stop.is_set():           # rewrite the hot set until the kill
                for lba in hot[:500]:
                    write_blocks(fd, model, [lba], synced=False)
                    written.append(lba)
                    if len(written) == 600:
                        busy.set()
        except OSError:
            pass                               # the mount died under us: expected
        busy.set()

    t = threading.Thread(target=writer)
    t.start()
    assert busy.wait(120)
    kill9(ox, pid, mnt)
    stop.set()
    t.join(30)
    assert len(written) > 500                  # the kill came in the middle of the writes
    try:
        os.close(fd)
    except OSError:
        pass                                   # ENOTCONN: its mount is gone
    ox.mount(mnt, "--disk", disk)
    verify(mnt, model)
    ox.umount(mnt)


def test_e2e_foreground_sigint_flushes_unsynced_writes(ox, mnt, tmp_path):
    disk = tmp_path / "ox.disk"
    p = ox.popen("mount", mnt, "--disk", disk, "--geometry", SMALL_GEOMETRY, "--foreground",
                 stderr=subprocess.PIPE)
    line = p.stderr.readline()
    assert "serving" in line, line + p.stderr.read()
    model = Model(os.stat(mnt / "volume").st_size // BS, seed=3)
    fd = open_volume(mnt)
    try:
        write_blocks(fd, model, range(100, 137), synced=False)   # not a whole write unit
    finally:
        os.close(fd)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 0, p.stderr.read()
    p.stderr.close()
    model.synced.update({lba: v[-1] for lba, v in model.maybe.items()})
    model.maybe.clear()
    ox.mount(mnt, "--disk", disk)
    verify(mnt, model)
    ox.umount(mnt)


def test_e2e_appnvm_volume_verify_and_remount(ox, mnt, tmp_path):
    disk = tmp_path / "appnvm.disk"
    ox.mount(mnt, "--mode", "appnvm", "--disk", disk)
    assert os.stat(mnt / "volume").st_size == VOLUME_BYTES
    assert read_stats(mnt)["mode"] == "appnvm"
    common = [f"--filename={mnt / 'volume'}", "--rw=randwrite", "--bs=4k", "--size=16m",
              "--direct=1", "--ioengine=psync", "--verify=crc32c", "--verify_fatal=1",
              "--randseed=99"]
    fio("--name=appnvm", "--do_verify=1", *common)
    ox.umount(mnt)
    ox.mount(mnt, "--mode", "appnvm", "--disk", disk)
    fio("--name=appnvm", "--verify_only", *common)
    ox.umount(mnt)
