"""`ox inspect`: what a disk file holds, read-only (oxhost.inspect)."""
import contextlib
import json
import logging
import os

import click

from ..inspect import DOC_SHAPE
from .common import disk_exists, missing_disk


_HELP = """What a disk file holds, read-only: for a researcher, or a post-mortem after a failed
torture round (`ox torture --dir D --keep` keeps the disks).

The media label (as `ox dev info` shows it); every block's state with its write
pointer, erase count and bad block table entry per plane; for pblk media every line
(state, sequence number, smeta and emeta present and valid, valid sectors, the
write-amplification counters emeta carries, previous and next line), read over the bus
as pblk's recovery reads them; for AppNVM media the checkpoints (blocks, id, valid or
not, counters, clean flag), the trim journal (records, seq range), each block's
stream and epoch from the OOB unit headers, and the valid sectors per block the FTL
would rebuild. Counts describe what the next mount or start would find, before it
writes anything.

The disk file is opened read-only under a shared lock and left byte-identical; a disk
that a mount or another writer holds is refused (unmount it first). Reads only what it
needs: state tables, metadata pages and headers, not the data.

--json prints one document with these keys (null where a part does not apply):

\b
""" + DOC_SHAPE


@click.command("inspect", help=_HELP)
@click.option("--disk", default="ox.disk", show_default=True, type=click.Path(dir_okay=False),
              help="The disk file to inspect (never created, never written).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document (shape below) instead of the text report.")
@click.option("--png", "png_path", default=None, type=click.Path(dir_okay=False),
              help="Also draw the block states to this PNG file: LUNs as rows (ch/lun), blocks "
                   "as columns, a legend; pblk lines or AppNVM streams marked.")
def inspect_cmd(disk, as_json, png_path):
    from oxemu import StoreError

    from ..inspect import inspect_disk
    from ..inspect.text import render_text

    if not disk_exists(disk):
        raise missing_disk(disk)
    if png_path is not None:
        if os.path.isdir(png_path):
            raise click.BadParameter(f"{png_path} is a directory", param_hint="--png")
        if os.path.exists(png_path) and os.path.samefile(png_path, disk):
            raise click.BadParameter(f"{png_path} is the disk file itself", param_hint="--png")
        if not os.path.isdir(os.path.dirname(os.path.abspath(png_path))):
            raise click.BadParameter(f"{png_path}: no such directory", param_hint="--png")
    try:
        with _quiet():
            doc = inspect_disk(disk)
    except StoreError as e:
        raise click.ClickException(_refusal(disk, str(e))) from None
    if png_path is not None:
        from ..inspect.png import render_png
        render_png(doc, png_path)
    if as_json:
        click.echo(json.dumps(doc, indent=1))
        return
    for line in render_text(doc):
        click.echo(line)
    if png_path is not None:
        click.echo(f"picture: {png_path}")


@contextlib.contextmanager
def _quiet():
    """What recovery would warn about (torn pages, corrupt metadata) is in the report:
    its warnings stay out of the way unless -v asked for them."""
    if logging.getLogger().getEffectiveLevel() < logging.WARNING:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("oxemu", "oxhost")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _refusal(disk: str, msg: str) -> str:
    """The store's one line, and who holds a disk in use when `ox mount` does."""
    if "in use by another process" not in msg:
        return msg
    from ..fuse import registry
    rec = registry.find_disk(os.path.abspath(disk))
    if rec is not None:
        return f"{disk}: in use: mounted at {rec.upper or rec.mountpoint} (pid {rec.pid}); unmount it first"
    return msg + " (a mount or another writer holds it exclusively; stop it first)"


def register(main):
    main.add_command(inspect_cmd)
