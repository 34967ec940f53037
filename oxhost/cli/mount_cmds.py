"""`ox mount`, `ox umount` and `ox up`: serve the emulated SSD's volume through FUSE, and the
seed's whole flow (mount, mkfs.ext4 on first use, ext4 mount) in one command (SPEC 10)."""
import logging
import os

import click

from .common import GEOMETRY_HELP, config_options, load_config, parse_geometry, stack_mode_options

_MODE_HELP = ("pblk: host FTL over the open-channel device; appnvm: the device's own FTL; zoned: the "
              "zoned host FTL over a ZNS device. Default: what the disk holds (its media label), pblk "
              "for a new disk. Media written in another mode is refused, never overwritten (see `ox format`).")
_PATH = click.Path()         # no checks here (the commands say what is wrong in one line); completes paths
_LUNS_HELP = ("Inclusive LUN range for pblk, like `nvme lnvm create -b B -e E`; default: the "
              "range the disk's pblk volume was made on, else all LUNs (0-31).")


def _luns(ctx, param, value):
    if value is None:
        return None
    from ..stack import parse_luns
    return parse_luns(value)            # StackError: one line, like every other bad input


def _stack_options(f):
    """The options that say which volume to serve (shared by mount and up)."""
    opts = [
        click.option("--ready-fd", type=int, default=None, hidden=True),
        click.option("--power-cut-after", type=click.IntRange(min=1), default=None, hidden=True,
                     help="Lab use (ox torture): cut the device's power at the N-th media "
                          "operation after the volume is ready."),
        click.option("-f", "--foreground", is_flag=True,
                     help="Stay in the foreground (Ctrl-C unmounts) instead of detaching."),
        click.option("--geometry", default=None, metavar="CHxLUNxBLKxPG", hidden=True,
                     help=GEOMETRY_HELP),
        click.option("--luns", default=None, metavar="B-E", callback=_luns, help=_LUNS_HELP),
        click.option("--timing", type=click.Choice(["off", "model", "realtime"]), default="off",
                     show_default=True,
                     help="NAND timing model: off, model (recorded), realtime (slept)."),
        click.option("--debug", is_flag=True,
                     help="Print the controller's per-command trace (to the log when detached)."),
        click.option("--volatile", is_flag=True,
                     help="Media in memory only (volt=1): gone on unmount."),
        click.option("--disk", default="ox.disk", show_default=True, metavar="FILE", type=_PATH,
                     help="Media file (volt=0): created on first use, kept between mounts."),
        click.option("--mode", type=click.Choice(["pblk", "appnvm", "zoned"]), default=None,
                     help=_MODE_HELP),
    ]
    f = stack_mode_options(f)
    for o in opts:
        f = o(f)
    return config_options(f)


def _serve_foreground(path, kw, ready_fd, banner, mountpoint, **serve_kw) -> None:
    """Serve in this process: as the detached child (ready_fd set: report on the pipe, log
    to the state directory) or for a user who asked for --foreground (banner on stderr)."""
    from ..fuse import daemon
    if ready_fd is not None:
        _daemon_logging()

    def announce(msg):
        if ready_fd is None:
            click.echo(banner(msg), err=True)
    daemon.serve_foreground(mountpoint, kw, ready_fd=ready_fd, announce=announce,
                            log_path=daemon.log_path_for(path) if ready_fd else None, **serve_kw)


def _stack_kw(mode, disk, volatile, debug, timing, luns, geometry, power_cut_after=None,
              config_path=None, sets=()) -> dict:
    from ..stack import StackError
    config = load_config(config_path, sets)
    try:
        geo = parse_geometry(geometry)
    except click.BadParameter as e:
        raise StackError(f"--geometry: {e.message}") from None
    if mode is not None and luns is not None and (mode == "appnvm" or mode.endswith("@device")):
        raise StackError("--luns is for host-side FTLs: a device-side FTL (AppNVM, --side device) uses every LUN")
    return {"mode": mode, "disk": None if volatile else os.path.abspath(disk),
            "volatile": volatile, "debug": debug, "timing": timing,
            "luns": luns, "geometry": geo, "power_cut_after": power_cut_after, "config": config}


def _child_args(cmd, path, mode, disk, volatile, debug, timing, luns, geometry, extra=(),
                power_cut_after=None, config_path=None, sets=()) -> list:
    args = [cmd, os.path.abspath(path), "--timing", timing]
    if mode is not None:
        args += ["--stack", mode]
    args += ["--volatile"] if volatile else ["--disk", os.path.abspath(disk)]
    if debug:
        args.append("--debug")
    if luns is not None:
        args += ["--luns", f"{luns[0]}-{luns[1]}"]
    if geometry:
        args += ["--geometry", geometry]
    if power_cut_after:
        args += ["--power-cut-after", str(power_cut_after)]
    if config_path:
        args += ["--config", os.path.abspath(config_path)]
    for item in sets:
        args += ["--set", item]
    return args + list(extra)


def _daemon_logging() -> None:
    logging.basicConfig(force=True, level=logging.WARNING,
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    logging.getLogger("oxhost.fuse").setLevel(logging.INFO)


def _uptime(s: float) -> str:
    s = int(s)
    h, m = divmod(s // 60, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s % 60:02d}s"


def _describe(msg: dict) -> str:
    return f"{msg.get('name', msg['mode'])} volume of {msg['size']:,} bytes"


EXT4_GONE = "ext4 gone"


def _state(rec, upper) -> tuple[str, str | None]:
    """The record's state and why: EXT4_GONE for a serving `ox up` whose ext4 is not
    usable at its directory any more (see upper.ext4_gone)."""
    if rec.upper and rec.state == "serving":
        why = upper.ext4_gone(rec.upper, rec.upper_kind, os.path.join(rec.mountpoint, "volume"))
        if why is not None:
            return EXT4_GONE, why
    return rec.state, None


def register(main: click.Group) -> None:

    @main.command("mount")
    @click.argument("mountpoint", type=_PATH)
    @click.option("--allow-other", is_flag=True,
                  help="Let other users use the volume (default: only you; needs "
                       "user_allow_other in /etc/fuse.conf unless root).")
    @click.option("--write-log", default=None, metavar="FILE", hidden=True,
                  help="Lab use (ox torture --ext4): append the volume's writes and flushes to FILE.")
    @_stack_options
    def mount_cmd(mountpoint, allow_other, write_log, mode, disk, volatile, debug, timing, luns,
                  geometry, foreground, ready_fd, power_cut_after, config_path, sets):
        """Serve the SSD's block device at MOUNTPOINT as MOUNTPOINT/volume.

        The volume (3,435,134,976 bytes with pblk on LUNs 0-31) is a regular file you can
        mkfs, loop-mount, or run fio on (O_DIRECT works); fsync on it flushes to media.
        MOUNTPOINT/stats holds JSON counters (write amplification, GC, ...); with pblk,
        MOUNTPOINT/pblk/ holds pblk's sysfs files in Linux's formats (write_amp_mileage,
        write_amp_trip, lines, rate_limiter, gc_force, ...).
        Detaches once the volume is usable and prints how to stop it (`ox umount`);
        --foreground stays (Ctrl-C or SIGTERM unmount cleanly after a flush).
        Only you can use the volume unless --allow-other (then its mode is 0666).
        A detached process logs to the state directory: /run/ox as root, else
        $XDG_RUNTIME_DIR/ox or /tmp/ox-UID ($OX_STATE_DIR overrides).
        """
        from ..fuse import daemon

        kw = _stack_kw(mode, disk, volatile, debug, timing, luns, geometry, power_cut_after, config_path, sets)
        if foreground:
            _serve_foreground(mountpoint, kw, ready_fd,
                              lambda m: f"ox: serving the {_describe(m)} at {m['mountpoint']} (Ctrl-C to unmount)",
                              mountpoint=mountpoint, allow_other=allow_other, write_log=write_log)
            return
        daemon.check_fuse()
        if allow_other:
            daemon.check_allow_other()
        daemon.check_mountpoint(mountpoint)
        daemon.check_disk(kw["disk"])
        args = _child_args("mount", mountpoint, mode, disk, volatile, debug, timing, luns, geometry,
                           (["--allow-other"] if allow_other else [])
                           + (["--write-log", os.path.abspath(write_log)] if write_log else []),
                           power_cut_after, config_path, sets)
        msg = daemon.spawn(args, daemon.log_path_for(mountpoint))
        click.echo(f"ox: mounted the {_describe(msg)} at {msg['mountpoint']} (pid {msg['pid']}); "
                   f"stop with: ox umount {mountpoint}")

    @main.command("umount")
    @click.argument("path", type=_PATH)
    @click.option("--force", is_flag=True,
                  help="Unmount lazily even if busy (programs still using it get errors).")
    def umount_cmd(path, force):
        """Flush and unmount a volume served by `ox mount` or `ox up`.

        PATH is the mount point of `ox mount` or the directory of `ox up`: an ext4 file system
        `ox up` mounted on the volume is unmounted first, then the volume is flushed and its
        FUSE mount removed, and the command waits for the serving process to exit.
        A mount left behind by a killed process is cleared.
        """
        from ..fuse import daemon
        click.echo(f"ox: {daemon.unmount(path, force=force)}")

    @main.command("status")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per mount.")
    def status_cmd(as_json):
        """List the running mounts: mount point (and `ox up` directory), mode, disk, pid,
        size, uptime and state, from the state directory's records of live serving
        processes. State: starting, serving, or "ext4 gone" for an `ox up` whose ext4 is
        no longer usable at its directory (unmounted behind ox's back, or its fuse2fs
        exited): the volume is still served; `ox umount DIRECTORY` stops it."""
        import json
        import time

        from ..fuse import registry, upper
        rows = registry.running()
        states = [_state(r, upper) for r in rows]
        if as_json:
            for r, (state, _) in zip(rows, states):
                click.echo(json.dumps(dict(mountpoint=r.upper or r.mountpoint, fuse=r.mountpoint,
                                           mode=r.mode, disk=r.disk, pid=r.pid, size=r.size,
                                           uptime_s=round(time.time() - r.started, 1) if r.started else None,
                                           state=state)))
            return
        if not rows:
            click.echo("ox: no volume is mounted")
            return
        for r, (state, why) in zip(rows, states):
            up = _uptime(time.time() - r.started) if r.started else "?"
            where = f"{r.upper} (ext4)" if r.upper else r.mountpoint
            if why is not None:
                state += f" ({why}; stop the volume with `ox umount {r.upper}`)"
            click.echo(f"{where}: {r.mode} volume of {r.size:,} bytes on "
                       f"{r.disk or 'volatile media'}, pid {r.pid}, up {up}, {state}")

    @main.command("up")
    @click.argument("directory", type=_PATH)
    @click.option("--discard", is_flag=True,
                  help="Mount the ext4 with online discard: deleted blocks reach the FTL at once. "
                       "Without it, run `fstrim DIRECTORY` now and then (it works either way).")
    @_stack_options
    def up_cmd(directory, discard, mode, disk, volatile, debug, timing, luns, geometry, foreground,
               ready_fd, power_cut_after, config_path, sets):
        """Mount the SSD as an ext4 file system at DIRECTORY (created if missing).

        The seed's flow in one command: serve the volume through FUSE (at a private mount
        point), run mkfs.ext4 on it the first time (an existing ext4 is kept; any other file
        system is refused), mount the ext4 at DIRECTORY (a loop mount as root; fuse2fs
        otherwise) and give DIRECTORY to the invoking user (the one behind sudo). Success is
        reported only once the mount table shows the ext4 at DIRECTORY.
        Stop with `ox umount DIRECTORY` (or Ctrl-C / SIGTERM with --foreground).
        """
        from ..fuse import daemon, upper

        kw = _stack_kw(mode, disk, volatile, debug, timing, luns, geometry, power_cut_after, config_path, sets)
        if foreground:
            _serve_foreground(directory, kw, ready_fd,
                              lambda m: f"ox: ext4 on the {_describe(m)} mounted at {m['upper']} (Ctrl-C to unmount)",
                              mountpoint=None, upper_dir=directory, discard=discard)
            return
        daemon.check_fuse()
        upper.choose_kind()
        parent = os.path.dirname(os.path.abspath(directory))
        if not os.path.isdir(parent):
            raise daemon.MountError(f"{parent}: no such directory")
        daemon.check_up_dir(directory)
        daemon.check_disk(kw["disk"])
        args = _child_args("up", directory, mode, disk, volatile, debug, timing, luns, geometry,
                           ["--discard"] if discard else [], power_cut_after, config_path, sets)
        msg = daemon.spawn(args, daemon.log_path_for(directory))
        how = "formatted and mounted" if msg.get("formatted") else "mounted"
        click.echo(f"ox: ext4 on the {_describe(msg)} {how} at {msg['upper']} (pid {msg['pid']}); "
                   f"stop with: ox umount {directory}")
