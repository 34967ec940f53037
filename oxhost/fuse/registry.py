"""Where running mounts are recorded, so `ox umount` can find the process serving a mount
point (or the ext4 directory `ox up` made on top of it), and so one mount point is never
served twice. Also the mount table, read from /proc/self/mountinfo."""
import dataclasses
import errno
import fcntl
import hashlib
import json
import logging
import os

from .errors import MountError

log = logging.getLogger(__name__)

FSNAME = "ox"                 # the FUSE mount's source; its type shows as fuse.ox


def state_dir() -> str:
    """$OX_STATE_DIR, else /run/ox for root, else $XDG_RUNTIME_DIR/ox or /tmp/ox-UID."""
    path = os.environ.get("OX_STATE_DIR")
    if not path:
        if os.geteuid() == 0:
            path = "/run/ox"
        elif os.environ.get("XDG_RUNTIME_DIR"):
            path = os.path.join(os.environ["XDG_RUNTIME_DIR"], "ox")
        else:
            path = f"/tmp/ox-{os.geteuid()}"
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.stat(path)
    if st.st_uid != os.geteuid():
        raise MountError(f"state directory {path} belongs to uid {st.st_uid}, not to you")
    return path


def _key(path: str) -> str:
    return hashlib.sha1(os.path.realpath(path).encode()).hexdigest()[:16]


@dataclasses.dataclass
class Record:
    """One served volume. `mountpoint` is the FUSE mount; `upper` the ext4 directory of
    `ox up` (None for `ox mount`); `private` says the FUSE mount point is ours to remove."""
    mountpoint: str
    pid: int
    mode: str = "pblk"
    size: int = 0
    disk: str | None = None
    log: str | None = None
    upper: str | None = None
    upper_kind: str | None = None      # "loop" or "fuse2fs"
    private: bool = False
    state: str = "starting"            # starting, serving, stopped
    error: str | None = None
    started: float = 0.0               # unix time the serving process started

    @property
    def key(self) -> str:
        return _key(self.mountpoint)

    def save(self) -> None:
        path = os.path.join(state_dir(), self.key + ".json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dataclasses.asdict(self), f, indent=1)
        os.replace(tmp, path)

    def remove(self) -> None:
        try:
            os.unlink(os.path.join(state_dir(), self.key + ".json"))
        except FileNotFoundError:
            pass

    def alive(self) -> bool:
        """Is a process still holding this mount point's lock?"""
        return lock_holder_alive(self.mountpoint)


def records() -> list[Record]:
    out = []
    d = state_dir()
    for name in sorted(os.listdir(d)):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(d, name)) as f:
                raw = json.load(f)
            out.append(Record(**{k: raw[k] for k in raw if k in Record.__dataclass_fields__}))
        except (OSError, ValueError, TypeError) as e:
            log.warning("ignoring unreadable record %s: %s", name, e)
    return out


def find(path: str) -> Record | None:
    """The record whose FUSE mount point or `ox up` directory is `path`."""
    real = os.path.realpath(path)
    for r in records():
        if os.path.realpath(r.mountpoint) == real or (r.upper and os.path.realpath(r.upper) == real):
            return r
    return None


def find_disk(disk: str) -> Record | None:
    real = os.path.realpath(disk)
    for r in records():
        if r.disk and os.path.realpath(r.disk) == real and r.alive():
            return r
    return None


def private_mountpoint(upper_dir: str) -> str:
    """The hidden FUSE mount point `ox up DIR` serves the volume at."""
    return os.path.join(state_dir(), "up-" + _key(upper_dir))


# ---------------------------------------------------------------------- locks
def _lock_path(mountpoint: str) -> str:
    return os.path.join(state_dir(), _key(mountpoint) + ".lock")


def claim(mountpoint: str) -> int:
    """Lock the mount point for this process's life; MountError if another one holds it.

    The lock file is removed when its holder stops (`release`): a lock taken on a file
    that was unlinked meanwhile is dropped and taken again on the current one."""
    path = _lock_path(mountpoint)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise MountError(f"{mountpoint}: already served by another ox process") from None
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def release(fd: int, mountpoint: str) -> None:
    """The serving process stops: its lock file goes (unlinked while still held)."""
    try:
        os.unlink(_lock_path(mountpoint))
    except FileNotFoundError:
        pass
    os.close(fd)


def forget(rec: "Record") -> None:
    """A stopped mount leaves nothing behind: its record, lock file and log go."""
    rec.remove()
    for path in (_lock_path(rec.mountpoint), rec.log):
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def running() -> list["Record"]:
    """Records of mounts whose serving process is alive."""
    return [r for r in records() if r.alive()]


def lock_holder_alive(mountpoint: str) -> bool:
    try:
        fd = os.open(_lock_path(mountpoint), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


# ---------------------------------------------------------------------- mount table
def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


@dataclasses.dataclass(frozen=True)
class MountEntry:
    mountpoint: str
    fstype: str
    source: str


def mounts() -> list[MountEntry]:
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        left, _, right = line.partition(" - ")
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 2:
            continue
        out.append(MountEntry(_unescape(lf[4]), rf[0], _unescape(rf[1])))
    return out


def mount_entry(path: str) -> MountEntry | None:
    """The topmost mount at `path` (no stat: works on a dead FUSE mount too)."""
    want = os.path.abspath(path)
    real = want
    try:
        real = os.path.realpath(path)
    except OSError:
        pass
    found = None
    for m in mounts():
        if m.mountpoint in (want, real):
            found = m
    return found


def is_ox_fuse(entry: MountEntry | None) -> bool:
    return entry is not None and entry.fstype.startswith("fuse") and entry.source == FSNAME
