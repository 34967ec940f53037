"""The `ox` command line: device, address, vblk and bad-block commands against a disk
file (like nvm_* tools against /dev/nvme0n1), and the mount/compare front ends."""
import importlib
import logging
import os
import sys

import click

# Subcommand modules; each defines `register(group)`.
_MODULES = ("device_cmds", "mount_cmds", "compare_cmds", "bench_cmds", "torture_cmds")


class OxGroup(click.Group):
    """Turns any error into one line on stderr and a non-zero exit (no tracebacks)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.UsageError, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.ClickException as e:
            click.echo(f"ox: error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("ox: interrupted", err=True)
            sys.exit(130)
        except Exception as e:            # noqa: BLE001 - the CLI edge: one line, exit 1
            if os.environ.get("OX_TRACEBACK"):
                raise
            msg = str(e) or type(e).__name__
            click.echo(f"ox: error: {msg}", err=True)
            sys.exit(1)


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
