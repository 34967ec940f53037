"""Mount, serve and tear down one volume: the FUSE session's loop (oxhost.fuse.lowlevel), the
block device's background work when the volume is idle, signals, and the ext4 of `ox up` on top. Teardown goes
through an AsyncExitStack: the ext4 first, then a flush, then the FUSE mount, then the
stack under it (SPEC 9, 11: unmount order matters)."""
import contextlib
import logging
import os
import signal
import subprocess

import trio

from .. import tools
from . import lowlevel
from . import upper as upper_mod
from .errors import MountError
from .fs import VolumeFs
from .registry import FSNAME

log = logging.getLogger(__name__)

BACKGROUND_POLL = 0.05        # s without a request before background work may run
READY_TIMEOUT = 60.0          # s for the first stat through the fresh mount
UNMOUNT_WAIT = 10.0           # s for the main loop to notice its unmount


class Server:
    """Serves `blockdev` at `mountpoint` until it is unmounted (`ox umount`, fusermount3 -u)
    or stop is requested (SIGINT/SIGTERM/SIGHUP, `request_stop`). A second stop request
    while the first failed (volume busy) forces a lazy unmount.

    `owns` is closed last (the Stack: block device, driver, machine). `on_ready(server)`
    runs once the volume (and the ext4 on top, with `upper`) is usable. `sysfs` (the
    Stack's, pblk only) adds its directory of pblk sysfs files next to the volume.
    `write_log` (lab use, `ox torture --ext4`) hears of the volume's writes and flushes.
    """

    def __init__(self, blockdev, mountpoint: str, *, info: dict | None = None,
                 allow_other: bool = False, upper: "upper_mod.Upper | None" = None,
                 on_ready=None, owns=None, background: bool = True,
                 handle_signals: bool = True, sysfs=None, write_log=None):
        self.blockdev = blockdev
        self.sysfs = sysfs
        self.write_log = write_log
        self.mountpoint = os.path.abspath(mountpoint)
        self.info = info or {}
        self.allow_other = allow_other
        self.upper = upper
        self.on_ready = on_ready
        self.owns = owns
        self.background = background
        self.handle_signals = handle_signals
        self.ops: VolumeFs | None = None
        self.session: lowlevel.Session | None = None
        self.ready = False
        self.background_errors = 0
        self._nursery = None
        self._setup_scope = None
        self._stop = None
        self._stop_requests = 0
        self._fuse_exited = False
        self._fuse_done = None

    @property
    def volume_path(self) -> str:
        return os.path.join(self.mountpoint, "volume")

    # ------------------------------------------------------------------ public
    def request_stop(self) -> None:
        """Unmount cleanly (must be called from the Trio thread)."""
        self._stop_requests += 1
        if self._stop is not None:
            self._stop.set()
        if not self.ready and self._setup_scope is not None:
            self._setup_scope.cancel()

    async def run(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if self.owns is not None:
                stack.callback(self.owns.close)
            self._stop = trio.Event()
            self._fuse_done = trio.Event()
            self.ops = VolumeFs(self.blockdev, self.info, allow_other=self.allow_other,
                                sysfs=self.sysfs, write_log=self.write_log)
            options = set(lowlevel.DEFAULT_OPTIONS)
            options |= {f"fsname={FSNAME}", f"subtype={FSNAME}", "noatime"}
            if self.allow_other:
                options.add("allow_other")
            # requests are received into the device's memory (guest RAM): a write's data
            # then leaves for the device from where the kernel put it
            rx = self.blockdev.buf_alloc(lowlevel.Session.RX_NBYTES)
            try:
                self.session = lowlevel.Session(self.ops, self.mountpoint, options, rx=rx)
            except lowlevel.SessionError as e:
                raise MountError(f"cannot mount FUSE at {self.mountpoint}: {e}") from None
            stack.callback(self._close_fuse)
            log.info("FUSE mounted at %s", self.mountpoint)
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._serve_fuse, name="fuse-main")
                    if self.handle_signals:
                        await nursery.start(self._signals)
                    if self.background:
                        nursery.start_soon(self._background, name="background")
                    await self._setup()
                    await self._stop_loop()
            except BaseExceptionGroup as group:
                raise _single(group) from None

    # ------------------------------------------------------------------ tasks
    async def _serve_fuse(self) -> None:
        try:
            await self.session.serve()
        finally:
            self._fuse_done.set()
        self._fuse_exited = True
        log.info("FUSE main loop ended (unmounted)")
        self._nursery.cancel_scope.cancel()

    async def _signals(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                log.info("%s: unmounting", signal.Signals(signum).name)
                self.request_stop()

    async def _background(self) -> None:
        """blockdev.background() in bounded slices while no request arrives."""
        work = getattr(self.blockdev, "background", None)
        if work is None:
            return
        seen, pending = None, True
        while True:
            await trio.sleep(BACKGROUND_POLL)
            count = self.ops.io_count
            if count != seen:
                seen, pending = count, True
                continue
            while pending and self.ops.io_count == seen:
                if self.write_log is not None:
                    self.write_log.background()
                try:
                    pending = bool(work())
                except Exception:         # noqa: BLE001 - serve on, without background work
                    self.background_errors += 1
                    log.exception("background work failed, stopping it")
                    return
                await trio.lowlevel.checkpoint()      # let waiting requests in

    async def _setup(self) -> None:
        """Wait until the mount answers, then build the ext4 on top (ox up)."""
        try:
            with trio.CancelScope() as self._setup_scope:
                with trio.fail_after(READY_TIMEOUT):
                    await trio.to_thread.run_sync(os.stat, self.volume_path, abandon_on_cancel=True)
                if self.upper is not None:
                    await upper_mod.setup(self.upper, self.volume_path)
        except BaseException:
            with trio.CancelScope(shield=True):
                if self.upper is not None and self.upper.mounted:
                    with contextlib.suppress(MountError):
                        await upper_mod.teardown(self.upper, lazy=True)
            raise
        if self._setup_scope.cancelled_caught:
            log.info("stop requested while setting up")
            if self.upper is not None and self.upper.mounted:
                await upper_mod.teardown(self.upper, lazy=True)
            self._nursery.cancel_scope.cancel()
            return
        self.ready = True
        log.info("volume ready at %s", self.mountpoint)
        if self.on_ready is not None:
            self.on_ready(self)

    async def _stop_loop(self) -> None:
        while True:
            await self._stop.wait()
            self._stop = trio.Event()
            force = self._stop_requests > 1
            try:
                await self._teardown(force)
            except MountError as e:
                log.error("%s; still serving (stop again to force a lazy unmount)", e)
                continue
            with trio.move_on_after(UNMOUNT_WAIT):
                await self._fuse_done.wait()
            self._nursery.cancel_scope.cancel()
            return

    async def _teardown(self, force: bool) -> None:
        """ext4 on top, then a flush, then the FUSE mount; MountError if one is busy."""
        if self.upper is not None and self.upper.mounted:
            await upper_mod.teardown(self.upper, lazy=force)
        try:
            self.blockdev.flush()
        except Exception as e:          # noqa: BLE001 - unmount anyway; close() retries
            log.error("flush before unmount failed: %s", e)
        tool = tools.which("fusermount3")
        if tool:
            cmd = [tool, "-u", *(["-z"] if force else []), self.mountpoint]
        else:
            cmd = [tools.find("umount"), *(["-l"] if force else []), self.mountpoint]
        # fuse2fs, just unmounted above, may still hold the volume open for a moment: retry
        # while the mount is busy (this task sleeping lets the volume's requests through)
        with trio.move_on_after(UNMOUNT_WAIT):
            while True:
                cp = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True,
                                            check=False, stdin=subprocess.DEVNULL)
                why = (cp.stderr or cp.stdout).decode(errors="replace").strip().splitlines()
                why = why[-1] if why else f"exit status {cp.returncode}"
                if not cp.returncode or "busy" not in why.lower() or self.upper is None:
                    break
                await trio.sleep(0.05)
        if cp.returncode:
            raise MountError(f"cannot unmount {self.mountpoint}: {why}")

    def _close_fuse(self) -> None:
        try:
            self.session.close(unmount=not self._fuse_exited)
        except Exception as e:          # noqa: BLE001 - the stack under it must still close
            log.error("closing the FUSE session failed: %s", e)


def _single(group: BaseExceptionGroup) -> BaseException:
    """The one error a task group failed with (callers expect MountError, not a group);
    the group itself when several tasks failed."""
    leaves, todo = [], [group]
    while todo:
        e = todo.pop()
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        else:
            leaves.append(e)
    return leaves[0] if len(leaves) == 1 else group


def serve(stack, mountpoint: str, **kw) -> Server:
    """Blocking: serve `stack` (an oxhost.stack.Stack) at `mountpoint` until unmounted or
    signalled; the stack is closed on the way out, after the FUSE mount."""
    server = Server(stack.blockdev, mountpoint, info=stack.info(), owns=stack, sysfs=stack.sysfs, **kw)
    trio.run(server.run)
    return server
