"""The `ox` command line: device, address, vblk and bad-block commands against a disk
file (like nvm_* tools against /dev/nvme0n1), and the mount/compare front ends."""
import importlib
import logging
import os
import sys

import click

# Subcommand modules; each defines `register(group)`.
_MODULES = ("device_cmds", "mount_cmds", "compare_cmds", "bench_cmds", "torture_cmds", "inspect_cmds",
            "nvme_cmds", "ftl_cmds")


def _fail(msg: str, code: int) -> None:
    click.echo(f"ox: error: {msg}", err=True)
    sys.exit(code)


class OxGroup(click.Group):
    """Every error is one line on stderr, `ox: error: ...`, and an exit status: 2 for a
    usage error (click's own included), 1 for a failure, 130 for Ctrl-C. No tracebacks
    (OX_TRACEBACK=1 shows them)."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
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
            sys.exit(rv)
        sys.exit(0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception as e:            # noqa: BLE001 - the CLI edge: one line, exit 1
            if os.environ.get("OX_TRACEBACK"):
                raise
            _fail(str(e) or type(e).__name__, 1)


@click.group(cls=OxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
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
