"""Fixtures for the FUSE layer: a block-device double that records calls (for handler logic
and error mapping), and a mount point that is always unmounted at teardown."""
import os
import subprocess

import numpy as np
import pytest
import trio

from oxhost.blockdev import BlockDevice


def serve_while(server, body):
    """Run `server` until `body()` (in a worker thread, so the serving thread can answer
    what it does to the mount) has returned once the mount is ready; body's result."""
    out = {}

    async def main():
        async with trio.open_nursery() as n:
            def on_ready(s):
                async def go():
                    try:
                        out["result"] = await trio.to_thread.run_sync(body)
                    finally:
                        s.request_stop()
                n.start_soon(go)
            server.on_ready = on_ready
            await server.run()
    trio.run(main)
    return out["result"]


class MemDevice(BlockDevice):
    """A small in-memory BlockDevice that counts flushes and background slices and can be
    told to fail. Test double only: the real stack is exercised in tests/e2e."""

    def __init__(self, nsectors: int = 256, background_slices: int = 0):
        self.data = np.zeros(nsectors * self.sector_nbytes, np.uint8)
        self.flushes = 0
        self.discards = []
        self.fail_with = None
        self.background_slices = background_slices
        self.background_calls = 0
        self.on_idle = None          # called when a background slice leaves nothing pending
        self.closed = False

    @property
    def size(self) -> int:
        return self.data.nbytes

    def _maybe_fail(self):
        if self.fail_with is not None:
            raise self.fail_with

    def read_sectors(self, lba, count):
        self._maybe_fail()
        s = self.sector_nbytes
        return self.data[lba * s:(lba + count) * s].copy()

    def write_sectors(self, lba, data):
        self._maybe_fail()
        s = self.sector_nbytes
        self.data[lba * s:lba * s + data.nbytes] = data
        self.background_slices += 1

    def flush(self):
        self._maybe_fail()
        self.flushes += 1

    def discard_sectors(self, lba, count):
        self.discards.append((lba, count))

    def background(self) -> bool:
        self.background_calls += 1
        if self.background_slices:
            self.background_slices -= 1
        if not self.background_slices and self.on_idle is not None:
            self.on_idle()
        return self.background_slices > 0

    def stats(self):
        return {"user_writes": int(self.data.any()), "write_amplification": np.float64(1.5)}

    def close(self):
        self.closed = True


@pytest.fixture
def memdev():
    return MemDevice()


def lazy_unmount_below(root: str) -> None:
    """Unmount (lazily) everything mounted at or below `root`, deepest first."""
    from oxhost.fuse.registry import mounts
    root = os.path.realpath(root)
    found = [m.mountpoint for m in mounts()
             if m.mountpoint == root or m.mountpoint.startswith(root + os.sep)]
    for mp in sorted(set(found), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True, check=False)
        subprocess.run(["fusermount3", "-uz", mp], capture_output=True, check=False)


@pytest.fixture
def mountpoint(tmp_path):
    mp = tmp_path / "mnt"
    mp.mkdir()
    yield str(mp)
    lazy_unmount_below(str(tmp_path))
