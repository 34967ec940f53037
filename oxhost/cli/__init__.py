"""The `ox` command line: device, address, vblk and bad-block commands against a disk
file (like nvm_* tools against /dev/nvme0n1), and the mount/compare front ends."""
import importlib
import importlib.metadata
import logging
import os
import select
import sys

import click

DISTRIBUTION = "ox-in-python"           # pyproject.toml's project name: `ox --version`
EXIT_PIPE = 141                         # 128 + SIGPIPE, what a shell reports for `yes | head -1`

# Subcommand modules; each defines `register(group)`.
_MODULES = ("device_cmds", "mount_cmds", "compare_cmds", "bench_cmds", "torture_cmds", "inspect_cmds",
            "nvme_cmds", "ftl_cmds", "zone_cmds")


def _fail(msg: str, code: int) -> None:
    click.echo(f"ox: error: {msg}", err=True)
    sys.exit(code)


def _stdout_reader_gone() -> bool:
    """Is standard output a pipe whose reader has gone (POLLERR on its write end)?"""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return False
    poller = select.poll()
    poller.register(fd, 0)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _broken_pipe(e: BrokenPipeError, status: int = EXIT_PIPE) -> None:
    """A write failed with EPIPE. When the reader of our output went away (`ox ... | head`),
    end quietly with the status of a program killed by SIGPIPE (or the failure status the
    command already had) -- after the command's own cleanup ran (a device closes as the
    exception unwinds), which a default SIGPIPE would skip. Standard output then points at
    /dev/null, so Python's own flush at exit has nothing to complain about. Any other
    broken pipe is a failure like any other."""
    if not _stdout_reader_gone():
        _fail(str(e) or type(e).__name__, 1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(status)


def _version(ctx, param, value) -> None:
    if not value or ctx.resilient_parsing:
        return
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = f"unknown ({DISTRIBUTION} is not installed: pip install -e .)"
    click.echo(f"ox, version {version}")
    ctx.exit()


class OxGroup(click.Group):
    """Every error is one line on stderr, `ox: error: ...`, and an exit status: 2 for a
    usage error (click's own included), 1 for a failure, 130 for Ctrl-C. No tracebacks
    (OX_TRACEBACK=1 shows them). Output cut short by its reader (`| head`) ends quietly
    with status 141 and nothing on stderr, for every command."""

    def main(self, *args, **kwargs):
        code = 0
        try:
            try:
                code = self._main(*args, **kwargs)
            except SystemExit as e:
                code = e.code
            sys.stdout.flush()              # a closed pipe shows here, not in Python's exit
        except BrokenPipeError as e:
            _broken_pipe(e, code or EXIT_PIPE)
        sys.exit(code)

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError as e:        # `ox --help | head -1` (click would exit 1)
            _broken_pipe(e)

    def _main(self, *args, **kwargs) -> int:
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except BrokenPipeError:
            raise
        except click.UsageError as e:
            hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
            _fail(f"{e.format_message()}{hint}", 2)
        except click.ClickException as e:
            _fail(e.format_message(), e.exit_code)
        except click.exceptions.Abort:
            click.echo("ox: interrupted", err=True)
            sys.exit(130)
        except KeyboardInterrupt:
            click.echo("ox: interrupted", err=True)
            sys.exit(130)
        except OSError as e:
            if os.environ.get("OX_TRACEBACK"):
                raise
            _fail(str(e) or type(e).__name__, 1)
        if isinstance(rv, int) and not isinstance(rv, bool):
            return rv
        return 0

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError as e:
            _broken_pipe(e)
        except Exception as e:            # noqa: BLE001 - the CLI edge: one line, exit 1
            if os.environ.get("OX_TRACEBACK"):
                raise
            _fail(str(e) or type(e).__name__, 1)


@click.group(cls=OxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Print the version and exit.")
def main(verbose):
    """OX in Python: an emulated open-channel SSD (ox-ctrl + VOLT) and its host stack.

    Commands run against a device whose media lives in a disk file (--disk, default
    ./ox.disk), so a sequence of commands works on the same persistent media.
    Set OX_TRACEBACK=1 to see Python tracebacks on errors.
    """
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")


for _name in _MODULES:
    try:
        _mod = importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _e:
        if _e.name != f"{__name__}.{_name}":
            raise
        continue
    _mod.register(main)
