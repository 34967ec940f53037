"""The ext4 file system `ox up` puts on the volume: detect an existing one, mkfs.ext4 on
first use, mount it (a loop mount as root, fuse2fs otherwise) and unmount it first on the
way down (the seed's `mkfs.ext4 /dev/pblk0 && mount` flow). The async helpers run inside
the process serving the volume, which keeps answering FUSE requests while they wait."""
import dataclasses
import logging
import os
import shutil
import subprocess

import trio

from .errors import MountError
from .registry import mount_entry

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


def choose_kind() -> str:
    """A loop mount when root; fuse2fs for an unprivileged user (if installed)."""
    if os.geteuid() == 0:
        return "loop"
    if shutil.which("fuse2fs"):
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
    log.info("running %s", " ".join(cmd))
    try:
        return await trio.run_process(list(cmd), capture_stdout=True, capture_stderr=True,
                                      check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise MountError(f"{cmd[0]} not found: install it (apt-get install "
                         f"{'e2fsprogs' if cmd[0].startswith(('mkfs', 'e2')) else cmd[0]})") from None


async def probe_type(volume: str) -> str | None:
    """The file system type on the volume (blkid), None when blkid finds none. Any other
    blkid failure is an error: formatting a volume we could not read would destroy it."""
    if not shutil.which("blkid"):
        raise MountError("blkid not found: install util-linux (ox up checks the volume before "
                         "it formats anything)")
    cp = await _run(["blkid", "-p", "-o", "value", "-s", "TYPE", volume])
    if cp.returncode == 0:
        return cp.stdout.decode().strip() or None
    if cp.returncode == 2:                  # nothing found
        return None
    raise MountError(f"blkid cannot tell what the volume holds ({_why(cp)}); refusing to format it")


async def setup(upper: Upper, volume: str) -> None:
    """mkfs.ext4 unless the volume already holds ext4; mount it at upper.dir; chown."""
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
    upper.mounted = True
    if upper.uid is not None and os.geteuid() == 0:
        # mkfs made the root the invoking user's; an ext4 made elsewhere may not be. A syscall
        # on the upper file system may need our own FUSE service: not on this thread.
        st = await trio.to_thread.run_sync(os.stat, upper.dir)
        if (st.st_uid, st.st_gid) != (upper.uid, upper.gid):
            await trio.to_thread.run_sync(os.chown, upper.dir, upper.uid, upper.gid)


def _umount_cmd(upper_dir: str, kind: str, lazy: bool) -> list[str]:
    if kind == "loop":
        return ["umount", *(["-l"] if lazy else []), upper_dir]
    return ["fusermount3", "-u", *(["-z"] if lazy else []), upper_dir]


async def teardown(upper: Upper, lazy: bool = False) -> None:
    """Unmount the ext4 (its loop device goes with it: mount -o loop sets autoclear)."""
    if not upper.mounted:
        return
    if mount_entry(upper.dir) is None:          # someone unmounted it already (ox umount)
        upper.mounted = False
        return
    cp = await _run(_umount_cmd(upper.dir, upper.kind, lazy))
    if cp.returncode:
        raise MountError(f"cannot unmount the ext4 at {upper.dir}: {_why(cp)}")
    upper.mounted = False


def teardown_sync(upper_dir: str, kind: str, lazy: bool = False) -> None:
    """The same from `ox umount`, a process that does not serve the volume."""
    cp = subprocess.run(_umount_cmd(upper_dir, kind or "loop", lazy), capture_output=True,
                        stdin=subprocess.DEVNULL, check=False)
    if cp.returncode:
        raise MountError(f"cannot unmount {upper_dir}: {_why(cp)}")
