"""The life of a served volume as the command line sees it: checks with one-line errors,
serving in the foreground with a record of who serves what, a detached serving process
that reports readiness (or its error) to the command that started it, and `ox umount`."""
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import trio

from oxemu import Faults, StoreError, probe_geometry

from .. import tools
from ..blocklog import BlockLog
from . import registry
from . import upper as upper_mod
from .errors import MountError
from .mount import Server

log = logging.getLogger(__name__)

DAEMON_EXIT_WAIT = 300.0      # s for a serving process to flush and exit after its unmount
FUSE_DEVICE = "/dev/fuse"


# ---------------------------------------------------------------------- checks
def check_fuse() -> None:
    if not os.path.exists(FUSE_DEVICE):
        raise MountError(f"{FUSE_DEVICE} is missing: FUSE is not available here "
                         f"(modprobe fuse, or run the container with --device /dev/fuse)")
    if os.geteuid() != 0:
        if not os.access(FUSE_DEVICE, os.R_OK | os.W_OK):
            raise MountError(f"{FUSE_DEVICE}: permission denied: FUSE without root needs read and "
                             f"write access to it (Debian's udev rule makes it 0666: "
                             f"chmod 0666 {FUSE_DEVICE} as root), or run as root")
        try:
            tools.find("fusermount3")
        except tools.ToolNotFound as e:
            raise MountError(str(e)) from None


def check_allow_other() -> None:
    if os.geteuid() == 0:
        return
    try:
        with open("/etc/fuse.conf") as f:
            ok = any(ln.strip() == "user_allow_other" for ln in f)
    except OSError:
        ok = False
    if not ok:
        raise MountError("--allow-other needs 'user_allow_other' in /etc/fuse.conf (or root)")


def check_mountpoint(path: str) -> None:
    """A directory that exists and has nothing mounted on it."""
    entry = registry.mount_entry(path)
    if entry is not None:
        rec = registry.find(path)
        if registry.is_ox_fuse(entry) and not (rec and rec.alive()):
            raise MountError(f"{path}: stale OX mount (its process is gone); clear it with "
                             f"`ox umount {path}`")
        raise MountError(f"{path}: mount point is busy ({entry.fstype} from {entry.source} is "
                         f"mounted there)")
    if not os.path.exists(path):
        raise MountError(f"{path}: mount point does not exist")
    if not os.path.isdir(path):
        raise MountError(f"{path}: mount point is not a directory")


def check_disk(disk: str | None) -> None:
    """Refuse early a disk file that is corrupt, not ours to write, or already being served."""
    if disk is None:
        return
    if os.path.isdir(disk):
        raise MountError(f"{disk}: is a directory, not a disk file")
    if os.path.exists(disk) and not os.access(disk, os.R_OK | os.W_OK):
        raise MountError(f"{disk}: permission denied: the disk file must be readable and "
                         f"writable by you (uid {os.getuid()})")
    parent = os.path.dirname(os.path.abspath(disk))
    if not os.path.exists(disk) and not os.path.isdir(parent):
        raise MountError(f"{disk}: cannot create the disk file: no such directory {parent}")
    if not os.path.exists(disk) and not os.access(parent, os.W_OK | os.X_OK):
        raise MountError(f"{disk}: cannot create the disk file: permission denied in {parent}")
    probe_geometry(disk)                  # StoreError: bad magic, corrupt header
    rec = registry.find_disk(disk)
    if rec is not None:
        raise MountError(f"{disk}: disk file is in use: already mounted at "
                         f"{rec.upper or rec.mountpoint} (pid {rec.pid})")


def explain_store_error(e: StoreError, disk: str | None) -> MountError:
    msg = str(e)
    if disk and "in use" in msg:
        rec = registry.find_disk(disk)
        if rec is not None:
            msg += f" (mounted at {rec.upper or rec.mountpoint}, pid {rec.pid})"
    return MountError(msg)


# ---------------------------------------------------------------------- serving
class _Ready:
    """The readiness pipe to the `ox mount` that started us: one line, then closed."""

    def __init__(self, fd: int | None):
        self.fd = fd

    def send(self, line: str) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            os.write(fd, (line.replace("\n", " ") + "\n").encode())
        except OSError:
            pass
        finally:
            os.close(fd)


def serve_foreground(mountpoint: str, stack_kw: dict, *, allow_other: bool = False,
                     upper_dir: str | None = None, ready_fd: int | None = None,
                     log_path: str | None = None, announce=None, discard: bool = False,
                     write_log: str | None = None) -> None:
    """Mount and serve until unmounted or signalled. With `upper_dir` (ox up) the FUSE
    volume goes to a private mount point and ext4 on top at upper_dir, mounted with online
    discard if `discard`. `ready_fd` gets one line, `ready {json}` or `error {message}`,
    when the volume is usable or has failed. `write_log` (lab use, `ox torture --ext4`):
    a file the volume's writes and flushes are appended to (oxhost.blocklog)."""
    from ..stack import open_stack  # the stack pulls in the emulator: only now

    ready = _Ready(ready_fd)
    try:
        wlog = None
        if write_log is not None:                   # before anything is claimed or mounted
            wlog = BlockLog(write_log)
        upper = None
        if upper_dir is not None:
            upper_dir = os.path.abspath(upper_dir)
            uid, gid = upper_mod.invoking_user()
            upper = upper_mod.Upper(dir=upper_dir, kind=upper_mod.choose_kind(), uid=uid, gid=gid,
                                    discard=discard)
            prepare_up_dirs(upper_dir, uid, gid)
            mountpoint = registry.private_mountpoint(upper_dir)
        mountpoint = os.path.abspath(mountpoint)
        check_fuse()
        if allow_other:
            check_allow_other()
        check_mountpoint(mountpoint)
        lock_fd = registry.claim(mountpoint)
        disk = None if stack_kw.get("volatile") else os.path.abspath(stack_kw.get("disk") or "ox.disk")
        created = disk is not None and not os.path.exists(disk)
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
        stack_kw = dict(stack_kw)
        cut_after = stack_kw.pop("power_cut_after", None)
        faults = Faults() if cut_after else None
        try:
            stack = open_stack(**stack_kw, faults=faults)
            if cut_after:                   # lab use: the plug is pulled N media ops from now
                faults.power_cut_after = stack.machine.stats()["media_ops"] + cut_after
        except StoreError as e:
            registry.release(lock_fd, mountpoint)
            raise explain_store_error(e, disk) from None
        except BaseException:
            registry.release(lock_fd, mountpoint)
            raise
        finally:
            if main_thread:                 # Trio takes over SIGTERM while serving
                signal.signal(signal.SIGTERM, previous)
        if created:
            _give_to_invoking_user(disk)
    except Exception as e:
        ready.send(f"error {e or type(e).__name__}")
        raise

    info = stack.info()
    record = registry.Record(mountpoint=mountpoint, pid=os.getpid(), mode=stack.mode,
                             size=stack.blockdev.size, disk=stack.disk, log=log_path,
                             upper=upper_dir, upper_kind=upper.kind if upper else None,
                             private=upper is not None, started=time.time())
    record.save()

    def on_ready(server: Server) -> None:
        record.state = "serving"
        record.save()
        msg = dict(info, pid=os.getpid(), mountpoint=mountpoint, upper=upper_dir,
                   formatted=bool(upper and upper.formatted), log=log_path)
        ready.send("ready " + json.dumps(msg))
        if announce is not None:
            announce(msg)

    error = None
    server = Server(stack.blockdev, mountpoint, info=info, allow_other=allow_other,
                    upper=upper, on_ready=on_ready, owns=stack, sysfs=stack.sysfs, write_log=wlog)
    try:
        trio.run(server.run)
    except BaseException as e:
        error = f"{e}" or type(e).__name__
        ready.send(f"error {error}")            # no-op once readiness was reported
        raise
    finally:
        record.state, record.error = "stopped", error
        log.info("stopped%s", f" with error: {error}" if error else "")
        if error is None:
            registry.forget(record)                 # nothing of a clean stop stays behind
        elif not server.ready:
            record.remove()                         # a failed start was reported already
        else:
            record.save()                           # `ox umount` reports it, then forgets
        if upper is not None:
            _rmdir_quiet(mountpoint)
        registry.release(lock_fd, mountpoint)


def _terminated(signum, frame):
    raise KeyboardInterrupt("terminated while opening the volume")


def _give_to_invoking_user(path: str) -> None:
    """A disk file created under sudo belongs to the user who ran sudo, not to root."""
    uid, gid = upper_mod.invoking_user()
    if os.geteuid() == 0 and uid != 0:
        try:
            os.chown(path, uid, gid)
        except OSError as e:
            log.warning("cannot give %s to uid %d: %s", path, uid, e)


def check_up_dir(upper_dir: str) -> None:
    """DIR is not up already (even if its ext4 is gone) and has nothing mounted on it."""
    rec = registry.find(upper_dir)
    if rec is not None and rec.alive():
        if rec.upper is None:
            what = "`ox mount` serves a volume there"
        elif upper_mod.ext4_gone(upper_dir, rec.upper_kind,
                                 os.path.join(rec.mountpoint, "volume")) is not None:
            what = "already up, its ext4 is gone"
        else:
            what = "already up"
        raise MountError(f"{upper_dir}: {what} (pid {rec.pid}); stop it with `ox umount {upper_dir}`")
    entry = registry.mount_entry(upper_dir)
    if entry is not None:
        raise MountError(f"{upper_dir}: busy ({entry.fstype} from {entry.source} is mounted there)")


def prepare_up_dirs(upper_dir: str, uid: int, gid: int) -> None:
    """DIR exists (created for the invoking user), is not busy; the private FUSE mount point
    exists and, if a dead process left a stale mount there, is cleared."""
    check_up_dir(upper_dir)
    if not os.path.exists(upper_dir):
        try:
            os.mkdir(upper_dir, 0o755)
        except OSError as e:
            raise MountError(f"{upper_dir}: cannot create it: {e.strerror}") from None
        if os.geteuid() == 0:
            os.chown(upper_dir, uid, gid)
    elif not os.path.isdir(upper_dir):
        raise MountError(f"{upper_dir}: not a directory")
    private = registry.private_mountpoint(upper_dir)
    entry = registry.mount_entry(private)
    if entry is not None and registry.is_ox_fuse(entry) and not registry.lock_holder_alive(private):
        _fusermount(private, lazy=True)
    os.makedirs(private, mode=0o700, exist_ok=True)


def _rmdir_quiet(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


# ---------------------------------------------------------------------- detaching
def spawn(cli_args: list[str], log_path: str) -> dict:
    """Run `ox <cli_args> --foreground --ready-fd N` detached (new session, output to
    log_path) and wait for its readiness line; MountError with its message if it fails."""
    r, w = os.pipe()
    cmd = [sys.executable, "-m", "oxhost.cli", *cli_args, "--foreground", "--ready-fd", str(w)]
    with open(log_path, "ab") as logf:
        logf.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cli_args)}\n".encode())
        logf.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                pass_fds=(w,), start_new_session=True, cwd=os.getcwd())
    os.close(w)
    chunks = []
    try:
        while True:
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise
    finally:
        os.close(r)
    line = b"".join(chunks).decode(errors="replace").strip()
    if line.startswith("ready "):
        return json.loads(line[len("ready "):])
    if line.startswith("error "):
        proc.wait()
        raise MountError(line[len("error "):])
    rc = proc.wait()
    raise MountError(f"the mount process exited (status {rc}) before the volume was ready: "
                     f"{_last_line(log_path)} (log: {log_path})")


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
        return lines[-1].strip() if lines else "no output"
    except OSError:
        return "no log"


def log_path_for(path: str) -> str:
    return os.path.join(registry.state_dir(), registry._key(path) + ".log")


# ---------------------------------------------------------------------- unmounting
BUSY_WAIT = 10.0             # s an unmount retries while the volume is still held open


def _fusermount(path: str, lazy: bool = False, busy_wait: float = BUSY_WAIT) -> None:
    """Unmount a FUSE mount. While it is busy -- fuse2fs, just unmounted above it, takes a
    moment to exit and close the volume -- try again for up to busy_wait seconds."""
    tool = tools.which("fusermount3")
    cmd = [tool, "-u", *(["-z"] if lazy else []), path] if tool else \
        tools.command(["umount", *(["-l"] if lazy else []), path])
    deadline = time.monotonic() + busy_wait
    while True:
        cp = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, check=False)
        if not cp.returncode:
            return
        why = (cp.stderr or cp.stdout).decode(errors="replace").strip().splitlines()
        why = why[-1] if why else str(cp.returncode)
        if "busy" not in why.lower() or time.monotonic() > deadline:
            raise MountError(f"cannot unmount {path}: {why}")
        time.sleep(0.05)


def _flush_volume(mountpoint: str) -> None:
    """fsync on the volume file: the serving process flushes its block device."""
    fd = os.open(os.path.join(mountpoint, "volume"), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unmount(path: str, force: bool = False, wait: float = DAEMON_EXIT_WAIT) -> str:
    """`ox umount PATH` for a FUSE mount point or an `ox up` directory: the ext4 on top
    first, then a flush, then the FUSE mount; then wait for the serving process to exit.
    Returns a one-line summary; MountError with one line when something refuses."""
    rec = registry.find(path)
    if rec is None:
        entry = registry.mount_entry(path)
        if registry.is_ox_fuse(entry):
            _fusermount(path, lazy=force)
            return f"unmounted {path}"
        if not os.path.lexists(path):
            raise MountError(f"{path}: no such directory")
        raise MountError(f"{path}: not an OX mount")
    alive = rec.alive()
    if rec.upper and upper_mod.ext4_at(rec.upper, rec.upper_kind) is not None:
        upper_mod.teardown_sync(rec.upper, rec.upper_kind, lazy=force,
                                volume=os.path.join(rec.mountpoint, "volume"))
    fuse_entry = registry.mount_entry(rec.mountpoint)
    if registry.is_ox_fuse(fuse_entry):
        if alive:
            try:
                _flush_volume(rec.mountpoint)
            except PermissionError:
                pass            # another user's mount: its process flushes when it closes
            except OSError as e:
                if not force:
                    raise MountError(f"flushing the volume failed: {e.strerror}; not unmounting "
                                     f"(--force to unmount anyway)") from None
                log.warning("flush failed: %s", e)
        # A dead process serves nothing: its mount only needs to go, even if still open.
        _fusermount(rec.mountpoint, lazy=force or not alive)
    if alive:
        deadline = time.monotonic() + wait
        while rec.alive():
            if time.monotonic() > deadline:
                raise MountError(f"the mount process (pid {rec.pid}) did not exit within "
                                 f"{wait:.0f} s after the unmount (log: {rec.log})")
            time.sleep(0.05)
    after = registry.find(rec.mountpoint)
    if rec.private:
        _rmdir_quiet(rec.mountpoint)
    if after is not None:
        registry.forget(after)
        if after.error and alive:
            raise MountError(f"the mount process reported: {after.error}")
    elif not alive:
        registry.forget(rec)
    where = rec.upper or rec.mountpoint
    return f"unmounted {where}" + ("" if alive else " (its process had already stopped)")
