"""The Server on a real FUSE mount, in-process: serving, background work when idle, stop
requests, external unmounts, and the mount table / registry helpers."""
import os
import subprocess

import pytest
import trio
import trio.testing

from oxhost.fuse import registry
from oxhost.fuse.errors import MountError
from oxhost.fuse.mount import Server

pytestmark = pytest.mark.usefixtures("needs_fuse")


class Closer:
    def __init__(self):
        self.closed = 0

    def close(self):
        self.closed += 1


def in_thread(fn, *args):
    """File system calls on our own mount must leave the Trio thread that serves it."""
    return trio.to_thread.run_sync(fn, *args)


def serve(server: Server, body):
    """Run server; once ready run `body(server)` (async) and then stop the server."""
    async def main():
        async with trio.open_nursery() as n:
            def on_ready(s):
                async def go():
                    try:
                        await body(s)
                    finally:
                        s.request_stop()
                n.start_soon(go)
            server.on_ready = on_ready
            await server.run()
    trio.run(main)


def test_mount_serves_volume_and_stops_cleanly(memdev, mountpoint):
    owner = Closer()
    server = Server(memdev, mountpoint, info={"mode": "test"}, owns=owner, handle_signals=False)
    seen = {}

    async def body(s):
        vol = os.path.join(mountpoint, "volume")
        seen["ls"] = sorted(await in_thread(os.listdir, mountpoint))
        seen["size"] = (await in_thread(os.stat, vol)).st_size

        def io():
            fd = os.open(vol, os.O_RDWR | os.O_DIRECT)
            try:
                import mmap
                buf = mmap.mmap(-1, 8192)
                buf.write(b"z" * 8192)
                os.pwrite(fd, buf, 4096)
                os.fsync(fd)
                out = mmap.mmap(-1, 8192)
                os.preadv(fd, [out], 4096)
                return bytes(out)
            finally:
                os.close(fd)
        seen["data"] = await in_thread(io)

        def read_stats():
            with open(os.path.join(mountpoint, "stats")) as f:
                return f.read()
        seen["stats"] = await in_thread(read_stats)

    serve(server, body)
    assert seen["ls"] == ["stats", "volume"]
    assert seen["size"] == memdev.size
    assert seen["data"] == b"z" * 8192
    assert '"mode": "test"' in seen["stats"]
    assert memdev.flushes >= 2                 # the fsync, then the flush before unmount
    assert owner.closed == 1
    assert registry.mount_entry(mountpoint) is None


def test_mount_runs_background_work_only_when_idle(memdev, mountpoint):
    memdev.background_slices = 5
    idle = [trio.Event()]                                 # set each time nothing is pending
    memdev.on_idle = lambda: idle[-1].set()
    server = Server(memdev, mountpoint, handle_signals=False)

    async def body(s):
        with trio.fail_after(30):
            await idle[-1].wait()                         # the 5 slices ran while idle
        assert memdev.background_calls == 5 and memdev.background_slices == 0
        calls = memdev.background_calls
        idle.append(trio.Event())

        def write():
            with open(os.path.join(mountpoint, "volume"), "r+b") as f:
                f.write(b"w" * 4096)
        await in_thread(write)                            # new work appears (one slice)
        with trio.fail_after(30):
            await idle[-1].wait()
        assert memdev.background_calls == calls + 1       # nothing pending in between: no calls

    serve(server, body)


def test_mount_ends_when_unmounted_from_outside(memdev, mountpoint):
    owner = Closer()
    server = Server(memdev, mountpoint, owns=owner, handle_signals=False)

    async def main():
        async with trio.open_nursery() as n:
            def on_ready(s):
                n.start_soon(trio.run_process, ["fusermount3", "-u", mountpoint])
            server.on_ready = on_ready
            with trio.fail_after(10):
                await server.run()
    trio.run(main)
    assert owner.closed == 1 and registry.mount_entry(mountpoint) is None


def test_mount_refuses_a_missing_mountpoint(memdev, tmp_path):
    owner = Closer()
    server = Server(memdev, str(tmp_path / "nope"), owns=owner, handle_signals=False)
    with pytest.raises(MountError, match="cannot mount FUSE"):
        trio.run(server.run)
    assert owner.closed == 1                   # the stack under it is closed all the same


def test_mount_background_failure_keeps_serving(memdev, mountpoint):
    failed = trio.Event()

    def broken():
        failed.set()
        raise RuntimeError("gc bug")
    memdev.background = broken
    server = Server(memdev, mountpoint, handle_signals=False)

    async def body(s):
        with trio.fail_after(30):
            await failed.wait()
        await trio.testing.wait_all_tasks_blocked()       # the background task has handled it
        assert s.background_errors == 1
        assert (await in_thread(os.stat, os.path.join(mountpoint, "volume"))).st_size == memdev.size

    serve(server, body)


def test_registry_mount_table_unescapes_paths(tmp_path):
    odd = tmp_path / "with space"
    odd.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "none", str(odd)], check=True)
    try:
        entry = registry.mount_entry(str(odd))
        assert entry is not None and entry.fstype == "tmpfs"
        assert entry.mountpoint == str(odd)
    finally:
        subprocess.run(["umount", str(odd)], check=True)
    assert registry.mount_entry(str(odd)) is None


def test_registry_claim_is_exclusive(tmp_path, monkeypatch):
    monkeypatch.setenv("OX_STATE_DIR", str(tmp_path / "state"))
    fd = registry.claim("/some/where")
    try:
        assert registry.lock_holder_alive("/some/where")
        with pytest.raises(MountError, match="already served"):
            registry.claim("/some/where")
    finally:
        os.close(fd)
    assert not registry.lock_holder_alive("/some/where")


def test_a_disk_file_in_a_missing_directory_is_refused_naming_the_directory(tmp_path):
    from oxhost.fuse.daemon import check_disk
    missing = tmp_path / "typo"
    with pytest.raises(MountError, match=f"no such directory {missing}$"):
        check_disk(str(missing / "ox.disk"))
    assert not missing.exists()
