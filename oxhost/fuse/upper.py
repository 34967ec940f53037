"""The ext4 file system `ox up` puts on the volume: detect an existing one, mkfs.ext4 on
first use, mount it (a loop mount as root, fuse2fs otherwise), see it in the mount table
before anyone is told it is there, and unmount it first on the way down (the seed's
`mkfs.ext4 /dev/pblk0 && mount` flow). The async helpers run inside the process serving
the volume, which keeps answering FUSE requests while they wait."""
import dataclasses
import logging
import os
import select
import signal
import subprocess
import time

import trio

from .. import tools
from .errors import MountError
from .registry import MountEntry, mount_entry, mounts

log = logging.getLogger(__name__)

# mkfs discards the whole fresh volume first: fallocate(PUNCH_HOLE) on the FUSE file, one
# unmapping in the FTL, quick; ext4's lazy inode-table init later zeroes through the loop
# device's write-zeroes, which is served the same way (no zero pages are written).
MKFS_CMD = ("mkfs.ext4", "-F", "-q", "-L", "ox", "-E", "lazy_itable_init=1,lazy_journal_init=1")


@dataclasses.dataclass
class Upper:
    """Where and how the ext4 file system goes, and who should own its root."""
    dir: str
    kind: str                   # "loop" (root) or "fuse2fs"
    uid: int | None = None      # owner of DIR; None leaves it alone
    gid: int | None = None
    discard: bool = False       # loop mount with `-o discard` (online TRIM); fstrim works anyway
    mounted: bool = False
    formatted: bool = False     # mkfs ran this time
    volume: str | None = None   # the FUSE volume file the ext4 is on (set by setup)


# What each kind of mount shows in the mount table: a loop mount is the kernel's ext4 on
# /dev/loopN (backed by the volume); fuse2fs names its FUSE subtype ext4 whatever its
# argv[0] and takes the volume's path as its source.
FSTYPE = {"loop": "ext4", "fuse2fs": "fuse.ext4"}
MOUNT_SEEN_WAIT = 5.0       # s for a mount whose command succeeded to show in the mount table
FUSE2FS_EXIT_WAIT = 30.0    # s for fuse2fs, its mount gone, to write back and exit


def choose_kind() -> str:
    """A loop mount when root; fuse2fs for an unprivileged user (if installed)."""
    if os.geteuid() == 0:
        return "loop"
    if tools.which("fuse2fs"):
        return "fuse2fs"
    raise MountError("ox up needs root for a loop mount of ext4 (sudo), or fuse2fs for a user "
                     "mount: apt-get install fuse2fs")


def invoking_user() -> tuple[int, int]:
    """The user behind sudo, else ourselves."""
    if os.geteuid() == 0 and os.environ.get("SUDO_UID"):
        try:
            return int(os.environ["SUDO_UID"]), int(os.environ.get("SUDO_GID", "0"))
        except ValueError:
            pass
    return os.getuid(), os.getgid()


def _why(cp) -> str:
    text = ((cp.stderr or b"") + (cp.stdout or b"")).decode(errors="replace").strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit status {cp.returncode}"


async def _run(cmd) -> subprocess.CompletedProcess:
    try:
        cmd = tools.command(cmd)
    except tools.ToolNotFound as e:
        raise MountError(str(e)) from None
    log.info("running %s", " ".join(cmd))
    return await trio.run_process(cmd, capture_stdout=True, capture_stderr=True,
                                  check=False, stdin=subprocess.DEVNULL)


async def probe_type(volume: str) -> str | None:
    """The file system type on the volume (blkid), None when blkid finds none. Any other
    blkid failure is an error: formatting a volume we could not read would destroy it."""
    cp = await _run(["blkid", "-p", "-o", "value", "-s", "TYPE", volume])
    if cp.returncode == 0:
        return cp.stdout.decode().strip() or None
    if cp.returncode == 2:                  # nothing found
        return None
    raise MountError(f"blkid cannot tell what the volume holds ({_why(cp)}); refusing to format it")


async def setup(upper: Upper, volume: str) -> None:
    """mkfs.ext4 unless the volume already holds ext4; mount it at upper.dir; chown."""
    upper.volume = volume
    fstype = await probe_type(volume)
    if fstype is None:
        owner = [] if upper.uid is None else ["-E", f"root_owner={upper.uid}:{upper.gid}"]
        cp = await _run([*MKFS_CMD, *owner, volume])
        if cp.returncode:
            raise MountError(f"mkfs.ext4 failed: {_why(cp)}")
        upper.formatted = True
    elif fstype not in ("ext4", "ext3", "ext2"):
        raise MountError(f"the volume holds a {fstype} file system, not ext4: refusing to "
                         f"format it (inspect it with `ox mount`)")
    if upper.kind == "loop":
        opts = "loop,discard" if upper.discard else "loop"
        cmd = ["mount", "-t", "ext4", "-o", opts, volume, upper.dir]
    else:
        cmd = ["fuse2fs", volume, upper.dir]
    cp = await _run(cmd)
    if cp.returncode:
        raise MountError(f"mounting ext4 at {upper.dir} failed: {_why(cp)}")
    # A zero exit status is not a mount (fuse2fs forks a daemon, a stand-in may lie): the
    # mount table must show it. The wait runs on a thread: a syscall on the new mount may
    # need this process's FUSE service.
    seen = await trio.to_thread.run_sync(wait_for_ext4, upper.dir, upper.kind, volume,
                                         MOUNT_SEEN_WAIT, abandon_on_cancel=True)
    if seen is None:
        what = await trio.to_thread.run_sync(describe, upper.dir, abandon_on_cancel=True)
        await trio.to_thread.run_sync(clear_strays, upper.kind, volume, abandon_on_cancel=True)
        raise MountError(f"{cmd[0]} reported success but no ext4 is mounted at {upper.dir} "
                         f"({what}); nothing was left mounted")
    upper.mounted = True
    if upper.uid is not None and os.geteuid() == 0:
        # mkfs made the root the invoking user's; an ext4 made elsewhere may not be. A syscall
        # on the upper file system may need our own FUSE service: not on this thread.
        st = await trio.to_thread.run_sync(os.stat, upper.dir)
        if (st.st_uid, st.st_gid) != (upper.uid, upper.gid):
            await trio.to_thread.run_sync(os.chown, upper.dir, upper.uid, upper.gid)


# ---------------------------------------------------------------------- the mount table
def _same_file(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def _loop_backing(dev: str) -> str | None:
    """The file behind loop device `dev` (/dev/loopN), from sysfs; None if not a loop."""
    try:
        with open(f"/sys/block/{os.path.basename(dev)}/loop/backing_file") as f:
            return f.read().strip()
    except OSError:
        return None


def is_ours(entry: MountEntry | None, kind: str, volume: str | None) -> bool:
    """Is `entry` the ext4 `ox up` mounts on `volume` with `kind` (any volume if None)?"""
    if entry is None or entry.fstype != FSTYPE.get(kind or "loop"):
        return False
    if volume is None:
        return True
    if kind == "fuse2fs":
        return _same_file(entry.source, volume)
    backing = _loop_backing(entry.source)
    return backing is not None and _same_file(backing, volume)


def ext4_at(upper_dir: str, kind: str, volume: str | None = None) -> MountEntry | None:
    """The ext4 of `ox up` at upper_dir (the topmost mount there), else None."""
    entry = mount_entry(upper_dir)
    return entry if is_ours(entry, kind, volume) else None


def describe(path: str) -> str:
    """What the mount table shows at `path`, in a few words."""
    entry = mount_entry(path)
    if entry is None:
        return "nothing is mounted there"
    return f"the mount table shows {entry.fstype} from {entry.source} there"


def ext4_gone(upper_dir: str, kind: str, volume: str) -> str | None:
    """Why the ext4 of a running `ox up` is not usable at upper_dir, in a few words: not in
    the mount table, or (fuse2fs) its daemon exited, leaving a dead mount. None if fine."""
    if ext4_at(upper_dir, kind, volume) is None:
        return describe(upper_dir)
    if kind == "fuse2fs" and not _fuse2fs_pids(volume):
        return "its fuse2fs has exited: the mount there is dead"
    return None


def wait_for_ext4(upper_dir: str, kind: str, volume: str, timeout: float) -> MountEntry | None:
    """Blocking: the ext4 at upper_dir once the mount table shows it, None if it does not
    within `timeout` s. Woken by the kernel on each change of the mount table (poll on
    /proc/self/mountinfo signals POLLPRI), not by a timer."""
    fd = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLPRI)
        deadline = time.monotonic() + timeout
        while True:
            found = ext4_at(upper_dir, kind, volume)    # changes since the open are signalled
            left = deadline - time.monotonic()
            if found is not None or left <= 0:
                return found
            poller.poll(left * 1000)
    finally:
        os.close(fd)


def _wait_exits(pids: list[int], timeout: float) -> None:
    """Blocking: until the processes have exited (on their pidfds), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)


def clear_strays(kind: str, volume: str) -> None:
    """Blocking: undo a mount step that succeeded without mounting at DIR. Anything of ours
    mounted elsewhere is unmounted lazily; a fuse2fs daemon serving the volume is stopped;
    a loop device left on the volume is detached."""
    for entry in mounts():
        if is_ours(entry, kind, volume):
            log.warning("the ext4 went to %s instead: unmounting it", entry.mountpoint)
            subprocess.run(_umount_cmd(entry.mountpoint, kind, lazy=True), capture_output=True,
                           stdin=subprocess.DEVNULL, check=False)
    if kind == "fuse2fs":
        pids = _fuse2fs_pids(volume)
        for pid in pids:
            log.warning("stopping fuse2fs (pid %d), which serves no mount", pid)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        _wait_exits(pids, FUSE2FS_EXIT_WAIT)
    else:
        for name in os.listdir("/sys/block"):
            dev = f"/dev/{name}"
            backing = _loop_backing(dev) if name.startswith("loop") else None
            if backing is not None and _same_file(backing, volume):
                log.warning("detaching %s, left on the volume", dev)
                subprocess.run(tools.command(["losetup", "-d", dev]), capture_output=True,
                               stdin=subprocess.DEVNULL, check=False)


def _fuse2fs_pids(volume: str | None) -> list[int]:
    """Our processes named fuse2fs with `volume` among their arguments."""
    if volume is None:
        return []
    want, out = os.fsencode(volume), []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != os.geteuid():
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"fuse2fs" and want in argv[1:]:
            out.append(int(name))
    return out


# ---------------------------------------------------------------------- unmounting
def _umount_cmd(upper_dir: str, kind: str, lazy: bool) -> list[str]:
    if kind == "loop":
        return tools.command(["umount", *(["-l"] if lazy else []), upper_dir])
    return tools.command(["fusermount3", "-u", *(["-z"] if lazy else []), upper_dir])


async def teardown(upper: Upper, lazy: bool = False) -> None:
    """Unmount the ext4 (its loop device goes with it: mount -o loop sets autoclear; a
    fuse2fs daemon writes back and exits, and is waited for while this process serves
    its last requests)."""
    if not upper.mounted:
        return
    if await trio.to_thread.run_sync(ext4_at, upper.dir, upper.kind) is None:
        upper.mounted = False                   # someone unmounted it already (ox umount)
        return
    pids = await trio.to_thread.run_sync(_fuse2fs_pids, upper.volume) if upper.kind == "fuse2fs" else []
    cp = await _run(_umount_cmd(upper.dir, upper.kind, lazy))
    if cp.returncode:
        raise MountError(f"cannot unmount the ext4 at {upper.dir}: {_why(cp)}")
    upper.mounted = False
    if not lazy:
        await trio.to_thread.run_sync(_wait_exits, pids, FUSE2FS_EXIT_WAIT, abandon_on_cancel=True)


def teardown_sync(upper_dir: str, kind: str, lazy: bool = False, volume: str | None = None) -> None:
    """The same from `ox umount`, a process that does not serve the volume."""
    pids = _fuse2fs_pids(volume) if kind == "fuse2fs" else []
    cp = subprocess.run(_umount_cmd(upper_dir, kind or "loop", lazy), capture_output=True,
                        stdin=subprocess.DEVNULL, check=False)
    if cp.returncode:
        raise MountError(f"cannot unmount {upper_dir}: {_why(cp)}")
    if not lazy:
        _wait_exits(pids, FUSE2FS_EXIT_WAIT)
