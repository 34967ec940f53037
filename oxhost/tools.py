"""The programs ox runs (mkfs.ext4, mount, fuse2fs, fio, ...), found where Debian puts them.

A plain user's login PATH is /usr/local/bin:/usr/bin:/bin, yet blkid, mkfs.ext4, e2fsck,
losetup and mount's helpers live in /usr/sbin or /sbin: PATH is searched first (so a
program earlier on PATH, a stand-in included, wins), then the sbin directories. Commands
are run with the full path found. A program really missing is one line naming the Debian
package that brings it."""
import os
import shutil

SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")

# program -> the Debian 12 package that installs it
PACKAGES = {
    "blkid": "util-linux",
    "fstrim": "util-linux",
    "mkfs.ext4": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "losetup": "mount",
    "mount": "mount",
    "umount": "mount",
    "fuse2fs": "fuse2fs",
    "fusermount3": "fuse3",
    "fio": "fio",
}


class ToolNotFound(FileNotFoundError):
    """A program ox runs is not installed (not on PATH, nor in /usr/sbin or /sbin). The
    message is one line naming the Debian package that brings it."""


def which(name: str) -> str | None:
    """The full path of `name`: on PATH first, then in the sbin directories; None if absent."""
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN_DIRS))


def find(name: str) -> str:
    """The full path of `name`; ToolNotFound, naming its package, if it is not installed."""
    path = which(name)
    if path is None:
        pkg = PACKAGES.get(name)
        how = f"install {pkg} (apt-get install {pkg})" if pkg else "install it"
        raise ToolNotFound(f"{name} not found: {how}")
    return path


def command(cmd) -> list[str]:
    """`cmd` (a sequence whose first item is a program name) with the program's full path."""
    cmd = list(map(str, cmd))
    return [find(cmd[0]), *cmd[1:]]
